"""How long a crowd of closed pages should take to come back, told to them in the close's reason.

A web process takes so many handshakes a second (``FLOORVIEW_RECONNECT_RATE``).
Two thousand pages told "come back within a second" arrive faster than that,
most are refused with 4011, and each refusal costs a whole handshake and the
page another, longer backoff: the crowd takes far longer to come back than it
would have arriving at the rate the process can take. So a close that sends a
crowd away names a window sized to the crowd (``dashboard.protocol``'s
``spread=<seconds>``), and each page waits a uniform share of it:

- at a restart (4012), the process's open board sockets over the rate;
- a handshake refused because the sign-in lane is full (4011), the refusals
  of the last two seconds and the handshakes queued, over the rate: the
  crowd still knocking, which shrinks as it gets in.
"""

from __future__ import annotations

import time

from django.conf import settings

from dashboard.protocol import spread_reason

MIN_SPREAD = 1.0  # never ask for less than the page's own restart jitter
MAX_SPREAD = 30.0  # nor more than the page's longest backoff


def spread_for(crowd: int) -> float:
    """Return the seconds over which CROWD pages should come back to this process."""
    rate = settings.FLOORVIEW["RECONNECT_RATE"]
    return min(MAX_SPREAD, max(MIN_SPREAD, crowd / rate))


class RefusalRate:
    """Count handshakes refused as too many, over the last two whole seconds and this one."""

    def __init__(self, clock=time.monotonic) -> None:
        self.clock = clock
        self.second = 0
        self.counts = [0, 0, 0]  # two seconds ago, a second ago, this second

    def refuse(self, queued: int) -> str:
        """Count one refusal while QUEUED handshakes wait; return the close reason to send it with."""
        now = int(self.clock())
        if now != self.second:
            # Shift the window by the seconds that passed (all of it after a quiet spell).
            passed = min(3, now - self.second)
            self.counts = self.counts[passed:] + [0] * passed
            self.second = now
        self.counts[-1] += 1
        return spread_reason(spread_for(sum(self.counts) + queued))
