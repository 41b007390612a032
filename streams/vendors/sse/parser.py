"""An incremental ``text/event-stream`` parser, following the WHATWG HTML standard's rules.

Bytes go in as they arrive (any chunking); events come out. The rules kept:

- the stream is UTF-8, decoded with replacement characters (never an error),
  and one leading byte-order mark is dropped;
- lines end with CRLF, LF or CR (a CRLF split across two chunks is one end);
- ``:`` starts a comment; ``field: value`` loses one leading space of the
  value; a line without a colon is a field with an empty value;
- ``data`` lines append to the data buffer (joined by LF), ``event`` sets the
  type, ``id`` sets the last event id (ignored if it holds NUL), ``retry``
  sets the reconnection time when it is all ASCII digits (at most nine);
  other fields are ignored;
- a blank line dispatches: with no data nothing is dispatched, but the last
  event id still changes, so such a block is reported (data ``""``) when it
  changed the id; an event unfinished at the end of the stream is dropped.

Unlike a browser, the parser is bounded: an event whose lines and data grow
past ``max_event_chars`` is dropped as it streams in (reported once as
``oversized``) and its bytes are not kept, so a hostile or broken server
cannot grow the worker's memory.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

BOM = "\ufeff"
MAX_RETRY_DIGITS = 9  # a longer retry (over 11 days) is ignored, as is any value that is not digits


@dataclass(frozen=True)
class SseEvent:
    """One dispatched event: its type ("" when unnamed), data, and the last event id at dispatch."""

    type: str
    data: str
    last_event_id: str
    oversized: bool = False  # dropped for its size: type and data are empty


class SseParser:
    """Turn chunks of an event stream into ``SseEvent``s (one parser per connection)."""

    def __init__(self, *, max_event_chars: int = 1 << 20, last_event_id: str = "") -> None:
        self.max_event_chars = max_event_chars
        self.last_event_id = last_event_id  # the stream's last event id buffer
        self.retry: int | None = None  # reconnection time (ms) the server asked for, if any
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._started = False  # the BOM check happens once, on the first character
        self._line: list[str] = []  # pieces of the line being read
        self._line_chars = 0
        self._line_blank = True  # nothing read since the last line end (even of a dropped line)
        self._after_cr = False  # the last chunk ended with CR: a leading LF is part of that line end
        self._reset_event()

    def _reset_event(self) -> None:
        self._data: list[str] = []
        self._type = ""
        self._event_chars = 0
        self._oversized = False
        self._id_changed = False

    def feed(self, chunk: bytes) -> list[SseEvent]:
        """Return the events completed by CHUNK (bytes as they came off the wire)."""
        return self._feed_text(self._decoder.decode(chunk))

    def _feed_text(self, text: str) -> list[SseEvent]:
        if not self._started and text:
            self._started = True
            if text.startswith(BOM):
                text = text[1:]
        events: list[SseEvent] = []
        position, end = 0, len(text)
        if self._after_cr and position < end:
            self._after_cr = False
            if text[0] == "\n":
                position = 1
        while position < end:
            cut = _next_line_end(text, position)
            if cut < 0:
                self._add_to_line(text[position:])
                break
            self._add_to_line(text[position:cut])
            if text[cut] == "\r":
                if cut + 1 < end:
                    position = cut + 2 if text[cut + 1] == "\n" else cut + 1
                else:
                    self._after_cr = True
                    position = end
            else:
                position = cut + 1
            event = self._end_line()
            if event is not None:
                events.append(event)
        return events

    def _add_to_line(self, piece: str) -> None:
        if not piece:
            return
        self._line_blank = False
        if self._oversized:
            return
        self._line_chars += len(piece)
        if self._line_chars + self._event_chars > self.max_event_chars:
            # Stop keeping the event at once: its remaining bytes are read and thrown away.
            self._oversized = True
            self._line, self._line_chars, self._data = [], 0, []
            return
        self._line.append(piece)

    def _end_line(self) -> SseEvent | None:
        blank = self._line_blank
        line = "".join(self._line)
        self._line, self._line_chars, self._line_blank = [], 0, True
        if self._oversized:
            if not blank:
                return None
            # An oversized event ends at its blank line, whatever it held.
            self._reset_event()
            return SseEvent("", "", self.last_event_id, oversized=True)
        if blank:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            # Only data accumulates across lines; other fields replace a value or are ignored.
            self._event_chars += len(value) + 1
            self._data.append(value)
        elif name == "event":
            self._type = value
        elif name == "id":
            if "\0" not in value:
                self._id_changed = self._id_changed or value != self.last_event_id
                self.last_event_id = value
        elif name == "retry" and 0 < len(value) <= MAX_RETRY_DIGITS and value.isascii() and value.isdigit():
            self.retry = int(value)
        return None

    def _dispatch(self) -> SseEvent | None:
        data, kind, id_changed = self._data, self._type, self._id_changed
        self._reset_event()
        if not data:
            # Nothing is dispatched, but the id still moved: the caller must learn it.
            return SseEvent("", "", self.last_event_id) if id_changed else None
        return SseEvent(kind, "\n".join(data), self.last_event_id)


def _next_line_end(text: str, start: int) -> int:
    """Return the index of the first CR or LF in TEXT from START, or -1."""
    cr, lf = text.find("\r", start), text.find("\n", start)
    if cr < 0:
        return lf
    if lf < 0:
        return cr
    return min(cr, lf)
