"""What a link is made of: sockets over wires, and the one WebSocket dial the connectors use.

A ``Link`` is one generation of ``Socket``s; a rollover replaces a whole link
(and names the replacement as its ``successor``). A socket's wire is a
WebSocket or anything shaped like a ``Wire`` (an async iterator of frames
with ``close()``, ``close_code`` and ``close_reason``): an SSE response, the
webhook queue, a poll schedule (``streams.link.polling``). Every failure of a
link leaves through ``Link.fail``, which wakes the supervisor.

``open_websocket`` dials with the limits the loop wants and follows a
redirect only within the same origin: the upgrade request may carry a
bearer token, and a redirect elsewhere would hand it to another host.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, runtime_checkable

from websockets.asyncio.client import ClientConnection, connect

from streams.link.failures import AuthFailed, LinkLost
from streams.origins import origin

T = TypeVar("T")

# Frames a socket holds received but not yet read; past it, websockets stops reading until the reader catches
# up. Its default, 16 frames of up to max_size (4 MiB) each, is 64 MiB a socket. Our reader takes each frame
# as it comes, so the queue only fills while a handler is slow: 4 frames (16 MiB at worst) are plenty, and
# keepalive is unaffected (pongs are read in order with the frames, whatever the queue's length).
MAX_QUEUE = 4


class Wire(Protocol):
    """What the loop needs of a socket that is not a WebSocket (an SSE response, a poller, a queue).

    Iterating yields frames until the peer ends the stream; a failure is raised as
    ``LinkLost`` (with a reason fit for the admin) or ``OSError``.
    """

    close_code: int | None
    close_reason: str | None

    def __aiter__(self) -> Any: ...

    async def close(self) -> None: ...


@runtime_checkable
class TakesTurns(Protocol):
    """A wire that reads on its own schedule (a poller): other work on its source waits for its turn."""

    async def in_turn(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run WORK between two reads, never during one, and return its result."""
        ...


class Socket:
    """One notification socket and what the watchdog knows about it."""

    def __init__(self, ws: ClientConnection | Wire, *, name: str, expires_at: float | None, data: Any = None) -> None:
        self.ws = ws
        self.name = name
        self.expires_at = expires_at  # epoch seconds, or None
        self.data = data  # the vendor's own bookkeeping (e.g. its channel and topics)
        self.opened_at = time.monotonic()
        self.opened_wall = time.time()
        self.last_alive = self.opened_at  # last heartbeat or pong
        self.last_heartbeat: float | None = None
        self.ping_sent_at: float | None = None
        self.confirmed = asyncio.Event()
        self.tasks: list[asyncio.Task] = []


@dataclass(eq=False)
class Link:
    """One generation of sockets; a rollover replaces a whole link."""

    sockets: list[Socket] = field(default_factory=list)
    failed: str | None = None
    auth_failed: bool = False  # a wire raised AuthFailed: an admin must act, no quick retry
    closed: bool = False
    failed_event: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    successor: Link | None = field(default=None, repr=False)  # the link a rollover replaced this one with
    error: BaseException | None = field(default=None, repr=False)  # what ended the link, when a step raised
    on_failure: Callable[[], None] = field(default=lambda: None, repr=False)  # the supervisor's wake-up

    def fail(self, reason: str, *, auth: bool = False) -> None:
        """Mark the link failed for REASON (AUTH: the credentials were refused); the first reason stays."""
        self.auth_failed = self.auth_failed or auth
        if self.failed is None and not self.closed:
            self.failed = reason
            self.failed_event.set()
            self.on_failure()

    def end(self, exc: BaseException) -> None:
        """Fail the link because the supervisor's work on it raised EXC (which then says why, whatever came first)."""
        self.error = exc
        self.fail(str(exc) or type(exc).__name__)

    def failure(self) -> BaseException | None:
        """Return the exception that says why the link failed (None: it did not); an auth refusal waits for an admin."""
        if self.error is not None:
            return self.error
        if self.failed is None:
            return None
        return AuthFailed(self.failed) if self.auth_failed else LinkLost(self.failed)

    def latest(self) -> Link:
        """Return the newest link of this one's line (itself, unless rollovers replaced it)."""
        link = self
        while link.successor is not None:
            link = link.successor
        return link

    async def in_turn(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run WORK when no socket is mid-read: between two polls on a poll-driven link, at once otherwise."""
        for socket in self.sockets:
            if isinstance(socket.ws, TakesTurns):
                return await socket.ws.in_turn(work)
        return await work()


class SameOriginRedirects(connect):
    """``websockets.connect`` that follows a redirect only to the same origin.

    The upgrade request may carry a bearer token: a redirect elsewhere would hand it to another host.
    """

    def process_redirect(self, exc: Exception) -> Exception | str:
        target = super().process_redirect(exc)
        if isinstance(target, str) and origin(self.uri) != origin(target):
            return LinkLost("the server redirected the socket to another origin; not followed")
        return target


async def open_websocket(
    uri: str, *, headers: dict[str, str] | None, open_timeout: float, max_size: int
) -> ClientConnection:
    """Dial URI (same-origin redirects only) with the loop's limits; no keepalive of websockets' own."""
    return await SameOriginRedirects(
        uri,
        additional_headers=headers,
        open_timeout=open_timeout,
        close_timeout=min(open_timeout, 2.0),
        # The liveness strategy is the one keepalive (application or protocol pings); none beside it.
        ping_interval=None,
        max_size=max_size,
        max_queue=MAX_QUEUE,
    )
