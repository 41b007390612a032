"""Genesys values: times, intervals, presences, routing statuses, counts, ids and the JSON shapes holding them.

The readers every Genesys parser shares (``queue_metrics``, ``users``,
``replies``, ``parsers``). Each returns the value read or raises
``ParseError``, but ``shown_time``, which turns a bad time into ``UNSET`` so
that it costs its field, never its message. Counts and times go through
``streams.sanity`` and are counted there when refused.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from streams import sanity, states


class ParseError(ValueError):
    """A message or reply that does not have the shape Genesys documents."""


def parse_time(value: Any) -> float | None:
    """Return an ISO-8601 time (or epoch milliseconds) as epoch seconds, exact to the millisecond.

    None stays None; anything else unreadable raises ParseError.
    """
    if type(value) is str and value:
        return _iso_time(value)  # the common case first: socket and REST times are ISO-8601 text
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value) or abs(value) > 1e15:
            # round(inf) raises OverflowError; past 1e15 ms (year 33658) no time is meant.
            raise ParseError("a time in milliseconds is out of range")
        return round(float(value)) / 1000.0
    if not isinstance(value, str) or not value:
        raise ParseError(f"not a time: {value!r}")
    return _iso_time(value)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# The same times recur: an agent's activity messages repeat its presence's modifiedDate until the
# presence changes, and a queue's messages repeat a waiting contact's start until it is answered.
# A small cache spares parsing them again (a ParseError is raised each time, never cached).
@lru_cache(maxsize=1024)
def _iso_time(value: str) -> float:
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ParseError(f"not an ISO-8601 time: {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    # Whole milliseconds, divided once: float arithmetic on seconds would drift by an ulp.
    delta = moment - _EPOCH
    millis = (delta.days * 86_400 + delta.seconds) * 1000 + round(delta.microseconds / 1000)
    return millis / 1000.0


def parse_interval(value: Any) -> tuple[float, float]:
    """Return an ISO-8601 interval "start/end" as two epoch seconds."""
    if not isinstance(value, str) or value.count("/") != 1:
        raise ParseError(f"not an interval: {value!r}")
    return _interval(value)


# An instant observation's interval is one time twice, and the same for every queue in a tick; the
# aggregates' interval is the same text for half an hour: most intervals have been seen just before.
@lru_cache(maxsize=256)
def _interval(value: str) -> tuple[float, float]:
    start, _, end = value.partition("/")
    # A string is never None to parse_time: it is a time or a ParseError.
    first = parse_time(start)
    last = first if end == start else parse_time(end)
    return first, last


def _spelled(value: Any, what: str, spell: Callable[[str], str]) -> str | None:
    """Return VALUE in the Floor's spelling by SPELL (streams.states); None stays None, anything else is refused."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ParseError(f"not a {what}: {value!r}")
    return spell(value)


def system_presence(value: Any) -> str | None:
    """Return a system presence in the Floor's spelling ("OnQueue", "ON_QUEUE" → "on_queue")."""
    return _spelled(value, "presence", states.presence)


def routing_status(value: Any) -> str | None:
    """Return a routing status upper-cased ("idle" → "IDLE")."""
    return _spelled(value, "routing status", states.routing_status)


def as_count(value: Any) -> int:
    """Return a count (see ``streams.sanity``); raise ParseError when it is refused (counted there)."""
    count = sanity.count(value)
    if count is None:
        if value is None:
            sanity.refuse(sanity.BAD_FIGURE)
        raise ParseError(f"not a count: {str(value)[:40]!r}")
    return count


def shown_time(value: Any) -> Any:
    """Return a time to show as epoch seconds (None stays None), or UNSET when unreadable or outside the sane
    window (counted ``bad_time``): a bad time costs its field, never its message."""
    return sanity.shown_time(value, parse_time)


def as_object(value: Any, what: str) -> dict[str, Any]:
    """Return VALUE if it is a JSON object; raise ParseError naming WHAT otherwise."""
    if not isinstance(value, dict):
        raise ParseError(f"{what} is not an object")
    return value


def as_list(value: Any, what: str) -> list[Any]:
    """Return VALUE if it is a JSON list; raise ParseError naming WHAT otherwise."""
    if not isinstance(value, list):
        raise ParseError(f"{what} is not a list")
    return value


def as_id(value: Any, what: str) -> str:
    """Return VALUE if it is a non-empty string (an id); raise ParseError naming WHAT otherwise."""
    if not isinstance(value, str) or not value:
        raise ParseError(f"{what} is missing")
    return value
