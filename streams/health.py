"""The health of one upstream link, as the admin, the publisher and the logs see it."""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

STATES = ("connecting", "live", "degraded", "reconnecting", "auth_failed", "disabled")


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


class LinkHealth:
    """State, liveness and counters of one connector's link to its vendor.

    ``on_change`` is called (synchronously) whenever the state or its detail
    changes, never for mere counters, so a listener may persist it cheaply.
    """

    def __init__(self, *, clock: Callable[[], float] = time.time, ping_window: int = 100) -> None:
        self._clock = clock
        self.state = "connecting"
        self.detail = ""
        self.changed_at = clock()
        self.last_message_at: float | None = None
        self.connected_since: float | None = None
        self.reconnects = 0
        self.last_error = ""
        self.ping_rtts: deque[float] = deque(maxlen=ping_window)
        self.heartbeats_expected = 0
        self.heartbeats_missed = 0
        # Skipped input by reason ("malformed", "unknown_topic", ...): counted, never fatal.
        self.counters: Counter[str] = Counter()
        self.on_change: Callable[[LinkHealth], None] | None = None

    def set_state(self, state: str, detail: str = "") -> None:
        """Move to STATE (one of ``STATES``) with a human-readable DETAIL; tell ``on_change`` if it differs."""
        if state not in STATES:
            raise ValueError(f"unknown link state {state!r}")
        if state == self.state and detail == self.detail:
            return
        self.state = state
        self.detail = detail
        self.changed_at = self._clock()
        if state == "live" and self.connected_since is None:
            self.connected_since = self.changed_at
        elif state not in ("live", "degraded"):
            self.connected_since = None
        if self.on_change is not None:
            self.on_change(self)

    def is_live(self) -> bool:
        """Return whether data from this link can be trusted as current."""
        return self.state == "live"

    def record_message(self) -> None:
        """Note that a message (of any kind) just arrived."""
        self.last_message_at = self._clock()

    def record_ping(self, round_trip: float) -> None:
        """Add one ping round trip (seconds) to the rolling window."""
        self.ping_rtts.append(round_trip)

    def record_error(self, error: str) -> None:
        """Remember the last error (a short description without secrets)."""
        self.last_error = error[:300]

    def count(self, reason: str, n: int = 1) -> None:
        """Count N skipped or notable inputs under REASON."""
        self.counters[reason] += n

    @property
    def ping_p50(self) -> float | None:
        """Return the median ping round trip (seconds) of the window, if any."""
        return _percentile(list(self.ping_rtts), 0.5)

    @property
    def ping_p95(self) -> float | None:
        """Return the 95th-percentile ping round trip (seconds) of the window, if any."""
        return _percentile(list(self.ping_rtts), 0.95)

    def as_dict(self) -> dict[str, Any]:
        """Return the health as plain data (for JSON, the admin and tests)."""
        return {
            "state": self.state,
            "detail": self.detail,
            "changed_at": self.changed_at,
            "last_message_at": self.last_message_at,
            "connected_since": self.connected_since,
            "reconnects": self.reconnects,
            "last_error": self.last_error,
            "ping_p50": self.ping_p50,
            "ping_p95": self.ping_p95,
            "pings": len(self.ping_rtts),
            "heartbeats_expected": self.heartbeats_expected,
            "heartbeats_missed": self.heartbeats_missed,
            "counters": dict(self.counters),
        }
