"""The one rule for numbers and times from upstream: what range a count, a duration or a moment may have.

Every parser (Genesys frames and REST replies, CXone replies, the generic
feeds' field mapping, webhooks) passes the figures and times it reads through
these functions, so one absurd value costs that value only, never the record
or the batch around it, and a board never shows a 301-digit count or a wait
that began in the year 5138.

- A **count** (contacts waiting, agents, answered, in-SLA, ...) is an
  integral number from 0 to ``MAX_COUNT``. ``1e300``, ``1e400`` (infinity
  once decoded), NaN, negatives, fractions, booleans and strings are refused.
- A **duration** is a finite number from 0 to a year (``MAX_DURATION_MS``).
- A token's **lifetime** is a finite number of seconds above 0; a longer one
  than a day (``MAX_LIFETIME_S``) is taken as a day, so the token is renewed
  early rather than refused.
- A **moment** shown on a board (a contact's start, an agent's state since,
  an interval's start) lies between ``EARLIEST`` and ``MAX_AHEAD`` seconds
  from now; outside that it is refused.
- An **ordering** time (a record's or a notification's own stamp, used to
  drop what is older than what was applied) is never refused for being old
  (an old record is stale anyway), but one more than ``MAX_AHEAD`` ahead of
  our clock is ordered as *now*: otherwise that one record would make every
  real update of its row look stale until the row expired. Nor does the
  caller remember that *now* as its row's last applied time (only a real
  stamp of a record that was applied): it would make every real record
  stamped before it was processed (a backlog, plain latency) look stale.
- A **deadline** (when a channel expires) lies after now and within a bound
  the caller gives; otherwise the caller plans by its own default.

Refusals are counted on the health of the connection being read, as
``bad_figure``, ``bad_time`` or ``future_time``; a parser that skips a whole
record of a reply (one queue, one member) counts it as ``malformed_record``. The parsers stay free of the
connector: the connector wraps its parsing in ``counting(health.count)`` and
the functions here report to whatever counter is current (a context variable,
so concurrent connectors count apart). With no counter, refusals still happen,
uncounted.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from streams.events import UNSET

MAX_COUNT = 10_000_000  # no queue holds, and no interval answers, ten million contacts
MAX_DURATION_MS = 366 * 86_400 * 1000  # a wait or a state longer than a year is no wait
MAX_LIFETIME_S = 86_400.0  # a token said to live longer is renewed within a day all the same
EARLIEST = 946_684_800.0  # 2000-01-01T00:00:00Z: nothing on a board began before it
MAX_AHEAD = 120.0  # seconds a clock upstream may run ahead of ours

BAD_FIGURE = "bad_figure"
BAD_TIME = "bad_time"
FUTURE_TIME = "future_time"
MALFORMED_RECORD = "malformed_record"  # a record of a reply skipped, the rest of the reply kept

_counter: ContextVar[Callable[[str], Any] | None] = ContextVar("sanity_counter", default=None)


@contextmanager
def counting(count: Callable[[str], Any]) -> Iterator[None]:
    """Count every refusal made inside the block with COUNT(reason) (e.g. ``LinkHealth.count``)."""
    token = _counter.set(count)
    try:
        yield
    finally:
        _counter.reset(token)


def refuse(reason: str) -> None:
    """Count one refused value under REASON on the current counter, if any."""
    count = _counter.get()
    if count is not None:
        count(reason)


def _number(value: Any) -> float | int | None:
    """Return VALUE if it is a finite number (not a boolean), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def count(value: Any) -> int | None:
    """Return VALUE as a count, or None: absent (None, not counted) or refused (counted ``bad_figure``)."""
    if value is None:
        return None
    number = _number(value)
    if number is None or number < 0 or number > MAX_COUNT or (isinstance(number, float) and not number.is_integer()):
        refuse(BAD_FIGURE)
        return None
    return int(number)


def duration_ms(value: Any) -> float | None:
    """Return VALUE as a duration in milliseconds, or None: absent (not counted) or refused (``bad_figure``)."""
    if value is None:
        return None
    number = _number(value)
    if number is None or number < 0 or number > MAX_DURATION_MS:
        refuse(BAD_FIGURE)
        return None
    return number


def lifetime_s(value: Any) -> float | None:
    """Return VALUE as a token's lifetime in seconds, or None: absent, or refused (``bad_figure``).

    A lifetime is a finite number above 0; one longer than ``MAX_LIFETIME_S`` is cut to it, never refused:
    a token URL that issues tokens for years still works, and its token is renewed within a day.
    """
    if value is None:
        return None
    number = _number(value)
    if number is None or number <= 0:
        refuse(BAD_FIGURE)
        return None
    return min(float(number), MAX_LIFETIME_S)


def moment(seconds: float | None, *, ahead: float = MAX_AHEAD, now: float | None = None) -> float | None:
    """Return SECONDS (epoch) if it is a moment a board may show, or None: absent, or refused (``bad_time``)."""
    if seconds is None:
        return None
    now = time.time() if now is None else now
    if type(seconds) is float and EARLIEST <= seconds <= now + ahead:
        return seconds  # the common case, checked in one step (NaN and infinities fail the comparison)
    if _number(seconds) is None or not EARLIEST <= seconds <= now + ahead:
        refuse(BAD_TIME)
        return None
    return seconds


def deadline(seconds: float | None, *, within: float, now: float | None = None) -> float | None:
    """Return SECONDS (epoch) if it is a deadline we may plan by: after now and at most WITHIN seconds ahead.

    None stays None (not counted); any other value is refused (``bad_time``): the caller plans by its own
    default. A deadline already past would make what it schedules due at once, again and again; one far
    ahead would never make it due.
    """
    if seconds is None:
        return None
    now = time.time() if now is None else now
    if _number(seconds) is None or not now < seconds <= now + within:
        refuse(BAD_TIME)
        return None
    return seconds


def shown_time(value: Any, parse: Callable[[Any], float | None]) -> Any:
    """Return VALUE, read by PARSE, as epoch seconds to show (None for null), or UNSET when PARSE refuses it
    (a ValueError) or it lies outside the sane window; either refusal is counted."""
    try:
        seconds = parse(value)
    except ValueError:
        refuse(BAD_TIME)
        return UNSET
    if seconds is None:
        return None
    checked = moment(seconds)
    return UNSET if checked is None else checked


def ordering(seconds: float | None, *, now: float | None = None) -> float | None:
    """Return SECONDS (epoch) to order records by: *now* in its place when it is too far ahead (``future_time``).

    None stays None; a value that is no finite number is refused (``bad_time``): the record is then unordered.
    """
    if seconds is None:
        return None
    if _number(seconds) is None:
        refuse(BAD_TIME)
        return None
    now = time.time() if now is None else now
    if seconds > now + MAX_AHEAD:
        refuse(FUTURE_TIME)
        return now
    return seconds
