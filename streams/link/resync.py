"""Resyncs: a REST snapshot taken while the link's events are held back, then the held events after it.

While a snapshot is in flight, events from the sockets are buffered (up to
``MAX_BUFFERED``; past it they are dropped and counted, and another resync
is asked for at once, since the snapshot cannot cover what was dropped).
The snapshot goes to the sink first, then the buffer in arrival order: an
event that changed something the snapshot already read is applied again,
which is harmless, and one it missed is not lost.

The snapshot is taken in the link's turn (``Link.in_turn``): a poll-driven
link finishes the poll it is in, and its result is delivered, before the
buffer opens; it polls again only once the snapshot is in. So a poll never
straddles a snapshot, and nothing older than the snapshot can be replayed
after it (no fetch numbering needed).

A snapshot that fails keeps the link: it is retried after its own backoff
(stretched to any Retry-After), the board showing the link degraded
meanwhile. Only refused credentials (``AuthFailed``) end the link.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from streams import sanity
from streams.backoff import Backoff
from streams.events import SourceSnapshot
from streams.health import LinkHealth
from streams.link.failures import AuthFailed, describe, honour_retry_after
from streams.link.timing import Timing

log = logging.getLogger(__name__)

MAX_BUFFERED = 50_000  # socket events held while a snapshot is in flight


class Resyncs:
    """Ask for, schedule and take snapshots, holding events back while one is in flight."""

    def __init__(
        self,
        owner: object,
        *,
        timing: Timing,
        health: LinkHealth,
        deliver: Callable[[Any], None],
        set_state: Callable[..., None],
        wake: Callable[[], None],
    ) -> None:
        self.owner = owner  # named in log lines
        self.timing = timing
        self.health = health
        self._deliver = deliver
        self._set_state = set_state
        self._wake = wake
        self.backoff = Backoff(first=timing.backoff_first, minimum=timing.backoff_min, cap=timing.backoff_cap)
        self.reason: str | None = None  # a resync asked for and not yet taken
        self.retry_at: float | None = None  # epoch: when a failed snapshot is tried again
        self._buffer: list[Any] | None = None
        self._overflowed = False
        self.taken = 0  # snapshots handed to the sink

    # -- asking ------------------------------------------------------------------------

    def ask(self, reason: str) -> None:
        """Ask for a snapshot on the current link."""
        self.reason = reason

    def forget(self) -> None:
        """Drop whatever was asked for or scheduled (a new link takes its own snapshot)."""
        self.reason = None
        self.retry_at = None

    def due(self, now: float) -> str | None:
        """Return the reason for a snapshot to take now (asked for, or a retry come due), or None."""
        if self.reason is None and (self.retry_at is None or now < self.retry_at):
            return None
        reason, self.reason, self.retry_at = self.reason or "retrying the snapshot", None, None
        return reason

    # -- events ------------------------------------------------------------------------

    @property
    def holding(self) -> bool:
        """Return whether events are being held back (a snapshot is in flight)."""
        return self._buffer is not None

    def hold_or_deliver(self, event: Any) -> None:
        """Hold EVENT while a snapshot is in flight, else deliver it at once."""
        if self._buffer is None:
            self._deliver(event)
        elif len(self._buffer) >= MAX_BUFFERED:
            self._overflowed = True
            self.health.count("buffer_overflow")
        else:
            self._buffer.append(event)

    def buffered(self) -> list[Any]:
        """Return the events held back (oldest first; empty when no snapshot is in flight)."""
        return list(self._buffer or ())

    def release(self) -> None:
        """Deliver the held events in arrival order and stop holding."""
        buffered, self._buffer = self._buffer or [], None
        for event in buffered:
            self._deliver(event)

    def drop(self) -> None:
        """Stop holding and forget the held events (their link is gone; the next one resyncs)."""
        self._buffer = None

    # -- taking ------------------------------------------------------------------------

    async def take(self, snapshot: Callable[[], Awaitable[SourceSnapshot | None]], reason: str) -> bool:
        """Take SNAPSHOT while holding events back, deliver it and then them; return whether it succeeded."""
        self._buffer = []
        self._overflowed = False
        try:
            with sanity.counting(self.health.count):
                taken = await snapshot()
        except (AuthFailed, asyncio.CancelledError):
            self.release()
            raise
        except Exception as exc:
            self.release()
            self._failed(exc)
            return False
        self.backoff.reset()
        if taken is not None:
            self._deliver(taken)
            self.taken += 1
        self.release()
        if self._overflowed:
            self.ask("events overflowed during the snapshot")
            self._wake()
        if taken is None:
            log.info("%s: streaming (%s; the source has no snapshot to take)", self.owner, reason)
        else:
            log.info("%s: resynced (%s)", self.owner, reason)
        return True

    def _failed(self, exc: Exception) -> None:
        delay = honour_retry_after(exc, self.backoff.next_delay(), self.timing.max_retry_after)
        self.retry_at = time.time() + delay
        detail = f"snapshot failed ({describe(exc)}); retrying in {delay:.0f} s"
        self.health.record_error(detail)
        self.health.note("error", detail, retry_in=round(delay, 3))
        self._set_state("degraded", detail)
        log.warning("%s: %s", self.owner, detail)
