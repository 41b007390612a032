"""When each board's pending changes are flushed: the coalescing window, one flush at a time, retries.

A change after a quiet spell goes out at once (the leading edge); a busy
board flushes at most once per window (its ``coalesce_ms``). A board has at
most one flush booked or running: changes that arrive meanwhile wait for the
next, booked when it ends. A flush that fails keeps its rows dirty and is
tried again next window, so a Redis blip loses nothing. What a flush does is
the publisher's (dashboard.publisher); see docs/coalescing.md.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

import redis.exceptions

from dashboard.board_plan import BoardState

# These lines were the publisher's before they moved here: they keep its logger name, which log filters use.
log = logging.getLogger("dashboard.publisher")

# Failures that pass (Redis restarting, a network blip): logged briefly, retried, never fatal.
TRANSIENT = (OSError, TimeoutError, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


class Flusher(Protocol):
    """What the coalescer needs from the publisher."""

    boards: dict[int, BoardState]
    clock: Callable[[], float]

    async def flush(self, board_id: int) -> bool:
        """Render and push the board's pending changes; return whether anything was sent."""


class Coalescer:
    """Book each board's next flush on the event loop, and run it in a task of its own."""

    def __init__(self, publisher: Flusher) -> None:
        self.publisher = publisher
        self.closing = False  # no flush is booked any more (the publisher is closing)

    def schedule(self, state: BoardState) -> None:
        """Book the board's next flush, unless one is booked or running already."""
        if state.timer is not None or state.flushing is not None or self.closing:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # No loop yet: the first flush_all() picks the rows up.
        # Leading edge: a change after a quiet spell goes out at once; a busy board once per window.
        delay = max(0.0, state.last_flush + state.plan.window - self.publisher.clock())
        state.timer = loop.call_later(delay, self._start, state)

    def cancel(self, state: BoardState) -> None:
        """Drop the board's booked flush (a flush running goes on)."""
        if state.timer:
            state.timer.cancel()
            state.timer = None

    async def close(self) -> None:
        """Book no more flushes, drop those booked, and wait for those running."""
        self.closing = True
        boards = self.publisher.boards.values()
        for state in boards:
            self.cancel(state)
        pending = [s.flushing for s in boards if s.flushing]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    def _start(self, state: BoardState) -> None:
        state.timer = None
        if self.publisher.boards.get(state.plan.board_id) is not state:
            return  # The board was dropped (or replaced) meanwhile.
        state.flushing = asyncio.create_task(self._flush(state))

    async def _flush(self, state: BoardState) -> None:
        try:
            await self.publisher.flush(state.plan.board_id)
        except asyncio.CancelledError:
            raise
        except TRANSIENT as exc:
            # Keep the rows dirty and try again next window: a Redis blip must not lose updates.
            log.warning("flushing board %s failed (%s); retrying", state.plan.board_id, exc)
        except Exception:
            log.exception("flushing board %s failed", state.plan.board_id)
        finally:
            state.flushing = None
            if state.dirty or state.full:
                self.schedule(state)
