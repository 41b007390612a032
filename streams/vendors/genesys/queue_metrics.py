"""Genesys queue metrics → queue fields: observation and aggregate metrics, and a queue's part per media type.

Which metric fills which ``QueueStats`` field is said here once: the counts in
``_INSTANT_COUNTS`` and ``_AGGREGATE_COUNTS``, the rest read on their own. The
REST snapshot asks for every metric listed (``OBSERVATION_METRICS``,
``AGGREGATE_METRICS``); the socket's observations topic and the REST replies
(``replies``) are both read through ``instant_fields`` and
``aggregate_fields``.

A count out of range (``1e300``, ``1e400``, negative, NaN, a string) makes its
message malformed (``ParseError``): a queue's figures are only trusted
together. A wait or a time out of range or unreadable leaves its field out,
and the rest of the message applies; so does a service level above 100 % (its
numerator and denominator are left out).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from streams import sanity
from streams.events import UNSET, QueueStats, assemble
from streams.vendors.genesys.values import ParseError, as_count, as_list, as_object, parse_interval, shown_time

# Interval aggregates and the QueueStats field each one fills.
_AGGREGATE_COUNTS = {"nOffered": "offered", "tAnswered": "answered", "tAbandon": "abandoned"}
_INSTANT_COUNTS = {
    "oWaiting": "waiting",
    "oInteracting": "interacting",
    "oAlerting": "alerting",
    "oOnQueueUsers": "on_queue_agents",
}

# The metrics the REST snapshot asks for: every count above, and those read on their own.
OBSERVATION_METRICS = (*_INSTANT_COUNTS, "oLongestWaiting", "oUserRoutingStatuses")
AGGREGATE_METRICS = (*_AGGREGATE_COUNTS, "oServiceLevel")

# The observation metrics instant_fields reads. It passes over the others, which are many: half of
# a queue's agent-figures message is oUserPresences, one entry per presence, that no field shows.
_INSTANT_METRICS = frozenset(OBSERVATION_METRICS)


def _metric_count(item: dict[str, Any]) -> int:
    stats = item.get("stats")
    if type(stats) is dict:
        count = stats.get("count", 0)
        # The common case, a plain int in range, is a count as it stands (a bool is no int here).
        if type(count) is int and 0 <= count <= sanity.MAX_COUNT:
            return count
    return as_count(as_object(stats, "stats").get("count", 0))


def _observation_dates(observations: list[Any]) -> tuple[list[float], bool]:
    """Return the sane observationDates of a datum's observations (the others are counted and passed over),
    and whether any was refused."""
    dates = [shown_time(o.get("observationDate")) for o in observations if isinstance(o, dict)]
    return [d for d in dates if d is not None and d is not UNSET], UNSET in dates


def _longest_waiting_since(item: dict[str, Any], instant: float | None) -> Any:
    """Return when the longest-waiting contact began to wait, from an oLongestWaiting datum (UNSET: unknown)."""
    stats = as_object(item.get("stats", {}), "stats")
    observations = item.get("observations")
    refused = False
    if isinstance(observations, list):
        dates, refused = _observation_dates(observations)
        if dates:
            return min(dates)
    raw = stats.get("calculatedMetricValue")
    waited = sanity.duration_ms(raw)
    if instant is not None and waited is not None:
        return round(instant * 1000 - waited) / 1000.0
    if stats.get("count") == 0 or observations == []:
        return None
    if (raw is not None and waited is None) or refused:
        # The wait or the dates were there but absurd (counted): the field is left out, the message is fine.
        return UNSET
    raise ParseError("oLongestWaiting without a date")


def _oldest_observation(item: dict[str, Any]) -> float | None:
    """Return the earliest observationDate of an oWaiting datum with details, if it has any."""
    observations = item.get("observations")
    if not isinstance(observations, list):
        return None
    dates, _refused = _observation_dates(observations)
    return min(dates) if dates else None


def instant_fields(metrics: Iterable[Any], instant: float | None) -> dict[str, Any]:
    """Return QueueStats fields from a list of observation metrics (INSTANT: when they were observed)."""
    values: dict[str, Any] = {}
    idle: int | None = None  # None: oUserRoutingStatuses not reported
    waiting_oldest: float | None = None
    longest: float | bool | None = False  # False: oLongestWaiting not reported
    for item in metrics:
        if not isinstance(item, dict):
            raise ParseError("metric is not an object")
        name = item["metric"] if "metric" in item else item.get("name")
        if name not in _INSTANT_METRICS:
            continue
        if name in _INSTANT_COUNTS:
            values[_INSTANT_COUNTS[name]] = _metric_count(item)
            if name == "oWaiting":
                waiting_oldest = _oldest_observation(item)
        elif name == "oLongestWaiting":
            longest = _longest_waiting_since(item, instant)
        else:  # oUserRoutingStatuses, one entry per status observed
            qualifier = item.get("qualifier")
            if isinstance(qualifier, str):
                count = _metric_count(item)  # checked whichever status it counts, as a bad count is a bad message
                idle = idle or 0
                if qualifier.upper() == "IDLE":
                    idle += count
    if idle is not None:
        # The message lists the statuses it observed; if IDLE is missing, no agent is idle.
        values["idle_agents"] = idle
    if longest is not False and longest is not UNSET:
        values["longest_waiting_since"] = longest
    elif waiting_oldest is not None:
        values["longest_waiting_since"] = waiting_oldest
    if values.get("waiting") == 0:
        values["longest_waiting_since"] = None
    return values


def aggregate_fields(metrics: Iterable[Any], interval_start: float) -> dict[str, Any]:
    """Return QueueStats interval fields from a list of aggregate metrics of the interval starting then."""
    values: dict[str, Any] = {"interval_start": interval_start}
    for raw in metrics:
        item = as_object(raw, "metric")
        name = item.get("metric", item.get("name"))
        stats = as_object(item.get("stats", {}), "stats")
        if name in _AGGREGATE_COUNTS:
            values[_AGGREGATE_COUNTS[name]] = as_count(stats.get("count", 0))
        elif name == "oServiceLevel":
            numerator, denominator = sanity.count(stats.get("numerator", 0)), sanity.count(stats.get("denominator", 0))
            if numerator is None or denominator is None:
                continue  # refused and counted: the pair is left out, the other figures stand
            if numerator > denominator:
                # A service level above 100 %: neither figure can be trusted, the others can.
                sanity.refuse(sanity.BAD_FIGURE)
                continue
            values["sl_numerator"], values["sl_denominator"] = numerator, denominator
    return values


@dataclass(frozen=True)
class QueuePart:
    """A queue's figures as Genesys groups them: for one media type, or (``media_type`` "") for the whole queue.

    Genesys reports contact counts and interval aggregates per queue *and*
    media type, agent counts per queue; ``streams.vendors.genesys.media``
    adds the parts up into the queue's totals. No slots, so the parser can
    build one without its ``__init__`` (``streams.events.assemble``).
    """

    stats: QueueStats
    media_type: str = ""


def media_type(group: dict[str, Any]) -> str:
    """Return the media type a result group or observation names, lower-cased ("" for the whole queue)."""
    media = group.get("mediaType", "")
    if not isinstance(media, str):
        raise ParseError("mediaType is not a string")
    return media.lower()


def parse_observation(source: str, queue_id: str, body: Any) -> QueuePart:
    """Return the part of a queue in one observations-topic eventBody (instant values, interval aggregates or both)."""
    body = as_object(body, "eventBody")
    group = as_object(body.get("group", {}), "group")
    if group.get("queueId", queue_id) != queue_id:
        raise ParseError("eventBody names another queue")
    values: dict[str, Any] = {}
    for raw in as_list(body.get("data"), "data"):
        entry = as_object(raw, "data entry")
        start, end = parse_interval(entry.get("interval"))
        metrics = as_list(entry.get("metrics"), "metrics")
        if sanity.moment(start) is None:
            # An interval in the year 5138 would stay "current" and freeze the real one's figures.
            continue
        if start == end:
            values.update(instant_fields(metrics, start))
        else:
            values.update(aggregate_fields(metrics, start))
    # The fields were read above, each checked: the event is built from them without its __init__.
    return assemble(QueuePart, {"stats": QueueStats.of(source, queue_id, values), "media_type": media_type(group)})
