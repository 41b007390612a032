"""Rollovers: when to replace the current link with a new one, make-before-break.

A rollover is asked for (the server warned it will close, the watched
queues need a new link, vendor work failed) or comes due: a socket's channel
expires, and the link is replaced ``rollover_margin`` before that, yet never
earlier than half the channel's life (a short-lived channel must not roll
over in a loop). The supervisor opens and confirms the new link before it
closes the old one, then resyncs.

A failed rollover keeps the current link and is retried after its own
backoff: its retries must not count as that link going down.
"""

from __future__ import annotations

import time

from streams.backoff import Backoff
from streams.link.sockets import Link
from streams.link.timing import Timing


class Rollovers:
    """Ask for, schedule and pace rollovers of the current link."""

    def __init__(self, timing: Timing) -> None:
        self.timing = timing
        self.backoff = Backoff(first=timing.backoff_first, minimum=timing.backoff_min, cap=timing.backoff_cap)
        self.reason: str | None = None  # a rollover asked for and not yet tried
        self.retry_at: float | None = None  # epoch: when a failed rollover is tried again
        self.retry_reason: str | None = None  # why the failed one was asked for
        self.done = 0  # completed make-before-break switches

    def ask(self, reason: str) -> None:
        """Ask for a rollover at the next wake-up."""
        self.reason = reason

    def ask_unless_asked(self, reason: str) -> None:
        """Ask for a rollover, unless one is asked for already (its reason stays)."""
        self.reason = self.reason or reason

    def forget(self) -> None:
        """Drop whatever was asked for or scheduled (a new link starts with a clean slate)."""
        self.reason = self.retry_at = self.retry_reason = None

    def due(self, link: Link | None, now: float) -> str | None:
        """Return the reason for a rollover to do now (asked for, retried, or a channel expiring), or None."""
        if self.reason is None and self._come_due(link, now):
            self.reason = self.retry_reason or "channel expires soon"
        reason, self.reason = self.reason, None
        return reason

    def failed(self, reason: str) -> None:
        """Note that the rollover for REASON failed: retry it after the backoff."""
        self.retry_at = time.time() + self.backoff.next_delay()
        self.retry_reason = reason

    def succeeded(self) -> None:
        """Note a completed switch: the backoff starts over."""
        self.retry_at = self.retry_reason = None
        self.backoff.reset()
        self.done += 1

    def deadline(self, link: Link | None) -> float | None:
        """Return the epoch time at which a rollover comes due without being asked for, if ever."""
        return self.retry_at if self.retry_at is not None else self.expiry_due(link)

    def expiry_due(self, link: Link | None) -> float | None:
        """Return when LINK must be replaced because a channel expires, if ever."""
        if link is None:
            return None
        dues = [
            # Never earlier than half a channel's life: a short-lived channel must not roll over in a loop.
            s.expires_at - min(self.timing.rollover_margin, (s.expires_at - s.opened_wall) / 2)
            for s in link.sockets
            if s.expires_at is not None
        ]
        return min(dues) if dues else None

    def _come_due(self, link: Link | None, now: float) -> bool:
        if self.retry_at is not None:
            return now >= self.retry_at
        due = self.expiry_due(link)
        return due is not None and now >= due
