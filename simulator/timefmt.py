"""Wall-clock helpers: millisecond rounding, ISO-8601 as Genesys writes it, 30-minute intervals.

Every time the simulator stores is rounded to the millisecond first, so the
value in ``/simulator/truth`` and the ISO string on the wire name exactly the
same instant and a client can reproduce it.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

INTERVAL_SECONDS = 1800


def ms(t: float) -> float:
    """Return T (epoch seconds) rounded to the millisecond."""
    return round(t * 1000) / 1000


def iso(t: float, *, floor: bool = False) -> str:
    """Return T (epoch seconds) as ISO-8601 UTC with milliseconds, e.g. ``2026-11-22T08:00:00.123Z``.

    The milliseconds are rounded, or with FLOOR cut, so the text never names a later instant than T.
    """
    millis = math.floor(t * 1000) if floor else round(t * 1000)
    seconds, frac = divmod(millis, 1000)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:03d}Z"


def parse_iso(text: str) -> float:
    """Return the epoch seconds of an ISO-8601 timestamp (``Z`` or an offset); raise ValueError if it is not one."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def interval_start(t: float) -> float:
    """Return the start of the 30-minute interval (aligned to :00 and :30 UTC) holding T."""
    return float(int(t // INTERVAL_SECONDS) * INTERVAL_SECONDS)


def interval_text(start: float, end: float) -> str:
    """Return an ISO-8601 interval ``start/end``."""
    return f"{iso(start)}/{iso(end)}"


def parse_interval(text: str) -> tuple[float, float]:
    """Return (start, end) of an ISO-8601 interval ``start/end``; raise ValueError otherwise."""
    start_text, sep, end_text = str(text).partition("/")
    if not sep:
        raise ValueError("an interval is two ISO-8601 instants joined by '/'")
    start, end = parse_iso(start_text), parse_iso(end_text)
    if end < start:
        raise ValueError("the interval ends before it starts")
    return start, end
