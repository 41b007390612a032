"""Faults injected on demand (through ``/simulator/control``) and consulted by the API.

HTTP faults live here: errors for the next calls under a path (``/api/v2/``
for REST, ``/oauth/token`` for the token endpoint), refused credentials, and
a whole-simulator outage. Socket faults (stalls, closes, odd frames) act on
the hub's sessions directly; see ``control/genesys_faults.py``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class RestFault:
    """Answer the next COUNT HTTP calls under PATH with STATUS instead of serving them."""

    status: int
    remaining: int
    path: str = "/api/v2/"
    retry_after: int | None = None


class Faults:
    """The faults currently armed."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.rest: list[RestFault] = []
        self.injected = 0
        self.refused = 0  # connections cut while unreachable
        self.unreachable_until: float | None = None
        self.credentials_refused_until: float | None = None

    def add_rest_error(
        self, status: int, count: int = 1, path: str = "/api/v2/", retry_after: int | None = None
    ) -> None:
        """Arm an HTTP fault for calls under PATH (``/oauth/token`` included)."""
        if not 400 <= status <= 599:
            raise ValueError("status must be a 4xx or 5xx code")
        if count < 1:
            raise ValueError("count must be at least 1")
        self.rest.append(RestFault(status, count, path, retry_after))

    def take_rest(self, path: str) -> RestFault | None:
        """Return the fault that applies to a call on PATH (using one of its count), or None."""
        for fault in self.rest:
            if path.startswith(fault.path):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self.rest.remove(fault)
                self.injected += 1
                return fault
        return None

    def make_unreachable(self, seconds: float | None) -> None:
        """Cut every HTTP and socket connection for SECONDS (None: until cleared)."""
        self.unreachable_until = self._until(seconds)

    def unreachable(self) -> bool:
        """Return whether the simulator plays unreachable just now."""
        return self._active("unreachable_until")

    def refuse_credentials(self, seconds: float | None) -> None:
        """Refuse every client's credentials at the token endpoint for SECONDS (None: until cleared)."""
        self.credentials_refused_until = self._until(seconds)

    def credentials_refused(self) -> bool:
        """Return whether the token endpoint refuses credentials just now."""
        return self._active("credentials_refused_until")

    def clear(self) -> None:
        """Disarm every fault."""
        self.rest.clear()
        self.unreachable_until = None
        self.credentials_refused_until = None

    def describe(self) -> dict[str, Any]:
        """Return the armed faults as plain data."""
        return {
            "rest": [
                {"status": f.status, "remaining": f.remaining, "path": f.path, "retry_after": f.retry_after}
                for f in self.rest
            ],
            "injected": self.injected,
            "unreachable": self._remaining("unreachable_until"),
            "refused": self.refused,
            "credentials_refused": self._remaining("credentials_refused_until"),
        }

    def _until(self, seconds: float | None) -> float:
        return math.inf if seconds is None else self.clock() + seconds

    def _active(self, name: str) -> bool:
        until = getattr(self, name)
        if until is not None and self.clock() >= until:
            # Over: forget it, so the listing shows it gone.
            setattr(self, name, None)
            return False
        return until is not None

    def _remaining(self, name: str) -> float | str | None:
        """Return the seconds left of a timed fault, "until cleared", or None when it is off."""
        if not self._active(name):
            return None
        until = getattr(self, name)
        return "until cleared" if until == math.inf else round(until - self.clock(), 3)
