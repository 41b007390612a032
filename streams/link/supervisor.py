"""The supervisor: what a connector does with each link the reconnect loop hands it.

A new link is made current and resynced; then the supervisor sleeps until
woken (a hook asked for something, a link failed) or until a rollover or a
snapshot retry comes due, and does what was asked in a fixed order: take the
new set of watched queues, run the vendor's maintenance, roll over, resync.
It returns once the newest link of the line failed (or the connector
closed); the reconnect loop then says why and backs off. Vendor work that
fails rolls over to a new link; refused credentials end the link.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from streams.link.failures import AuthFailed, LinkLost, describe
from streams.link.links import Links
from streams.link.reconnect import Retries, reconnecting
from streams.link.resync import Resyncs
from streams.link.rollover import Rollovers
from streams.link.sockets import Link

if TYPE_CHECKING:
    from streams.link.connector import Connector
    from streams.vendors.spec import ConnectionSpec

log = logging.getLogger(__name__)


class Supervisor:
    """Stream a connector's links one line after another; within a line, resync and roll over as asked."""

    def __init__(
        self,
        connector: Connector,
        links: Links,
        *,
        retries: Retries,
        resyncs: Resyncs,
        rollovers: Rollovers,
        pause: Callable[[float], Awaitable[None]],
    ) -> None:
        self.connector = connector
        self.links = links
        self.retries = retries
        self.resyncs = resyncs
        self.rollovers = rollovers
        self._pause = pause
        self.woken = asyncio.Event()
        self.closed = asyncio.Event()
        self.pending_spec: ConnectionSpec | None = None  # watched queues to take at the next wake-up

    def __repr__(self) -> str:
        return repr(self.connector)

    async def run(self) -> None:
        """Open, stream and reopen links until closed."""
        links = reconnecting(
            self._open_afresh, retries=self.retries, closed=self.closed, drop=self.drop, pause=self._pause
        )
        async for link in links:
            await self._stream(link)

    async def drop(self) -> None:
        """Close every link and forget the events held for a snapshot (the next link resyncs)."""
        await self.links.drop()
        self.resyncs.drop()

    async def resync(self, reason: str) -> bool:
        """Take a snapshot in the current link's turn; return whether it succeeded."""
        link = self.links.current
        if link is None:
            raise LinkLost("no link to resync")
        return await link.in_turn(lambda: self.resyncs.take(self.connector.snapshot, reason))

    # -- one line of links ---------------------------------------------------------------

    async def _open_afresh(self) -> Link:
        """Open the first link of a new line (at the start, or after a failure): the newest spec, a clean slate."""
        if self.pending_spec is not None:
            self.connector.spec, self.pending_spec = self.pending_spec, None
        self.resyncs.forget()
        self.rollovers.forget()
        return await self.links.open_confirmed()

    async def _stream(self, link: Link) -> None:
        """Make LINK current, resync, and supervise it (and its rollovers) until the newest one fails."""
        self.links.current = link
        self.connector.health.note("connected", f"{len(link.sockets)} socket(s) confirmed")
        try:
            if await self.resync("connected"):
                self.connector.set_state("live")
            while not self.closed.is_set():
                await self._sleep_until_woken(self._next_deadline())
                if self.closed.is_set() or link.latest().failure() is not None:
                    return
                await self._step()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # Refused credentials, or a bug in a step: the newest link ends with it, and the loop says why.
            link.latest().end(exc)

    async def _step(self) -> None:
        """Do whatever the last wake-up asked for, in a fixed order."""
        connector = self.connector
        if self.pending_spec is not None:
            old, connector.spec, self.pending_spec = connector.spec, self.pending_spec, None
            try:
                await connector.apply_update(old, connector.spec)
            except (AuthFailed, asyncio.CancelledError):
                raise
            except Exception as exc:
                # A fresh link subscribes the whole new set; the current one streams meanwhile.
                self._vendor_work_failed("resubscribing", exc)
            self.resyncs.reason = self.resyncs.reason or "watched queues changed"
        try:
            await connector.maintain()
        except (AuthFailed, asyncio.CancelledError):
            raise
        except Exception as exc:
            self._vendor_work_failed("maintenance", exc)
        now = time.time()
        rollover = self.rollovers.due(self.links.current, now)
        if rollover is not None and await self._roll_over(rollover):
            # The rollover took its own snapshot.
            self.resyncs.reason = None
            return
        resync = self.resyncs.due(now)
        if resync is not None and await self.resync(resync):
            connector.set_state("live")

    async def _roll_over(self, reason: str) -> bool:
        """Switch to a new link without a gap: open and confirm it, close the old one, then resync.

        Return whether the switch happened (a failed one keeps the current link).
        """
        connector = self.connector
        log.info("%s: rolling over to a new link (%s)", self, reason)
        try:
            new = await self.links.open_confirmed()
        except (AuthFailed, asyncio.CancelledError):
            raise
        except Exception as exc:
            # The old link keeps streaming; if it closes meanwhile the normal reconnect takes over.
            connector.health.record_error(f"rollover failed: {describe(exc)}")
            log.warning("%s: rollover failed (%s); keeping the current link", self, describe(exc))
            self.rollovers.failed(reason)
            return False
        old, self.links.current = self.links.current, new
        self.rollovers.succeeded()
        if old is not None:
            old.successor = new
            await self.links.close(old, retire=True)
        connector.health.note("connected", f"rolled over ({reason})")
        if await self.resync(reason):
            connector.set_state("live")
        return True

    def _vendor_work_failed(self, what: str, exc: Exception) -> None:
        detail = f"{what} failed: {describe(exc)}"
        self.connector.health.record_error(detail)
        log.warning("%s: %s; rolling over to a new link", self, detail)
        self.rollovers.ask_unless_asked(detail)

    def _next_deadline(self) -> float | None:
        """Return the epoch time at which the supervisor must look again without being woken."""
        deadlines = [d for d in (self.rollovers.deadline(self.links.current), self.resyncs.retry_at) if d is not None]
        return min(deadlines) if deadlines else None

    async def _sleep_until_woken(self, deadline: float | None) -> None:
        timeout = None if deadline is None else max(deadline - time.time(), 0.0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.woken.wait(), timeout=timeout)
        self.woken.clear()
