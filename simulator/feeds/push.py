"""The simulator's WebSocket push feed (``docs/protocols/generic.md``, push).

The bearer token is checked on the upgrade request (401: no upgrade). On
connect the session states the current picture, every live interaction in
list frames of up to ``PICTURE_BATCH`` records, then sends each new record in
a frame of its own. Formats: ``json`` (text frames), ``msgpack`` (binary
frames), ``mixed`` (text JSON, MessagePack, and UTF-8 JSON in binary frames
in turn, plus a JSON health check as a binary frame every ``health_every``
seconds). Pings are answered by hand, so a stalled session answers none.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import TYPE_CHECKING, Any

import msgpack
from aiohttp import WSMsgType, web

from simulator.feeds.session import FeedSession

if TYPE_CHECKING:
    from simulator.feeds.servers import FeedServers

PUSH_FORMATS = ("json", "msgpack", "mixed")
PICTURE_BATCH = 100
MAX_CLIENT_MESSAGE = 64 * 1024  # the feed expects nothing from clients but control frames


def _json(payload: Any) -> str:
    return json.dumps(payload, separators=(",", ":"))


class PushSession(FeedSession):
    """One push client: frames queued for it, encoded in the session's format."""

    def __init__(self, ws: web.WebSocketResponse, transport: asyncio.Transport | None, token: str, fmt: str) -> None:
        super().__init__(transport, token)
        self.ws = ws
        self.format = fmt
        self._turn = 0  # mixed format: which encoding the next frame gets

    def encode(self, payload: Any) -> str | bytes:
        """Return PAYLOAD (a record or a list of them) as one frame in the session's format."""
        fmt = self.format
        if fmt == "mixed":
            fmt = ("json", "msgpack", "json-binary")[self._turn % 3]
            self._turn += 1
        if fmt == "json":
            return _json(payload)
        if fmt == "json-binary":
            return _json(payload).encode()
        return msgpack.packb(payload)

    def send_records(self, records: list[dict[str, Any]]) -> None:
        """Queue RECORDS: one record as a frame of its own, more as a list frame."""
        if records:
            self.put(self.encode(records[0] if len(records) == 1 else records))

    def send_raw(self, frame: str | bytes) -> None:
        """Queue FRAME as it is (the malformed fault)."""
        self.put(frame)

    def send_padded(self, record: dict[str, Any], size: int) -> None:
        """Queue RECORD padded to about SIZE bytes, in the session's format."""
        record["payload"]["padding"] = "x" * max(size - len(_json(record)), 0)
        self.put(self.encode(record))

    async def write(self, counters: Any) -> None:
        """Send queued frames until the session ends (held back while stalled)."""
        while True:
            frame = await self.queue.get()
            await self.flowing.wait()
            if frame is None or self.closing or self.ws.closed:
                return
            if isinstance(frame, str):
                await self.ws.send_str(frame)
            else:
                await self.ws.send_bytes(frame)
            counters.frames_sent += 1

    async def health_checks(self, every: float) -> None:
        """In the mixed format, send a JSON health check as a binary frame every EVERY seconds."""
        while True:
            await asyncio.sleep(every)
            if self.format == "mixed":
                check = {"type": "health.check", "status": "ok", "timestamp": round(time.time() * 1000)}
                self.put(_json(check).encode())


async def serve_push(feeds: FeedServers, request: web.Request) -> web.StreamResponse:
    """Check the bearer token, upgrade, state the picture, then stream records until the client goes."""
    token = feeds.bearer(request)
    if token is None:
        return feeds.unauthorized()
    # Pings are answered below, by hand: a stalled session must leave them unanswered.
    ws = web.WebSocketResponse(autoping=False, max_msg_size=MAX_CLIENT_MESSAGE)
    await ws.prepare(request)
    session = PushSession(ws, request.transport, token, feeds.options.push_format)
    feeds.counters.push_connections += 1
    feeds.log_connection("push", token, format=session.format)
    # The picture and the registration happen together (no await between): no record falls between them.
    picture = feeds.records.current()
    for start in range(0, len(picture), PICTURE_BATCH):
        session.send_records(picture[start : start + PICTURE_BATCH])
    feeds.push_sessions.add(session)
    writer = asyncio.create_task(session.write(feeds.counters), name="feed-push-writer")
    checks = asyncio.create_task(session.health_checks(feeds.options.health_every), name="feed-push-health")
    try:
        async for message in ws:
            if message.type == WSMsgType.PING:
                if session.stalled():
                    feeds.counters.pings_ignored += 1
                else:
                    await ws.pong(message.data)
                    feeds.counters.pings_answered += 1
            if writer.done():
                break
    except (ConnectionError, RuntimeError):
        pass  # the client went away mid-write
    finally:
        feeds.push_sessions.discard(session)
        session.closing = True
        for task in (writer, checks):
            task.cancel()
        await asyncio.gather(writer, checks, return_exceptions=True)
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.close()
        session.finished.set()
    return ws
