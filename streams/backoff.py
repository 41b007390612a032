"""Reconnect delays: jittered exponential backoff that resets only after a healthy spell.

websockets resets its backoff as soon as a connection opens, so a server that
accepts and drops at once is hammered at the shortest delay. Here a link must
stay healthy for ``healthy_after`` seconds before the delays start over.
Without jitter, the same delays pace the CXone circuit breaker's cooling
periods.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator


def backoff_delays(
    *,
    first: float = 1.0,
    minimum: float = 2.0,
    factor: float = 1.6,
    cap: float = 60.0,
    jitter: float = 0.25,
    rng: Callable[[], float] = random.random,
) -> Iterator[float]:
    """Yield delays: the first random in [0, FIRST], then MINIMUM growing by FACTOR up to CAP.

    Each grown delay is shortened by a random share of at most JITTER, so many
    clients that failed together do not retry together.
    """
    yield first * rng()
    base = minimum
    while True:
        yield min(base, cap) * (1.0 - jitter * rng())
        base = min(base * factor, cap)


class Backoff:
    """Hand out reconnect delays; start over only when the link stayed healthy long enough."""

    def __init__(
        self,
        *,
        first: float = 1.0,
        minimum: float = 2.0,
        factor: float = 1.6,
        cap: float = 60.0,
        jitter: float = 0.25,
        healthy_after: float = 60.0,
        rng: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._options = {"first": first, "minimum": minimum, "factor": factor, "cap": cap, "jitter": jitter}
        self.healthy_after = healthy_after
        self._rng = rng
        self._clock = clock
        self._delays = self._fresh()
        self._up_since: float | None = None
        self.attempts = 0

    def _fresh(self) -> Iterator[float]:
        return backoff_delays(rng=self._rng, **self._options)

    def link_up(self) -> None:
        """Note that the link is up (connected and confirmed); the healthy spell starts now."""
        if self._up_since is None:
            self._up_since = self._clock()

    def link_down(self) -> None:
        """Note that the link went down; reset the delays if it had stayed healthy long enough."""
        if self._up_since is not None and self._clock() - self._up_since >= self.healthy_after:
            self.reset()
        self._up_since = None

    def reset(self) -> None:
        """Start the delays over from a random first one."""
        self._delays = self._fresh()
        self.attempts = 0

    def next_delay(self) -> float:
        """Return how long to wait before the next attempt (counts as a link going down)."""
        self.link_down()
        self.attempts += 1
        return next(self._delays)
