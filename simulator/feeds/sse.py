"""The simulator's Server-Sent Events feed (``docs/protocols/generic.md``, SSE).

``GET /feeds/sse`` with a bearer token; ``queueId``, ``skillId`` (the same
thing, as CXone calls queues) and ``agentId`` filter at the source (any of
the values of one parameter, all of the parameters given). Every stream
starts with ``retry:``; then:

- with a ``Last-Event-ID`` the record log still covers, the records after it
  (filtered), each with its record number as ``id:``;
- otherwise (no id, an unknown one, or one too old) the current picture, as
  ``data`` events without ids, followed by a bare ``id:`` block naming the
  last record number, so a client that drops mid-picture gets the picture
  again rather than resuming past it;

then live records (unnamed events, ``id:`` each) and a ``: keepalive``
comment after ``sse_keepalive`` seconds without a write. Picture records are
written over several ``data:`` lines (pretty-printed JSON), as the standard
allows. ``reconnect`` and ``error`` events end the stream after them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from simulator.feeds.session import FeedSession, token_tag

if TYPE_CHECKING:
    from simulator.feeds.servers import FeedServers

END = object()  # queued after a control event: the stream ends once it is written


class SseSession(FeedSession):
    """One event-stream client: its filter and the text queued for it."""

    def __init__(
        self,
        response: web.StreamResponse,
        transport: asyncio.Transport | None,
        token: str,
        *,
        queues: set[str],
        agents: set[str],
        line_end: str,
    ) -> None:
        super().__init__(transport, token)
        self.response = response
        self.queues = queues
        self.agents = agents
        self.line_end = line_end
        self.control_written: list[tuple[str, float]] = []  # (event, monotonic time written)

    def matches(self, record: dict[str, Any]) -> bool:
        """Return whether RECORD passes the stream's filter."""
        if self.queues and record.get("queue_id") not in self.queues:
            return False
        return not self.agents or record.get("agent_id") in self.agents

    def _block(self, lines: list[str]) -> str:
        nl = self.line_end
        return nl.join(lines) + nl + nl

    def send_event(self, data: str, *, event: str | None = None, event_id: str | None = None) -> None:
        """Queue one event; DATA with line breaks goes out as several ``data:`` lines."""
        lines = [f"event: {event}"] if event else []
        lines += [f"data: {line}" for line in data.splitlines() or [""]]
        if event_id is not None:
            lines.append(f"id: {event_id}")
        self.put(self._block(lines))

    def send_record(self, seq: int, record: dict[str, Any]) -> None:
        """Queue one live (or replayed) record, numbered SEQ."""
        self.send_event(json.dumps(record, separators=(",", ":")), event_id=str(seq))

    def send_picture(self, records: list[dict[str, Any]], seq: int) -> None:
        """Queue the current picture (no ids), then a bare ``id:`` naming SEQ, the last record number."""
        for record in records:
            self.send_event(json.dumps(record, indent=1), event="data")
        self.put(self._block([f"id: {seq}"]))

    def send_retry(self, retry_ms: int) -> None:
        """Queue a ``retry:`` block."""
        self.put(self._block([f"retry: {retry_ms}"]))

    def send_padded(self, record: dict[str, Any], size: int) -> None:
        """Queue RECORD as one event padded to about SIZE bytes."""
        text = json.dumps(record, separators=(",", ":"))
        record["payload"]["padding"] = "x" * max(size - len(text), 0)
        self.send_event(json.dumps(record, separators=(",", ":")))

    def send_control(self, event: str, body: dict[str, Any]) -> None:
        """Queue a control event (reconnect, error); the stream ends after it."""
        self.send_event(json.dumps(body), event=event)
        self.put((END, event))

    async def write(self, keepalive: float, counters: Any, log: Any) -> None:
        """Write queued text until the session ends; a keepalive comment fills each quiet period."""
        while True:
            try:
                item = await asyncio.wait_for(self.queue.get(), timeout=keepalive)
            except TimeoutError:
                item = f": keepalive{self.line_end}{self.line_end}"
            await self.flowing.wait()
            if item is None or self.closing:
                return
            if isinstance(item, tuple):
                # A control event went out just before: note when, then end the stream.
                log.append({"event": item[1], "at": time.monotonic(), "token": token_tag(self.token)})
                return
            await self.response.write(item.encode())
            counters.events_sent += 1


def _ids(request: web.Request, *names: str) -> set[str]:
    return {value for name in names for value in request.query.getall(name, []) if value}


async def serve_sse(feeds: FeedServers, request: web.Request) -> web.StreamResponse:
    """Check the bearer token, then replay or state the picture, then stream records until the client goes."""
    token = feeds.bearer(request)
    if token is None:
        return feeds.unauthorized()
    options = feeds.options
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    session = SseSession(
        response,
        request.transport,
        token,
        queues=_ids(request, "queueId", "skillId"),
        agents=_ids(request, "agentId"),
        line_end=options.sse_line_end,
    )
    feeds.counters.sse_connections += 1
    if feeds.busy_streams > 0:
        # A busy server turns the client away before any data: the reconnect event is the first thing it reads.
        feeds.busy_streams -= 1
        feeds.log_connection("sse", token, turned_away=True)
        session.send_control("reconnect", {"retryAfterMs": feeds.busy_retry_ms})
        with contextlib.suppress(ConnectionError, RuntimeError):  # the client went away
            await session.write(options.sse_keepalive, feeds.counters, feeds.control_sent)
        return response
    last_id = request.headers.get("Last-Event-ID")
    if options.sse_retry_ms is not None:
        session.send_retry(options.sse_retry_ms)
    # Replay (or picture) and registration happen together (no await between): no record falls between them.
    replay = _replay(feeds, last_id)
    if replay is None:
        session.send_picture([r for r in feeds.records.current() if session.matches(r)], feeds.records.seq)
    else:
        for seq, record in replay:
            if session.matches(record):
                session.send_record(seq, record)
    feeds.log_connection(
        "sse",
        token,
        last_event_id=last_id,
        replayed=None if replay is None else [seq for seq, record in replay if session.matches(record)],
        queues=sorted(session.queues),
        seq=feeds.records.seq,
    )
    feeds.sse_sessions.add(session)
    try:
        await session.write(options.sse_keepalive, feeds.counters, feeds.control_sent)
    except (ConnectionError, RuntimeError):
        pass  # the client went away
    finally:
        feeds.sse_sessions.discard(session)
        session.closing = True
        session.finished.set()
    with contextlib.suppress(ConnectionError, RuntimeError):
        await response.write_eof()
    return response


def _replay(feeds: FeedServers, last_id: str | None) -> list[tuple[int, dict[str, Any]]] | None:
    """Return the records after LAST_ID, or None when the picture must be sent instead."""
    if last_id is None or not last_id.isascii() or not last_id.isdigit() or len(last_id) > 18:
        return None
    seq = int(last_id)
    if seq > feeds.records.seq:
        return None  # an id from another run of the simulator: unknown here
    return feeds.records.since(seq)
