"""Genesys notification frames and REST replies → vendor-neutral events.

Everything here is pure: no I/O, no clocks unless passed in (but the sane window
of ``streams.sanity`` is reckoned from the wall clock). Anything that
does not have the expected shape raises ``ParseError`` (REST) or comes back as
a ``Notice`` of kind "malformed" or "unknown" (socket frames), so callers count
and skip it; nothing here lets a bad message end a connection.

Counts, durations and times go through ``streams.sanity`` (and are counted
when refused). A count out of range (``1e300``, ``1e400``, negative, NaN, a
string) makes its message malformed, as any bad entry does: a queue's figures
are only trusted together. A wait or a time out of range or unreadable (a date
in the year 5138, ``1e16`` ms, "garbage") leaves its field out, and the rest of
the message applies; so does a service level above 100 % (its numerator and
denominator are left out).

A REST reply is many records (a queue's result group, an interval's data
entry, a member): one that is malformed is skipped and counted
(``malformed_record``), and the rest of the reply applies. Only a reply whose
own shape is wrong raises ParseError, so one bad queue or agent can never fail
every snapshot.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from streams import sanity, states
from streams.events import UNSET, AgentStatus, Event, QueueMembership, QueueStats

_QUEUE_TOPIC = re.compile(r"^v2\.analytics\.queues\.(?P<id>[^.]+)\.observations$")
_QUEUE_USERS_TOPIC = re.compile(r"^v2\.routing\.queues\.(?P<id>[^.]+)\.users$")
_USER_TOPIC = re.compile(r"^v2\.users\.(?P<id>[^.?]+)(?:\.(?P<part>activity|presence|routingStatus)|\?(?P<combo>.+))$")
_SYSTEM_TOPIC = re.compile(
    r"^v2\.system\.(?P<what>socket_closing|no_longer_subscribed|token_revoked)(?:\.(?P<id>.+))?$"
)

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


class ParseError(ValueError):
    """A message or reply that does not have the shape Genesys documents."""


# -- values -------------------------------------------------------------------------


def parse_time(value: Any) -> float | None:
    """Return an ISO-8601 time (or epoch milliseconds) as epoch seconds, exact to the millisecond.

    None stays None; anything else unreadable raises ParseError.
    """
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


def system_presence(value: Any) -> str | None:
    """Return a system presence in the Floor's spelling ("OnQueue", "ON_QUEUE" → "on_queue"; see streams.states)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ParseError(f"not a presence: {value!r}")
    return states.presence(value)


def routing_status(value: Any) -> str | None:
    """Return a routing status upper-cased ("idle" → "IDLE"; see streams.states)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ParseError(f"not a routing status: {value!r}")
    return states.routing_status(value)


def _count(value: Any) -> int:
    """Return a count (see ``streams.sanity``); raise ParseError when it is refused (counted there)."""
    count = sanity.count(value)
    if count is None:
        if value is None:
            sanity.refuse(sanity.BAD_FIGURE)
        raise ParseError(f"not a count: {str(value)[:40]!r}")
    return count


def _moment(value: Any) -> Any:
    """Return a time to show as epoch seconds (None stays None), or UNSET when unreadable or outside the sane
    window (counted ``bad_time``): a bad time costs its field, never its message."""
    return sanity.shown_time(value, parse_time)


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ParseError(f"{what} is not an object")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise ParseError(f"{what} is not a list")
    return value


def _ident(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ParseError(f"{what} is missing")
    return value


# -- queue metrics ------------------------------------------------------------------


def _metric_count(item: dict[str, Any]) -> int:
    return _count(_object(item.get("stats"), "stats").get("count", 0))


def _observation_dates(observations: list[Any]) -> tuple[list[float], bool]:
    """Return the sane observationDates of a datum's observations (the others are counted and passed over),
    and whether any was refused."""
    dates = [_moment(o.get("observationDate")) for o in observations if isinstance(o, dict)]
    return [d for d in dates if d is not None and d is not UNSET], UNSET in dates


def _longest_waiting_since(item: dict[str, Any], instant: float | None) -> Any:
    """Return when the longest-waiting contact began to wait, from an oLongestWaiting datum (UNSET: unknown)."""
    stats = _object(item.get("stats", {}), "stats")
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
    for raw in metrics:
        item = _object(raw, "metric")
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
        item = _object(raw, "metric")
        name = item.get("metric", item.get("name"))
        stats = _object(item.get("stats", {}), "stats")
        if name in _AGGREGATE_COUNTS:
            values[_AGGREGATE_COUNTS[name]] = _count(stats.get("count", 0))
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


@dataclass(frozen=True, slots=True)
class QueuePart:
    """A queue's figures as Genesys groups them: for one media type, or (``media_type`` "") for the whole queue.

    Genesys reports contact counts and interval aggregates per queue *and*
    media type, agent counts per queue; ``streams.vendors.genesys.media``
    adds the parts up into the queue's totals.
    """

    stats: QueueStats
    media_type: str = ""


def _media_type(group: dict[str, Any]) -> str:
    media = group.get("mediaType", "")
    if not isinstance(media, str):
        raise ParseError("mediaType is not a string")
    return media.lower()


def parse_observation(source: str, queue_id: str, body: Any) -> QueuePart:
    """Return the part of a queue in one observations-topic eventBody (instant values, interval aggregates or both)."""
    body = _object(body, "eventBody")
    group = _object(body.get("group", {}), "group")
    if group.get("queueId", queue_id) != queue_id:
        raise ParseError("eventBody names another queue")
    values: dict[str, Any] = {}
    for raw in _list(body.get("data"), "data"):
        entry = _object(raw, "data entry")
        start, end = parse_interval(entry.get("interval"))
        metrics = _list(entry.get("metrics"), "metrics")
        if sanity.moment(start) is None:
            # An interval in the year 5138 would stay "current" and freeze the real one's figures.
            continue
        if start == end:
            values.update(instant_fields(metrics, start))
        else:
            values.update(aggregate_fields(metrics, start))
    return QueuePart(QueueStats(source=source, queue_id=queue_id, **values), _media_type(group))


# -- agents -------------------------------------------------------------------------


def _presence_fields(presence: dict[str, Any]) -> dict[str, Any]:
    definition = _object(presence.get("presenceDefinition", {}), "presenceDefinition")
    values: dict[str, Any] = {}
    if "systemPresence" in definition:
        values["presence"] = system_presence(definition["systemPresence"])
    if "modifiedDate" in presence and (since := _moment(presence["modifiedDate"])) is not UNSET:
        values["presence_since"] = since
    return values


def _routing_fields(routing: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if "status" in routing:
        values["routing_status"] = routing_status(routing["status"])
    if "startTime" in routing and (since := _moment(routing["startTime"])) is not UNSET:
        values["routing_since"] = since
    return values


def agent_fields(body: dict[str, Any]) -> dict[str, Any]:
    """Return AgentStatus fields from a user body: activity, presence, routingStatus or a combination."""
    values: dict[str, Any] = {}
    presence = body.get("presence")
    if isinstance(presence, dict):
        values.update(_presence_fields(presence))
    elif "presenceDefinition" in body:
        values.update(_presence_fields(body))
    routing = body.get("routingStatus")
    if isinstance(routing, dict):
        values.update(_routing_fields(routing))
    elif "status" in body and "presenceDefinition" not in body:
        values.update(_routing_fields(body))
    name = body.get("name")
    if isinstance(name, str) and name:
        values["name"] = name
    return values


def parse_user(source: str, user_id: str, body: Any) -> AgentStatus:
    """Return the AgentStatus of one user-topic eventBody."""
    body = _object(body, "eventBody")
    values = agent_fields(body)
    if not values:
        raise ParseError("user eventBody carries neither presence nor routing status")
    return AgentStatus(source=source, agent_id=user_id, **values)


def parse_queue_member(source: str, queue_id: str, body: Any) -> QueueMembership:
    """Return the membership change of one queue-users-topic eventBody."""
    body = _object(body, "eventBody")
    user = body.get("user")
    agent_id = user.get("id") if isinstance(user, dict) else None
    agent_id = _ident(agent_id or body.get("id"), "user id")
    joined = body.get("joined")
    if not isinstance(joined, bool):
        raise ParseError("joined is not a boolean")
    return QueueMembership(source=source, queue_id=queue_id, agent_id=agent_id, joined=joined)


# -- socket frames ------------------------------------------------------------------


@dataclass(frozen=True)
class Notice:
    """What one socket frame means to the connector.

    kind: "heartbeat", "pong", "metadata", "events", "socket_closing",
    "no_longer_subscribed", "token_revoked", "unknown" (a topic we cannot
    read) or "malformed". ``target`` is the id a system topic names.
    """

    kind: str
    events: tuple[Event, ...] = ()
    topic: str = ""
    target: str = ""
    detail: str = field(default="", compare=False)


def parse_frame(source: str, frame: str | bytes) -> Notice:
    """Return the meaning of one notification-socket frame (never raises)."""
    try:
        message = json.loads(frame)
    except (ValueError, UnicodeDecodeError):
        return Notice("malformed", detail="not JSON")
    return parse_message(source, message)


def parse_message(source: str, message: Any) -> Notice:
    """Return the meaning of one decoded notification (``{"topicName", "eventBody"}``), never raising.

    The same whether it came over the socket or inside an EventBridge envelope's ``detail``.
    """
    if not isinstance(message, dict):
        return Notice("malformed", detail="not an object")
    topic = message.get("topicName")
    if not isinstance(topic, str):
        return Notice("malformed", detail="no topicName")
    try:
        return _parse_message(source, topic, message.get("eventBody"))
    except (ValueError, TypeError, AttributeError, KeyError, ArithmeticError) as exc:
        # ParseError is a ValueError; the others guard against shapes (and figures) no check foresaw.
        return Notice("malformed", topic=topic, detail=str(exc)[:200])


def _parse_message(source: str, topic: str, body: Any) -> Notice:
    if topic == "channel.metadata":
        text = _object(body, "eventBody").get("message")
        if text == "WebSocket Heartbeat":
            return Notice("heartbeat", topic=topic)
        if text == "pong":
            return Notice("pong", topic=topic)
        return Notice("metadata", topic=topic, detail=str(text)[:100])
    if match := _QUEUE_TOPIC.match(topic):
        return Notice("events", (parse_observation(source, match["id"], body),), topic=topic)
    if match := _USER_TOPIC.match(topic):
        return Notice("events", (parse_user(source, match["id"], body),), topic=topic)
    if match := _QUEUE_USERS_TOPIC.match(topic):
        return Notice("events", (parse_queue_member(source, match["id"], body),), topic=topic)
    if match := _SYSTEM_TOPIC.match(topic):
        return Notice(match["what"], topic=topic, target=match["id"] or "")
    return Notice("unknown", topic=topic)


# -- REST replies -------------------------------------------------------------------

# What one record of a reply may raise: ParseError (a ValueError) for a shape Genesys does not document, the
# others for shapes (and figures) no check foresaw. Such a record is skipped and counted, never the reply.
_RECORD_ERRORS = (ValueError, TypeError, AttributeError, KeyError, ArithmeticError)


def parse_queue_entities(body: Any) -> list[dict[str, str]]:
    """Return [{"id", "name"}] from one page of GET /api/v2/routing/queues."""
    page = _object(body, "reply")
    queues = []
    for raw in _list(page.get("entities", []), "entities"):
        entity = _object(raw, "queue")
        queue_id = _ident(entity.get("id"), "queue id")
        name = entity.get("name")
        queues.append({"id": queue_id, "name": name if isinstance(name, str) and name else queue_id})
    return queues


@dataclass(frozen=True)
class Member:
    """One member of a queue as the members call reports it."""

    agent_id: str
    joined: bool
    status: AgentStatus


def parse_members(source: str, body: Any) -> list[Member]:
    """Return the members on one page of GET /api/v2/routing/queues/{id}/members."""
    page = _object(body, "reply")
    members = []
    for raw in _list(page.get("entities", []), "entities"):
        try:
            members.append(_member(source, raw))
        except _RECORD_ERRORS:
            sanity.refuse(sanity.MALFORMED_RECORD)
    return members


def _member(source: str, raw: Any) -> Member:
    entity = _object(raw, "member")
    user = entity.get("user") if isinstance(entity.get("user"), dict) else {}
    agent_id = _ident(entity.get("id") or user.get("id"), "member id")
    values = agent_fields(user) | agent_fields(entity)
    joined = entity.get("joined", True)
    return Member(
        agent_id=agent_id,
        joined=joined if isinstance(joined, bool) else True,
        status=AgentStatus(source=source, agent_id=agent_id, **values),
    )


def parse_observation_results(source: str, body: Any, now: float) -> list[QueuePart]:
    """Return the queue parts of a POST /api/v2/analytics/queues/observations/query reply, one per result group.

    NOW (epoch seconds) stands in for the observation instant when a longest
    wait is given only as a duration.
    """
    reply = _object(body, "reply")
    parts = []
    for raw in _list(reply.get("results", []), "results"):
        try:
            result = _object(raw, "result")
            group = _object(result.get("group"), "group")
            queue_id = _ident(group.get("queueId"), "queueId")
            fields = instant_fields(_list(result.get("data", []), "data"), now)
            parts.append(QueuePart(QueueStats(source=source, queue_id=queue_id, **fields), _media_type(group)))
        except _RECORD_ERRORS:
            # One queue's (media type's) figures are lost, not every queue's.
            sanity.refuse(sanity.MALFORMED_RECORD)
    return parts


def parse_aggregate_results(source: str, body: Any) -> list[QueuePart]:
    """Return the interval numbers of a POST /api/v2/analytics/queues/aggregates/query reply, per queue and media.

    With several intervals in a result, the latest one wins (it is the current one).
    """
    reply = _object(body, "reply")
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for raw in _list(reply.get("results", []), "results"):
        try:
            result = _object(raw, "result")
            group = _object(result.get("group"), "group")
            key = (_ident(group.get("queueId"), "queueId"), _media_type(group))
            entries = _list(result.get("data", []), "data")
        except _RECORD_ERRORS:
            sanity.refuse(sanity.MALFORMED_RECORD)
            continue
        for entry_raw in entries:
            try:
                entry = _object(entry_raw, "data entry")
                start, _end = parse_interval(entry.get("interval"))
                if sanity.moment(start) is None:
                    continue
                current = latest.get(key)
                if current is not None and current["interval_start"] > start:
                    continue
                latest[key] = aggregate_fields(_list(entry.get("metrics"), "metrics"), start)
            except _RECORD_ERRORS:
                # One interval's figures are lost; the queue's other intervals (and queues) stand.
                sanity.refuse(sanity.MALFORMED_RECORD)
    return [
        QueuePart(QueueStats(source=source, queue_id=queue_id, **values), media)
        for (queue_id, media), values in latest.items()
    ]
