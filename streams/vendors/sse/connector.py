"""The generic Server-Sent Events feed (``docs/protocols/generic.md``, SSE).

The worker opens ``GET <stream_url>`` with ``Accept: text/event-stream``, the
bearer token, one ``queueId`` parameter per watched queue (filtering at the
source) and, on a reconnect, ``Last-Event-ID``. The response rides the base
loop as a ``Wire``; ``sse_parser`` cuts it into events:

- unnamed, ``message`` and ``data`` events carry a JSON record or a list of
  records, mapped like the push feed's (``feed_common``);
- ``reconnect``: the server wants the client back later (data may carry
  ``{"retryAfterMs"}``): the link closes and the next attempt waits that long;
- ``error`` (``{"status", "message"}``): the link closes; after a 401 the
  token is dropped so the reconnect fetches a new one first (a second 401
  within ``healthy_after`` of the first, so to a new token, is an auth
  failure: no token fetch every few seconds);
- ``retry:`` sets the least wait before any reconnect (like EventSource).

Liveness: any bytes (a ``: keepalive`` comment too) prove the stream alive;
nothing for twice ``keepalive_seconds`` fails it. Backoff is short: jittered
and capped at 5 s by default.

Gaps: a reconnect sends the last event id seen, so a server that replays
leaves no gap. A server that cannot replay (the id is too old) states its
current picture instead; interactions that ended meanwhile are not in it, and
nothing marks where it ends, so such rows are left to the Floor's TTL (as for
the push feed). When the watched queues change, the new stream starts without
an id: a replay would not bring the newly watched queues' interactions.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from streams import sanity
from streams.feeds.decode import FrameError, decode_frame
from streams.feeds.mapped import FeedRefused, MappedFeed
from streams.health import scrub
from streams.link.failures import LinkLost
from streams.link.liveness import Heartbeats
from streams.link.sockets import Link, Socket
from streams.link.timing import Timing
from streams.oauth import AuthFailed
from streams.retry_after import parse_retry_after
from streams.vendors.spec import ConnectionSpec
from streams.vendors.sse.parser import SseEvent, SseParser

log = logging.getLogger(__name__)

RECORD_EVENTS = ("", "message", "data")
MAX_ID_CHARS = 200  # a longer last event id is not sent back (a header, not a payload)


@dataclass
class StreamState:
    """What one stream learned: its filter, the token it was opened with, and the last event id seen."""

    queue_ids: tuple[str, ...]
    token: str | None = None
    last_event_id: str = ""


class SseWire:
    """An aiohttp event-stream response as a ``Wire``: iterating yields parsed ``SseEvent``s."""

    def __init__(self, response: aiohttp.ClientResponse, parser: SseParser) -> None:
        self.response = response
        self.parser = parser
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.on_chunk: Callable[[], None] = lambda: None  # told of every chunk of bytes (liveness)
        self.on_close: Callable[[], None] = lambda: None

    def __aiter__(self) -> AsyncIterator[SseEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[SseEvent]:
        try:
            async for chunk in self.response.content.iter_any():
                self.on_chunk()
                for event in self.parser.feed(chunk):
                    yield event
        except (aiohttp.ClientError, OSError) as exc:
            raise LinkLost(f"the event stream failed ({type(exc).__name__})") from None
        raise LinkLost("the server ended the event stream")

    async def close(self) -> None:
        """Drop the connection (idempotent)."""
        self.response.close()
        self.on_close()


class SseConnector(MappedFeed):
    """Stream one generic Server-Sent Events feed."""

    kind = "sse"
    liveness = Heartbeats()
    default_timing = Timing(
        heartbeat_period=15.0,  # replaced by the connection's keepalive period
        dead_after=2.0,
        open_timeout=15.0,
        rest_timeout=30.0,
        backoff_first=1.0,
        backoff_min=1.0,
        backoff_factor=1.6,
        backoff_cap=5.0,
        healthy_after=60.0,
    )

    def __init__(self, spec: ConnectionSpec, *args: Any, timing: Timing | None = None, **kwargs: Any) -> None:
        super().__init__(spec, *args, timing=timing, **kwargs)
        if timing is None:
            # The admin says how often the server sends keepalives; twice that in silence ends the stream.
            self.timing = dataclasses.replace(self.timing, heartbeat_period=spec.settings.keepalive_seconds)
        self.stream: StreamState | None = None  # the newest stream's state
        self.retry_ms: int | None = None  # the server's ``retry:``, kept across reconnects as EventSource does
        self._not_before: float | None = None  # monotonic: a reconnect event's "come back at"
        self._closed_at: float | None = None  # monotonic: when the last stream closed
        self._stale_token: str | None = None  # the server said 401 to this token
        self._last_refusal: float | None = None  # monotonic: the last error event with status 401
        self._refused_again = False  # a new token was refused too: the next attempt is an auth failure

    # -- the link ------------------------------------------------------------------------

    async def open_link(self) -> Link:
        """Wait as the server asked, then open the event stream (resuming after the last event id)."""
        await self._wait_as_asked()
        if self._refused_again:
            self._refused_again = False
            raise AuthFailed("the feed reported 401 again, to a new token")
        if self._stale_token is not None and self.tokens is not None:
            await self.tokens.invalidate(self._stale_token)
        self._stale_token = None
        queue_ids = tuple(self.spec.queue_ids)
        previous = self.stream
        resume = previous.last_event_id if previous is not None and previous.queue_ids == queue_ids else ""
        state = StreamState(queue_ids, last_event_id=resume)
        parser = SseParser(max_event_chars=self.spec.settings.max_frame_bytes, last_event_id=resume)

        async def get(headers: dict[str, str]) -> aiohttp.ClientResponse:
            state.token = headers.get("Authorization", "").removeprefix("Bearer ") or None
            return await self._get(headers, resume)

        response = await self.authorised(get)
        wire = SseWire(response, parser)
        socket = Socket(wire, name="sse", expires_at=None, data=state)
        wire.on_chunk = lambda: self._chunk(socket, parser)
        wire.on_close = self._stream_closed
        self.sockets_opened += 1
        self.stream = state
        # A 200 with an event-stream body proves the stream open: the server may say nothing for a while.
        self.alive(socket, pong=False)
        return Link(sockets=[socket])

    async def _get(self, headers: dict[str, str], resume: str) -> aiohttp.ClientResponse:
        if self.session is None:
            raise RuntimeError("the connector is not running")
        headers = headers | {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if resume and len(resume) <= MAX_ID_CHARS and resume.isprintable():
            headers["Last-Event-ID"] = resume
        params = [("queueId", q) for q in self.spec.queue_ids]
        async with asyncio.timeout(self.timing.open_timeout):
            response = await self.session.get(
                self.spec.settings.stream_url,
                params=params,
                headers=headers,
                # The token goes to the configured host only; a redirect is an error to fix in the admin.
                allow_redirects=False,
                # The stream has no end: liveness is the keepalive task's business, not a read timeout.
                timeout=aiohttp.ClientTimeout(total=None, sock_read=None),
            )
        if response.status != 200:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            # Closed, not released: a body nobody reads (of any length) must not go back to the pool.
            response.close()
            raise FeedRefused(response.status, retry_after)
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type != "text/event-stream":
            response.close()
            raise LinkLost(f"the feed answered {content_type or 'no content type'}, not an event stream")
        return response

    def _chunk(self, socket: Socket, parser: SseParser) -> None:
        self.alive(socket, pong=False)
        if parser.retry is not None:
            self.retry_ms = parser.retry

    def _stream_closed(self) -> None:
        self._closed_at = time.monotonic()

    async def _wait_as_asked(self) -> None:
        """Sleep until the server's ``reconnect`` wait, or its ``retry:`` time, is over (the backoff counts)."""
        now = time.monotonic()
        wait = 0.0
        if self._not_before is not None:
            wait = self._not_before - now
            self._not_before = None
        if self.link is None and self.retry_ms is not None and self._closed_at is not None:
            # A reconnect (not a rollover beside a live link) waits at least the server's retry time.
            wait = max(wait, self.retry_ms / 1000 - (now - self._closed_at))
        wait = min(wait, self.timing.max_retry_after)
        if wait > 0:
            log.info("%s: waiting %.1f s before reconnecting, as the server asked", self, wait)
            await self._pause(wait)
            if self._closed.is_set():
                raise LinkLost("closed while waiting to reconnect")

    # -- events --------------------------------------------------------------------------

    def handle(self, socket: Socket, frame: Any) -> None:
        """Act on one event: map a record, obey ``reconnect`` and ``error``; count the odd ones."""
        event: SseEvent = frame
        if event.oversized:
            self.bad.note("oversized_frame", f"an event above {self.spec.settings.max_frame_bytes} bytes")
        elif event.type in RECORD_EVENTS:
            if event.data:
                try:
                    # An event's data is text: decoded as a text frame is (JSON, the same size limit).
                    records = decode_frame(event.data, self.spec.settings.max_frame_bytes)
                except FrameError as exc:
                    self.bad.note(exc.kind, event.data)
                else:
                    self.take_records(records)
        elif event.type == "reconnect":
            self._reconnect_asked(socket, event.data)
        elif event.type == "error":
            self._error_reported(socket, event.data)
        else:
            self.health.count("unknown_event")
        # Only now: an event the loop never got to must come again after a reconnect.
        socket.data.last_event_id = event.last_event_id

    def _reconnect_asked(self, socket: Socket, data: str) -> None:
        body = _json_object(data)
        # A wait is a duration (``streams.sanity``): NaN, infinity, negatives and strings are refused
        # (counted when given), and the server's retry time (if any) and the backoff decide.
        wait_ms = sanity.duration_ms(body.get("retryAfterMs"))
        if wait_ms is None:
            wait_ms = self.retry_ms or 0
        wait = min(wait_ms / 1000, self.timing.max_retry_after)
        link = self._link_of(socket)
        if link is not None and not link.closed:
            # The current link, or one still being opened (its first bytes may arrive before it is
            # current): either way the next attempt must wait. A retired link's hint is old news.
            self._not_before = time.monotonic() + wait
        self.health.note("backoff_scheduled", f"the server asked to reconnect in {wait:.1f} s", delay=round(wait, 3))
        self.fail(socket, f"the server asked to reconnect in {wait:.1f} s")

    def _error_reported(self, socket: Socket, data: str) -> None:
        body = _json_object(data)
        status = body.get("status")
        status = status if isinstance(status, int) and not isinstance(status, bool) else None
        message = body.get("message")
        message = scrub(message, 100) if isinstance(message, str) else ""
        self.health.count("server_error_event")
        if status == 401:
            # The token is no good any more: the reconnect fetches a new one before it dials.
            self._stale_token = socket.data.token
            now = time.monotonic()
            recent = self._last_refusal is not None and now - self._last_refusal < self.timing.healthy_after
            self._refused_again = recent or self.tokens is None
            self._last_refusal = now
        reason = f"the server reported an error ({status or 'no status'}{': ' + message if message else ''})"
        self.fail(socket, reason)


def _json_object(data: str) -> dict[str, Any]:
    """Return DATA parsed as a JSON object, or {} when it is not one (a control event's data is optional)."""
    try:
        value = json.loads(data) if data else {}
    except (ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}
