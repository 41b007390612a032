"""The frames a board socket sends: a JSON head, then htmx 2 out-of-band swaps.

Every frame opens with one line of JSON, its head (``type``, ``epoch``,
``seq``, server time, live-at and upstream health; a snapshot's also the
protocol version and which part it is of how many), which the page's script
reads with ``JSON.parse``; after the line's end come the out-of-band swaps
by id, if any (a tick has none). A snapshot replaces whole table bodies; a
delta replaces rows the viewer has, appends rows that entered its filter and
deletes rows that left it. JSON text never holds a raw line break, so the
first one ends the head.

A snapshot larger than ``FLOORVIEW_SNAPSHOT_PART_BYTES`` goes out in parts:
the first (``snapshot``) replaces the table bodies with its rows, each
following one (``snapshot-part``) appends its rows, and the page counts the
snapshot complete (and itself live) only at the last (docs/sockets.md).

Table parts travel inside ``<template>`` elements, as htmx documents for
out-of-band table rows: at the top level the HTML parser would drop bare
``<tbody>`` and ``<tr>`` tags (and inside one template a ``<tbody>``
after a ``<tr>``), so rows and bodies get a template each. htmx 2's ws
extension hands each top-level element to ``oobSwap`` by itself and does not
open templates, so the page applies frames with ``htmx.swap`` (see
static/dashboard/board.js), which does. Building a frame is string work only:
rows arrive rendered, and a board message's head is encoded once for all the
viewers it is handed to.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable, Mapping
from html import escape
from typing import Any

from dashboard import protocol
from dashboard.filters import RowFilter, select_rows

# The table body each kind of row lives in, in page order.
TBODY_IDS = {"queue": "queue-rows", "agent": "agent-rows", "interaction": "interaction-rows"}


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return ""
    return repr(value)


def _finite(value: Any) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return value


def frame_head(
    kind: str,
    *,
    epoch: str | None,
    seq: Any,
    server_time: Any,
    live_at: Any,
    health: Any,
    protocol: int | None = None,
    part: tuple[int, int] | None = None,
) -> str:
    """Return the JSON line that opens every frame: what the page reads before it swaps anything.

    PROTOCOL (a snapshot's first part) is the version of the page protocol this server speaks; PART (a
    snapshot's parts) is (this part's number from 1, the number of parts).
    """
    health = health if isinstance(health, Mapping) else {}
    head: dict[str, Any] = {
        "type": kind,
        "epoch": epoch if isinstance(epoch, str) else "",
        "seq": seq if isinstance(seq, int) and not isinstance(seq, bool) else 0,
        "server_time": _finite(server_time),
        "live_at": _finite(live_at),
        "health": {"state": str(health.get("state") or "unknown"), "detail": str(health.get("detail") or "")},
    }
    if protocol is not None:
        head["protocol"] = int(protocol)
    if part is not None:
        head["part"], head["parts"] = int(part[0]), int(part[1])
    return json.dumps(head, separators=(",", ":"), allow_nan=False)


class _LastHead:
    """The head of the last board message framed: the feed hands one message to every viewer in turn.

    One tuple, replaced whole, so a reader never pairs one message with another's head.
    """

    entry: tuple[Mapping[str, Any], str, str] | None = None


def message_head(kind: str, message: Mapping[str, Any]) -> str:
    """Return the head of a frame for board MESSAGE: the same bytes for every viewer, encoded once."""
    entry = _LastHead.entry
    if entry is not None and entry[0] is message and entry[1] == kind:
        return entry[2]
    head = frame_head(
        kind,
        epoch=message.get("epoch"),
        seq=message.get("seq", 0),
        server_time=message.get("server_time"),
        live_at=message.get("live_at"),
        health=message.get("health"),
    )
    _LastHead.entry = (message, kind, head)
    return head


# For a board page loaded before frames opened with a JSON head (protocol 2 and older): its script
# reads the version from a leading ``#board-meta`` element only, so a socket that does not say which
# protocol its page speaks gets this once, first, and that page reloads to fetch the current script.
def legacy_reload_frame() -> str:
    """Return the frame that makes a page of protocol 2 or older reload (and nothing else)."""
    return (
        '<div id="board-meta" hx-swap-oob="true" data-kind="snapshot" data-epoch="" data-seq="0"'
        f' data-protocol="{int(protocol.PROTOCOL_VERSION)}" hidden></div>'
    )


def meta_div(
    kind: str,
    *,
    epoch: str | None,
    seq: int,
    server_time: float | None,
    live_at: float | None,
    health: Mapping[str, Any] | None,
    oob: bool = True,
) -> str:
    """Return the ``#board-meta`` element the page starts from (OOB false); its script then keeps it current."""
    health = health if isinstance(health, Mapping) else {}
    swap = ' hx-swap-oob="true"' if oob else ""
    return (
        f'<div id="board-meta"{swap} data-kind="{escape(kind)}" data-epoch="{escape(epoch or "")}"'
        f' data-seq="{_number(seq)}" data-server-time="{_number(server_time)}" data-live-at="{_number(live_at)}"'
        f' data-health-state="{escape(str(health.get("state") or "unknown"))}"'
        f' data-health-detail="{escape(str(health.get("detail") or ""))}" hidden></div>'
    )


def is_row(row: Any, kinds: Iterable[str]) -> bool:
    """Return whether ROW is a well-formed row of one of KINDS (a bad one is skipped, never sent)."""
    return (
        isinstance(row, dict)
        and row.get("kind") in kinds
        and isinstance(row.get("key"), str)
        and isinstance(row.get("html"), str)
        and row["html"].startswith("<tr ")
    )


def _shared(key: str) -> str:
    # sys.intern takes exact strings only (a str subclass is kept as it is); interned strings die with their last use.
    return sys.intern(key) if type(key) is str else key


def _oob_row(html: str) -> str:
    # Rows are rendered once for the page and every push; the swap marker is added here, per frame.
    return '<tr hx-swap-oob="true"' + html[3:]


# Part numbers a frame's head is sized for when the rows are cut into parts (a million parts is far past
# any board: 256 KiB parts of a million rows are fewer than 2,000).
_MOST_PARTS = 999_999


def snapshot_frames(
    snapshot: Any, row_filter: RowFilter, kinds: tuple[str, ...], *, part_bytes: int | None
) -> tuple[list[str], set[str]]:
    """Return SNAPSHOT's rows for KINDS as frames of at most PART_BYTES each (None: one frame), and the keys shown.

    The first frame (type ``snapshot``) replaces every table body of KINDS with its rows; each following
    one (``snapshot-part``) appends its rows to their bodies. Every head says which part it is of how many
    (``part``, ``parts``), so the page holds its loading state until the last. A frame exceeds PART_BYTES
    only to carry a single row larger than that by itself (a row is never split).
    """
    head_fields = {
        "epoch": snapshot.epoch if snapshot else None,
        "seq": snapshot.seq if snapshot else 0,
        "server_time": snapshot.server_time if snapshot else None,
        "live_at": snapshot.live_at if snapshot else None,
        "health": snapshot.health if snapshot else None,
    }
    rows = [row for row in snapshot.rows.values() if is_row(row, kinds)] if snapshot else []
    # Each part's rows, in page order (kinds in order, rows in display order), cut where the next row would
    # take the frame past the bound. Sizes are in UTF-8 bytes: what the socket carries and the viewer counts
    # (heads are ASCII JSON, so their length is their size).
    most = (_MOST_PARTS, _MOST_PARTS)
    overhead = len("\n<template></template>") + max(
        len(frame_head(protocol.SNAPSHOT_FRAME, protocol=protocol.PROTOCOL_VERSION, part=most, **head_fields)),
        len(frame_head(protocol.SNAPSHOT_PART_FRAME, part=most, **head_fields)),
    )
    chunks: list[list[tuple[str, str]]] = [[]]  # each part's (kind, row html)
    opened = set(kinds)  # the kinds whose body the current part opens already (the first part opens all)
    size = overhead + sum(len(_body_open(kind, first=True)) + len("</tbody>") for kind in kinds)
    shown: set[str] = set()
    for kind in kinds:
        for row in select_rows(rows, kind, row_filter):
            html = row["html"]
            cost = len(html.encode("utf-8"))
            body = 0 if kind in opened else len(_body_open(kind, first=False)) + len("</tbody>")
            if part_bytes is not None and chunks[-1] and size + body + cost > part_bytes:
                chunks.append([])
                opened = set()
                size = overhead
                body = len(_body_open(kind, first=False)) + len("</tbody>")
            chunks[-1].append((kind, html))
            opened.add(kind)
            size += body + cost
            # Interned: every viewer of a board keeps a set of its keys, and a snapshot read from Redis
            # brings each key as a new string, several KB a viewer; interned, the viewers share one each.
            shown.add(_shared(row["key"]))
    parts = []
    for number, chunk in enumerate(chunks, start=1):
        first = number == 1
        head = frame_head(
            protocol.SNAPSHOT_FRAME if first else protocol.SNAPSHOT_PART_FRAME,
            protocol=protocol.PROTOCOL_VERSION if first else None,
            part=(number, len(chunks)),
            **head_fields,
        )
        frame = [head, "\n<template>"]
        for kind in kinds:
            kind_rows = [html for k, html in chunk if k == kind]
            if first or kind_rows:
                # The first part opens every body, even an empty one: the rows the page had must all go.
                frame.extend((_body_open(kind, first=first), *kind_rows, "</tbody>"))
        frame.append("</template>")
        parts.append("".join(frame))
    return parts, shown


def _body_open(kind: str, *, first: bool) -> str:
    if first:
        return f'<tbody id="{TBODY_IDS[kind]}" hx-swap-oob="innerHTML">'
    return f'<tbody hx-swap-oob="beforeend:#{TBODY_IDS[kind]}">'


def delta_frame(message: Mapping[str, Any], row_filter: RowFilter, shown: set[str], kinds: tuple[str, ...]) -> str:
    """Return a frame applying a ``board.delta`` for one viewer, updating SHOWN (the keys on its page)."""
    deleted: list[str] = []
    replaced: list[str] = []
    appended: dict[str, list[str]] = {kind: [] for kind in kinds}
    rows = message.get("rows")
    for row in rows if isinstance(rows, list) else ():
        if not is_row(row, kinds):
            continue
        key = row["key"]
        if row_filter.matches(row):
            if key in shown:
                replaced.append(_oob_row(row["html"]))
            else:
                appended[row["kind"]].append(row["html"])
                shown.add(_shared(key))  # shared by the board's viewers, as in snapshot_frames
        elif key in shown:
            # The row left this viewer's filter: it goes, like a removed one.
            deleted.append(key)
            shown.discard(key)
    removed = message.get("removed")
    for key in removed if isinstance(removed, list) else ():
        if isinstance(key, str) and key in shown:
            deleted.append(key)
            shown.discard(key)
    parts = [message_head(protocol.DELTA_FRAME, message), "\n"]
    if deleted or replaced:
        parts.append("<template>")
        parts.extend(f'<tr id="{escape(key)}" hx-swap-oob="delete"></tr>' for key in deleted)
        parts.extend(replaced)
        parts.append("</template>")
    if any(appended.values()):
        parts.append("<template>")
        for kind, rows_html in appended.items():
            if rows_html:
                parts.append(f'<tbody hx-swap-oob="beforeend:#{TBODY_IDS[kind]}">{"".join(rows_html)}</tbody>')
        parts.append("</template>")
    return "".join(parts)


def tick_frame(message: Mapping[str, Any]) -> str:
    """Return a frame that only refreshes the meta (data age and upstream health)."""
    return message_head(protocol.TICK_FRAME, message)
