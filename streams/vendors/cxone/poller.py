"""How CXone is polled when it struggles: what a poll brings, the circuit breaker, and the wait after a failure.

The poll schedule itself is the shared ``streams.link.polling.Poller``; this
module holds what is CXone's own:

- ``PollResult``: what one poll step fetched, per endpoint;
- ``Breaker``: counts failed calls in a row. Below ``threshold`` the poller
  retries after Retry-After or a short backoff; at ``threshold`` the
  circuit opens and nobody calls CXone for a cooling period (at least
  Retry-After), then one probe goes out. A probe that fails opens it again
  for longer (up to ``cap``); one that succeeds closes it and the counts
  start over. Its cooling periods are a shared ``Backoff`` without jitter;
- ``Pacing``: the wait a failed call takes, once the shared ``classify``
  said to retry it (breaker, backoff, Retry-After; a 429 without one waits
  ``default_retry_after``), and how the board shows it: degraded while
  calls fail, live again after one works.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from streams.backoff import Backoff
from streams.health import LinkHealth
from streams.link.timing import Timing
from streams.log_safe import safe_text
from streams.vendors.cxone.rest import Fetched

log = logging.getLogger(__name__)

BREAKER_THRESHOLD = 3


@dataclass
class PollResult:
    """What one poll step fetched, per endpoint ("agents", "skills", "contacts")."""

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
        # Cooling periods: COOLING, then growing by FACTOR up to CAP; exact (no jitter), so callers can say them.
        self._coolings = Backoff(
            first=min(cooling, cap), minimum=min(cooling * factor, cap), factor=factor, cap=cap, jitter=0.0, rng=_one
        )
        self.failures = 0  # in a row
        self.opened = 0  # openings in all (for tests and the health page)
        self.open_until: float | None = None

    @property
    def trips(self) -> int:
        """Return the openings in a row (each one cools off longer)."""
        return self._coolings.attempts

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
        self._coolings.reset()
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
        cooling = max(self._coolings.next_delay(), asked)
        self.opened += 1
        self.open_until = self._clock() + cooling
        return cooling, True


def _one() -> float:
    return 1.0


class Pacing:
    """Decide what a failed CXone call does and how long the poller waits; show it on the link's health."""

    def __init__(self, owner: object, *, timing: Timing, health: LinkHealth, set_state: Callable[..., None]) -> None:
        self.owner = owner  # named in log lines
        self.timing = timing
        self.health = health
        self._set_state = set_state
        t = timing
        self.breaker = Breaker(
            threshold=BREAKER_THRESHOLD, cooling=max(t.backoff_cap / 3, t.backoff_min), cap=t.max_retry_after
        )
        self.backoff = Backoff(first=t.backoff_min, minimum=t.backoff_min, factor=t.backoff_factor, cap=t.backoff_cap)
        self._degraded_detail: str | None = None

    def failed(self, exc: Exception) -> float:
        """Count the failed call EXC (one ``classify`` says to retry), let the breaker decide the wait, and say so.

        Return the wait.
        """
        status = getattr(exc, "status", None)
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is None and status == 429:
            # Throttled without a word on how long: wait at least NICE's own polling period.
            retry_after = self.timing.default_retry_after
        if retry_after is not None:
            retry_after = min(retry_after, self.timing.max_retry_after)
        delay, opened = self.breaker.failure(retry_after, self.backoff.next_delay())
        if status == 429:
            self.health.count("throttled")
            what = "CXone is throttling"
        elif status == 503:
            self.health.count("unavailable")
            what = "CXone is unavailable (503)"
        else:
            self.health.count("poll_error")
            what = f"polling CXone failed ({safe_text(exc, 300)})"
        if opened:
            self.health.count("breaker_opened")
            log.warning("%s: %s; circuit open for %.0f s", self.owner, what, delay)
        detail = f"{what}; next try in {delay:.0f} s" if delay >= 1 else f"{what}; next try in {delay:.1f} s"
        self.health.record_error(detail)
        self.health.note("error", detail, retry_in=round(delay, 3), breaker=self.breaker.state)
        if self.health.state in ("live", "degraded"):
            self._degraded_detail = detail
            self._set_state("degraded", detail)
        return delay

    def succeeded(self) -> None:
        """Note a call that worked: close the circuit, start the backoff over, and clear the degraded state."""
        self.breaker.success()
        self.backoff.reset()
        if self._degraded_detail is not None:
            if self.health.state == "degraded" and self.health.detail == self._degraded_detail:
                self._set_state("live")
            self._degraded_detail = None
