"""Retry-After: how long a server asked us to wait (RFC 9110 §10.2.3), for every HTTP client here."""

from __future__ import annotations

import math
import time
from datetime import UTC
from email.utils import parsedate_to_datetime


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Return the wait a Retry-After header asks for, or None when absent or unreadable.

    The header is either seconds or an HTTP date (RFC 9110 §10.2.3); a date
    counts from NOW (the wall clock by default) and one already past is 0.
    """
    if value is None:
        return None
    text = value.strip()[:100]
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        return max(number, 0.0) if math.isfinite(number) else None
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:
        # An HTTP date is GMT; one written without a zone is read as such.
        moment = moment.replace(tzinfo=UTC)
    try:
        wait = moment.timestamp() - (time.time() if now is None else now)
    except (OverflowError, ValueError, OSError):
        return None
    return max(wait, 0.0)
