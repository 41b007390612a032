"""The links a connector has open: the current one, and those beside it while they are confirmed or retired.

Opening a link asks the vendor's ``open_link`` for its sockets, starts a
reader and the liveness strategy's keepalive for each, and waits (up to
``open_timeout``) until every socket proved itself. Closing cancels them,
cuts the transport of a failed link (a silent peer would hold a polite close
for the whole close timeout) and, for a link replaced on purpose, lets the
vendor tidy up (``retire_link``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from streams.health import LinkHealth
from streams.link.failures import LinkLost, describe
from streams.link.liveness import Liveness
from streams.link.reader import read
from streams.link.sockets import Link, Socket
from streams.link.timing import Timing

log = logging.getLogger(__name__)


class Owner(Protocol):
    """What the links need of their connector: its hooks, its liveness and the supervisor's wake-up."""

    liveness: Liveness
    timing: Timing
    health: LinkHealth

    async def open_link(self) -> Link: ...

    async def retire_link(self, link: Link) -> None: ...

    def handle(self, socket: Socket, frame: Any) -> None: ...

    def alive(self, socket: Socket, *, pong: bool) -> None: ...

    def is_current(self, socket: Socket) -> bool: ...

    def set_state(self, state: str, detail: str = "") -> None: ...

    def wake(self) -> None: ...


class Links:
    """The current link and the links beside it (being confirmed, or replaced and closing)."""

    def __init__(self, owner: Owner) -> None:
        self.owner = owner
        self.current: Link | None = None
        self.others: set[Link] = set()

    def of(self, socket: Socket) -> Link | None:
        """Return the open link that holds SOCKET, if any."""
        for link in (self.current, *self.others):
            if link is not None and socket in link.sockets:
                return link
        return None

    async def open_confirmed(self) -> Link:
        """Open a link and wait until each socket heard a heartbeat or pong."""
        owner = self.owner
        link = await owner.open_link()
        link.on_failure = owner.wake
        self.others.add(link)
        try:
            for socket in link.sockets:
                self.watch(link, socket)
            await asyncio.wait_for(_confirmed(link), timeout=owner.timing.open_timeout)
        except TimeoutError:
            await self.close(link)
            raise LinkLost("no heartbeat or pong after connecting") from None
        except BaseException:
            await self.close(link)
            raise
        failure = link.failure()
        if failure is not None:
            await self.close(link)
            raise failure
        self.others.discard(link)
        return link

    def watch(self, link: Link, socket: Socket) -> None:
        """Start SOCKET's reader and its keepalive (confirming it at once when opening is proof enough)."""
        owner = self.owner
        if owner.liveness.confirmed_by_opening:
            socket.confirmed.set()
        socket.tasks = [
            asyncio.create_task(read(owner, link, socket), name=f"{owner} read"),
            asyncio.create_task(owner.liveness.keep(owner, link, socket), name=f"{owner} keepalive"),
        ]

    async def close(self, link: Link, *, retire: bool = False) -> None:
        """Close LINK's sockets (idempotent); with RETIRE, let the vendor tidy up a link replaced on purpose."""
        if link.closed:
            return
        link.closed = True
        self.others.discard(link)
        for socket in link.sockets:
            for task in socket.tasks:
                task.cancel()
            transport = getattr(socket.ws, "transport", None)
            if link.failed and transport is not None:
                # A silent peer would hold a polite close for the whole close timeout: cut it.
                transport.abort()
        await asyncio.gather(*(s.ws.close() for s in link.sockets), return_exceptions=True)
        await asyncio.gather(*(t for s in link.sockets for t in s.tasks), return_exceptions=True)
        if not retire or link.failed:
            # Only a link replaced on purpose is tidied up: after a failure the vendor is likely
            # unreachable, and a closing worker must not wait for it.
            return
        try:
            await asyncio.wait_for(self.owner.retire_link(link), timeout=min(self.owner.timing.rest_timeout, 5.0))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.info("%s: tidying up an old link failed (%s)", self.owner, describe(exc))

    async def drop(self) -> None:
        """Close every link: the current one and those beside it."""
        link, self.current = self.current, None
        if link is not None:
            await self.close(link)
        for old in list(self.others):
            await self.close(old)


async def _confirmed(link: Link) -> None:
    """Return once every socket of LINK is confirmed, or the link failed."""
    failed = asyncio.ensure_future(link.failed_event.wait())
    try:
        for socket in link.sockets:
            confirmed = asyncio.ensure_future(socket.confirmed.wait())
            try:
                await asyncio.wait({confirmed, failed}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                confirmed.cancel()
            if link.failed:
                return
    finally:
        failed.cancel()
