"""Log lines that a flood of requests cannot multiply: one line per key and period, with a count of the rest.

Unauthenticated clients can cause refusals as fast as they can send; a line
per refusal would let them fill the disk and bury everything else. A
``ThrottledLog`` writes the first line for a key, then at most one per
period, each saying how many like it were left out since the last one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable


class ThrottledLog:
    """Write to LOGGER at most once per PERIOD seconds for a key, counting the lines left out."""

    def __init__(
        self,
        logger: logging.Logger,
        period: float,
        *,
        max_keys: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.period = period
        self.max_keys = max_keys
        self.clock = clock
        self._last: dict[Hashable, float] = {}
        self._left_out: dict[Hashable, int] = {}
        self._lock = threading.Lock()

    def reset(self) -> None:
        """Forget every key (tests)."""
        with self._lock:
            self._last.clear()
            self._left_out.clear()

    def log(self, key: Hashable, level: int, message: str, *args: object) -> bool:
        """Log MESSAGE % ARGS under KEY unless a line for KEY was written within the period; return whether it was."""
        now = self.clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.period:
                self._left_out[key] = self._left_out.get(key, 0) + 1
                return False
            if key not in self._last and len(self._last) >= self.max_keys:
                # Many distinct keys (made-up slugs, say): forget them all rather than grow; the worst case is
                # one more line per key.
                self._last.clear()
                self._left_out.clear()
            self._last[key] = now
            left_out = self._left_out.pop(key, 0)
        if left_out:
            message += " (and %d more like it since the last such line)"
            args = (*args, left_out)
        self.logger.log(level, message, *args)
        return True
