"""Genesys REST replies → queues, members and queue parts: the records behind a snapshot and the queue import.

A reply is many records (a queue's result group, an interval's data entry, a
member): one that is malformed is skipped and counted (``malformed_record``),
and the rest of the reply applies. Only a reply whose own shape is wrong
raises ``ParseError``, so one bad queue or agent can never fail every
snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streams import sanity
from streams.events import AgentStatus, QueueStats
from streams.vendors.genesys.queue_metrics import QueuePart, aggregate_fields, instant_fields, media_type
from streams.vendors.genesys.users import agent_fields
from streams.vendors.genesys.values import as_id, as_list, as_object, parse_interval

# What one record of a reply may raise: ParseError (a ValueError) for a shape Genesys does not document, the
# others for shapes (and figures) no check foresaw. Such a record is skipped and counted, never the reply.
_RECORD_ERRORS = (ValueError, TypeError, AttributeError, KeyError, ArithmeticError)


def parse_queue_entities(body: Any) -> list[dict[str, str]]:
    """Return [{"id", "name"}] from one page of GET /api/v2/routing/queues."""
    page = as_object(body, "reply")
    queues = []
    for raw in as_list(page.get("entities", []), "entities"):
        entity = as_object(raw, "queue")
        queue_id = as_id(entity.get("id"), "queue id")
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
    page = as_object(body, "reply")
    members = []
    for raw in as_list(page.get("entities", []), "entities"):
        try:
            members.append(_member(source, raw))
        except _RECORD_ERRORS:
            sanity.refuse(sanity.MALFORMED_RECORD)
    return members


def _member(source: str, raw: Any) -> Member:
    entity = as_object(raw, "member")
    user = entity.get("user") if isinstance(entity.get("user"), dict) else {}
    agent_id = as_id(entity.get("id") or user.get("id"), "member id")
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
    reply = as_object(body, "reply")
    parts = []
    for raw in as_list(reply.get("results", []), "results"):
        try:
            result = as_object(raw, "result")
            group = as_object(result.get("group"), "group")
            queue_id = as_id(group.get("queueId"), "queueId")
            fields = instant_fields(as_list(result.get("data", []), "data"), now)
            parts.append(QueuePart(QueueStats(source=source, queue_id=queue_id, **fields), media_type(group)))
        except _RECORD_ERRORS:
            # One queue's (media type's) figures are lost, not every queue's.
            sanity.refuse(sanity.MALFORMED_RECORD)
    return parts


def parse_aggregate_results(source: str, body: Any) -> list[QueuePart]:
    """Return the interval numbers of a POST /api/v2/analytics/queues/aggregates/query reply, per queue and media.

    With several intervals in a result, the latest one wins (it is the current one).
    """
    reply = as_object(body, "reply")
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for raw in as_list(reply.get("results", []), "results"):
        try:
            result = as_object(raw, "result")
            group = as_object(result.get("group"), "group")
            key = (as_id(group.get("queueId"), "queueId"), media_type(group))
            entries = as_list(result.get("data", []), "data")
        except _RECORD_ERRORS:
            sanity.refuse(sanity.MALFORMED_RECORD)
            continue
        for entry_raw in entries:
            try:
                entry = as_object(entry_raw, "data entry")
                start, _end = parse_interval(entry.get("interval"))
                if sanity.moment(start) is None:
                    continue
                current = latest.get(key)
                if current is not None and current["interval_start"] > start:
                    continue
                latest[key] = aggregate_fields(as_list(entry.get("metrics"), "metrics"), start)
            except _RECORD_ERRORS:
                # One interval's figures are lost; the queue's other intervals (and queues) stand.
                sanity.refuse(sanity.MALFORMED_RECORD)
    return [
        QueuePart(QueueStats(source=source, queue_id=queue_id, **values), media)
        for (queue_id, media), values in latest.items()
    ]
