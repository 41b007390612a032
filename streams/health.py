"""The health of one upstream link, as the admin, the publisher and the logs see it."""

from __future__ import annotations

import math
import re
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

from streams.log_safe import safe_text

STATES = ("connecting", "live", "degraded", "reconnecting", "auth_failed", "disabled")

# What ``LinkHealth.note`` accepts; ``streams.models.ConnectionEvent.Kind`` mirrors it.
EVENT_KINDS = (
    "connected",
    "closed",
    "token_refreshed",
    "auth_failed",
    "backoff_scheduled",
    "resynced",
    "state_changed",
    "error",
)

# A URL keeps only its scheme and host (no credentials, path or query): a channel's connectUri
# or a signed link is nobody's business in the admin.
_URL = re.compile(r"\b([a-z][a-z0-9+.-]*://)(?:[^/\s?#@]*@)?([^/\s?#:@]+(?::\d+)?)([^\s\"'<>]*)", re.IGNORECASE)
# Bearer tokens and key=value secrets, whatever an error text quotes.
_TOKEN = re.compile(
    r"\b(bearer\s+|(?:access_token|token|secret|password|client_secret)[\"']?\s*[=:]\s*[\"']?)[^\s,;\"'&]+",
    re.IGNORECASE,
)


def scrub(text: str, limit: int = 300) -> str:
    """Return TEXT on one line (control characters escaped) without URL paths, queries, credentials or tokens,
    cut to LIMIT characters."""
    text = safe_text(text)
    text = _URL.sub(lambda m: m.group(1) + m.group(2) + ("/…" if m.group(3) not in ("", "/") else ""), text)
    return _TOKEN.sub(lambda m: m.group(1) + "•••", text)[:limit]


def redact(value: Any, *secrets: str) -> Any:
    """Return VALUE (plain data: dicts, lists, strings) with every given secret blanked out of its strings."""
    if isinstance(value, str):
        for secret in secrets:
            if secret:
                value = value.replace(secret, "•••")
        return value
    if isinstance(value, dict):
        return {key: redact(item, *secrets) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact(item, *secrets) for item in value]
    return value


def _plain(value: Any) -> Any:
    """Return VALUE as an event may carry it: a finite number, a boolean, None, or a scrubbed short text.

    NaN and infinity become text ("nan", "inf"): JSON has no such numbers, and PostgreSQL's jsonb
    refuses them, which would lose every event of the save that carried one.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, int | float | bool) or value is None:
        return value
    return scrub(str(value), 100)


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

    Notable moments (connected, closed, a backoff, a resync, every change of
    state) are noted as events in a bounded queue; whoever persists them takes
    them with ``take_events()``. The queue drops the oldest when full (counted
    as ``events_dropped``), so a link without a listener never grows.
    """

    def __init__(
        self, *, clock: Callable[[], float] = time.time, ping_window: int = 100, event_window: int = 200
    ) -> None:
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
        self.events: deque[dict[str, Any]] = deque(maxlen=event_window)
        self.on_change: Callable[[LinkHealth], None] | None = None

    def set_state(self, state: str, detail: str = "") -> None:
        """Move to STATE (one of ``STATES``) with a human-readable DETAIL; tell ``on_change`` if it differs."""
        if state not in STATES:
            raise ValueError(f"unknown link state {state!r}")
        if state == self.state and safe_text(detail) == self.detail:
            return
        if state != self.state:
            self.note(
                "state_changed",
                f"{self.state} → {state}" + (f": {detail}" if detail else ""),
                old=self.state,
                new=state,
            )
        self.state = state
        # Details quote upstream texts (close reasons, error bodies): one line, whatever they held.
        self.detail = safe_text(detail)
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
        self.last_error = safe_text(error, 300)

    def note(self, kind: str, detail: str = "", **data: Any) -> None:
        """Note an event of KIND (one of ``EVENT_KINDS``) with a short DETAIL and a few plain values (DATA).

        DETAIL is scrubbed of URL paths and tokens; it must still never quote a secret.
        """
        if kind not in EVENT_KINDS:
            raise ValueError(f"unknown link event {kind!r}")
        if len(self.events) == self.events.maxlen:
            self.count("events_dropped")
        values = {key: _plain(value) for key, value in data.items()}
        self.events.append({"kind": kind, "at": self._clock(), "detail": scrub(detail), "data": values})

    def take_events(self) -> list[dict[str, Any]]:
        """Return the events noted since the last call (oldest first) and forget them."""
        taken = list(self.events)
        self.events.clear()
        return taken

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

    @property
    def missed_heartbeat_ratio(self) -> float | None:
        """Return the share of expected heartbeats that did not arrive, if any were expected."""
        if not self.heartbeats_expected:
            return None
        return self.heartbeats_missed / self.heartbeats_expected

    def as_dict(self) -> dict[str, Any]:
        """Return the health as plain, bounded data (for JSON, the admin and tests); events are not included."""
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
            "missed_heartbeat_ratio": self.missed_heartbeat_ratio,
            "counters": dict(self.counters),
        }
