"""One open notification socket: its outbound queue, writer, heartbeat and stalls; and the message envelope."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from simulator.genesys.channels import Channel

log = logging.getLogger(__name__)

# A socket that falls this many messages behind is closed rather than buffered without bound.
MAX_PENDING = 10_000

HEARTBEAT = json.dumps({"topicName": "channel.metadata", "eventBody": {"message": "WebSocket Heartbeat"}})
PONG = json.dumps({"topicName": "channel.metadata", "eventBody": {"message": "pong"}})


def envelope(topic: str, body: dict[str, Any]) -> str:
    """Return the JSON text of one notification message on TOPIC."""
    return json.dumps(
        {"topicName": topic, "version": "2", "eventBody": body, "metadata": {"CorrelationId": str(uuid.uuid4())}},
        separators=(",", ":"),
    )


@dataclass(frozen=True)
class _Close:
    code: int
    message: str


class SocketSession:
    """One open notification socket: an outbound queue drained by a writer task, and a heartbeat."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        channel: Channel,
        heartbeat_period: float,
        transport: asyncio.BaseTransport | None = None,
    ) -> None:
        self.ws = ws
        self.transport = transport  # for dropping the connection without a close frame (a fault)
        self.channel = channel
        self.heartbeat_period = heartbeat_period
        self.outbox: asyncio.Queue[str | _Close] = asyncio.Queue(MAX_PENDING)
        self.closing = False
        self.sent = 0
        # While stalled (a monotonic deadline, inf: until cleared) nothing reaches the client.
        self.stalled_until: float | None = None
        self.dropped = 0
        self._tasks: list[asyncio.Task] = []

    def start(self) -> None:
        """Start the writer and the heartbeat."""
        self._tasks = [asyncio.create_task(self._write(), name=f"sim-socket-writer-{self.channel.id}")]
        if self.heartbeat_period > 0:
            self._tasks.append(asyncio.create_task(self._beat(), name=f"sim-socket-heartbeat-{self.channel.id}"))

    def send(self, text: str) -> bool:
        """Queue TEXT for the client; return False if the socket is closing (the message is lost)."""
        if self.closing:
            return False
        if self.stalled():
            self.dropped += 1
            return False
        try:
            self.outbox.put_nowait(text)
        except asyncio.QueueFull:
            log.warning("simulator socket on channel %s fell %d behind; closing it", self.channel.id, MAX_PENDING)
            self.close(1008, "too slow")
            return False
        return True

    def stall(self, seconds: float | None) -> None:
        """Send nothing (no events, heartbeats or pongs) for SECONDS, or until ``unstall``."""
        self.stalled_until = math.inf if seconds is None else time.monotonic() + seconds

    def unstall(self) -> None:
        """End a stall."""
        self.stalled_until = None

    def stalled(self) -> bool:
        """Return whether the socket is stalled just now."""
        if self.stalled_until is not None and time.monotonic() >= self.stalled_until:
            self.stalled_until = None
        return self.stalled_until is not None

    def close(self, code: int, message: str = "") -> None:
        """Close the socket with CODE after what is already queued (idempotent)."""
        if self.closing:
            return
        self.closing = True
        if self.outbox.full():
            # A stuck client loses its backlog; the close frame must still get through.
            while not self.outbox.empty():
                self.outbox.get_nowait()
        self.outbox.put_nowait(_Close(code, message))

    def abort(self) -> None:
        """Drop the connection at once, without a close frame (as a network failure would)."""
        self.closing = True
        if self.transport is not None:
            self.transport.abort()

    async def stop(self) -> None:
        """Cancel the writer and heartbeat and wait for them."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _write(self) -> None:
        try:
            while True:
                item = await self.outbox.get()
                if isinstance(item, _Close):
                    await self.ws.close(code=item.code, message=item.message.encode())
                    return
                await self.ws.send_str(item)
                self.sent += 1
        except (ConnectionResetError, RuntimeError) as exc:
            # The client went away mid-send; the reader notices and cleans up.
            log.debug("simulator socket on channel %s: %s", self.channel.id, exc)

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_period)
            self.send(HEARTBEAT)
