"""Polling as a link: a wire whose frames are the results of a poll schedule.

A source without a push stream (CXone's real-time API) is polled. Its link
holds one socket whose wire is a ``Poller``: iterating it calls the poll
step whenever it is due and yields each result as a frame, which the reader
hands to the connector's ``handle`` like any WebSocket message.

Polls and other calls to the source take turns (``in_turn``): a snapshot
waits for the poll in flight to be fetched *and handled*, and the next poll
waits for the snapshot. So a poll's result never lands after a snapshot
newer than it (the resync buffer only ever holds what arrived during the
snapshot), and the connector needs no numbering of its fetches.

Polling begins once READY is set (the first snapshot says where incremental
polls continue from). The step returns (result or None, seconds until the
next step); it decides itself how to wait after a failed call (Retry-After,
backoff, a circuit breaker) and raises only what ends the link:
``AuthFailed`` when the credentials are refused, ``LinkLost`` otherwise
(anything else it raises is a bug, logged and turned into a ``LinkLost``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from streams.link.failures import AuthFailed, LinkLost, Verdict, classify

log = logging.getLogger(__name__)

T = TypeVar("T")


class Poller:
    """A Wire over a poll step: each due step's result is a frame; other work waits for its turn."""

    def __init__(self, step: Callable[[], Awaitable[tuple[Any | None, float]]], ready: asyncio.Event) -> None:
        self._step = step
        self._ready = ready
        self._turn = asyncio.Lock()  # held by a poll until its result is handled, or by work in its turn
        self._closed = asyncio.Event()
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.steps = 0
        self.turns_waiting = 0  # work waiting for the poll in flight

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._frames()

    async def _frames(self) -> AsyncIterator[Any]:
        while not self._closed.is_set():
            await self._until_closed_or(self._ready.wait())
            if self._closed.is_set():
                break
            async with self._turn:
                try:
                    result, delay = await self._step()
                except Exception as exc:
                    raise _ending(exc) from None
                self.steps += 1
                if result is not None:
                    # The turn is held until the reader handled the result and asks for the next frame.
                    yield result
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), timeout=max(delay, 0.0))
        self.close_code, self.close_reason = 1000, "poller stopped"

    async def in_turn(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run WORK between two polls (after the one in flight is handled) and return its result."""
        self.turns_waiting += 1
        try:
            await self._turn.acquire()
        finally:
            self.turns_waiting -= 1
        try:
            return await work()
        finally:
            self._turn.release()

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


def _ending(exc: Exception) -> Exception:
    """Return what a poll step's exception EXC does to the link: an auth failure, or a lost link."""
    if isinstance(exc, AuthFailed | LinkLost):
        return exc
    if classify(exc) is Verdict.WAIT_FOR_CREDENTIALS:
        return AuthFailed(str(exc))
    # The loop only hears of failures raised as LinkLost: a bug must not leave a silent link.
    log.error("the poller failed", exc_info=exc)
    return LinkLost(f"the poller failed ({type(exc).__name__})")
