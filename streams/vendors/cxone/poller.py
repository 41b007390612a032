"""Polling as a socket: the Wire that yields CXone poll results, and the circuit breaker that spares the tenant.

CXone has no push stream for supervisors, so the connector's one "socket"
is a ``PollWire``: iterating it calls the connector's poll step whenever it
is due and yields each result as a frame; the base loop hands frames to
``handle()`` as it does WebSocket messages.

The ``Breaker`` counts failed calls in a row. Below ``threshold`` the poller
retries after Retry-After or a short backoff; at ``threshold`` the circuit
opens and nobody calls CXone for a cooling period (at least Retry-After),
then one probe goes out. A probe that fails opens it again for longer (up
to ``cap``); one that succeeds closes it and the counts start over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from streams.connectors.base import LinkLost
from streams.oauth import AuthFailed
from streams.vendors.cxone.rest import Fetched

log = logging.getLogger(__name__)


@dataclass
class PollResult:
    """What one poll step fetched, per endpoint ("agents", "skills", "contacts"), numbered in fetch order."""

    seq: int
    fetched: dict[str, Fetched] = field(default_factory=dict)
    # The contacts were fetched in full: a live contact missing from two complete such lists in a row ended.
    full_contacts: bool = False


class Breaker:
    """Open after THRESHOLD failures in a row; cool off for a growing period, then let one probe through."""

    def __init__(
        self,
        *,
        threshold: int = 3,
        cooling: float = 20.0,
        factor: float = 2.0,
        cap: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = max(1, threshold)
        self.cooling = cooling
        self.factor = factor
        self.cap = cap
        self._clock = clock
        self.failures = 0  # in a row
        self.trips = 0  # openings in a row (grows the cooling period)
        self.opened = 0  # openings in all (for tests and the health page)
        self.open_until: float | None = None

    @property
    def state(self) -> str:
        """Return "closed", "open" (cooling off) or "half_open" (the next call is the probe)."""
        if self.open_until is None:
            return "closed"
        return "open" if self._clock() < self.open_until else "half_open"

    def wait(self) -> float:
        """Return how long callers must still hold off (0 when closed or ready to probe)."""
        if self.open_until is None:
            return 0.0
        return max(self.open_until - self._clock(), 0.0)

    def success(self) -> None:
        """Note a call that worked: close the circuit and start the counts over."""
        self.failures = 0
        self.trips = 0
        self.open_until = None

    def failure(self, retry_after: float | None, backoff: float) -> tuple[float, bool]:
        """Note a failed call; return how long to wait before the next one and whether the circuit (re)opened.

        Below the threshold the wait is BACKOFF stretched to RETRY_AFTER; at
        it, the circuit opens for the cooling period (never shorter than
        RETRY_AFTER), which grows with every probe that fails.
        """
        self.failures += 1
        asked = retry_after if retry_after is not None and retry_after > 0 else 0.0
        if self.failures < self.threshold:
            return max(backoff, asked), False
        cooling = min(self.cap, self.cooling * self.factor**self.trips)
        cooling = max(cooling, asked)
        self.trips += 1
        self.opened += 1
        self.open_until = self._clock() + cooling
        return cooling, True


class PollWire:
    """A Wire over a poll step: each due step's result is a frame; ``close()`` ends the iteration.

    POLL returns (result or None, seconds until the next step). The wire
    waits for READY (the first snapshot sets the cursors polling continues
    from) before the first step. A failure to keep going is raised by POLL
    itself as ``LinkLost``, or ``AuthFailed`` when CXone refuses the credentials (anything else it raises
    is turned into a ``LinkLost``).
    """

    def __init__(self, poll: Callable[[], Awaitable[tuple[Any | None, float]]], ready: asyncio.Event) -> None:
        self._poll = poll
        self._ready = ready
        self._closed = asyncio.Event()
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.steps = 0

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._frames()

    async def _frames(self) -> AsyncIterator[Any]:
        while not self._closed.is_set():
            await self._until_closed_or(self._ready.wait())
            if self._closed.is_set():
                break
            try:
                result, delay = await self._poll()
            except (LinkLost, AuthFailed):
                raise
            except Exception as exc:
                # The loop only hears of failures raised as LinkLost: a bug must not leave a silent link.
                log.exception("the CXone poller failed")
                raise LinkLost(f"the poller failed ({type(exc).__name__})") from None
            self.steps += 1
            if result is not None:
                yield result
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), timeout=max(delay, 0.0))
        self.close_code, self.close_reason = 1000, "poller stopped"

    async def _until_closed_or(self, waiting: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(waiting)
        closed = asyncio.ensure_future(self._closed.wait())
        try:
            await asyncio.wait({task, closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            task.cancel()
            closed.cancel()

    async def close(self) -> None:
        """Stop polling (idempotent)."""
        self._closed.set()
