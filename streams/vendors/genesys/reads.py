"""The REST reads behind a Genesys snapshot: queue names, observations, interval aggregates and members.

Each read is one call (all its pages); ``queue_parts`` and ``joined_members``
gather them for a snapshot's queues and agents, and ``replay_memberships``
brings the members up to the joins and leaves that arrived meanwhile.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from streams.events import AgentStatus, QueueMembership, reported
from streams.vendors.genesys.queue_metrics import AGGREGATE_METRICS, OBSERVATION_METRICS, QueuePart
from streams.vendors.genesys.replies import (
    Member,
    parse_aggregate_results,
    parse_members,
    parse_observation_results,
    parse_queue_entities,
)
from streams.vendors.genesys.rest import GenesysRest, RestError
from streams.vendors.genesys.subscriptions import batches
from streams.vendors.genesys.values import ParseError

QUERY_BATCH = 100  # queues per analytics query or queue lookup
INTERVAL = 1800.0  # Genesys' analytics interval: 30 minutes


def current_interval(now: float) -> str:
    """Return the ISO-8601 interval of the 30-minute analytics interval holding NOW."""
    start = now - now % INTERVAL
    return f"{_iso(start)}/{_iso(start + INTERVAL)}"


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _queue_filter(queue_ids: Iterable[str]) -> dict[str, Any]:
    return {"type": "or", "predicates": [{"dimension": "queueId", "value": q} for q in queue_ids]}


def parsed(parser: Any, *args: Any) -> Any:
    """Call a REST-reply parser; a reply of the wrong shape becomes a RestError (counted upstream)."""
    try:
        return parser(*args)
    except ParseError as exc:
        raise RestError(f"unexpected reply: {exc}") from None


async def queue_names(rest: GenesysRest, queue_ids: list[str]) -> dict[str, str]:
    """Return the names of QUEUE_IDS (those the org still has)."""
    names: dict[str, str] = {}
    wanted = set(queue_ids)
    for batch in batches(queue_ids, QUERY_BATCH):
        params = [("pageSize", 100), *(("id", q) for q in batch)]
        async for page in rest.pages("/api/v2/routing/queues", params):
            for queue in parsed(parse_queue_entities, page):
                if queue["id"] in wanted:
                    names[queue["id"]] = queue["name"]
    return names


async def observations(rest: GenesysRest, source: str, queue_ids: list[str], now: float) -> list[QueuePart]:
    """Return the queues' current observations (waiting, interacting, ...), per media type."""
    body = {"filter": _queue_filter(queue_ids), "metrics": list(OBSERVATION_METRICS), "detailMetrics": ["oWaiting"]}
    reply = await rest.request("POST", "/api/v2/analytics/queues/observations/query", json=body)
    return parsed(parse_observation_results, source, reply, now)


async def aggregates(rest: GenesysRest, source: str, queue_ids: list[str], now: float) -> list[QueuePart]:
    """Return the queues' totals for the current 30-minute interval, per media type."""
    body = {
        "interval": current_interval(now),
        "groupBy": ["queueId"],
        "metrics": list(AGGREGATE_METRICS),
        "filter": _queue_filter(queue_ids),
    }
    reply = await rest.request("POST", "/api/v2/analytics/queues/aggregates/query", json=body)
    return parsed(parse_aggregate_results, source, reply)


async def members(rest: GenesysRest, source: str, queue_id: str) -> list[Member]:
    """Return the members of one queue with their state (all pages); a deleted queue raises RestError 404."""
    found: list[Member] = []
    params = {"pageSize": 100, "expand": "routingStatus,presence"}
    async for page in rest.pages(f"/api/v2/routing/queues/{queue_id}/members", params):
        found.extend(parsed(parse_members, source, page))
    return found


async def queue_parts(
    rest: GenesysRest, source: str, queue_ids: list[str]
) -> tuple[dict[str, str], dict[str, list[QueuePart]]]:
    """Return the names of QUEUE_IDS and each one's parts: its observations and current interval numbers."""
    names = await queue_names(rest, queue_ids)
    now = time.time()
    parts: dict[str, list[QueuePart]] = {queue_id: [] for queue_id in queue_ids}
    for batch in batches(queue_ids, QUERY_BATCH):
        observed = await observations(rest, source, batch, now)
        for part in [*observed, *await aggregates(rest, source, batch, now)]:
            if part.stats.queue_id in parts:
                parts[part.stats.queue_id].append(part)
    return names, parts


@dataclass
class JoinedMembers:
    """The joined members of some queues as REST listed them: per queue, and each agent's state and queues."""

    by_queue: dict[str, set[str]]
    agents: dict[str, AgentStatus]
    queues_of: dict[str, set[str]]

    def statuses(self) -> dict[str, AgentStatus]:
        """Return each agent's state, naming the queues it was listed in."""
        return {a: with_queues(s, frozenset(self.queues_of[a])) for a, s in self.agents.items()}


async def joined_members(queue_ids: list[str], members_of: Callable[[str], Awaitable[list[Member]]]) -> JoinedMembers:
    """Return the joined members of QUEUE_IDS, each queue's read by MEMBERS_OF (an agent in two queues merged)."""
    joined = JoinedMembers(by_queue={}, agents={}, queues_of={})
    for queue_id in queue_ids:
        joined.by_queue[queue_id] = set()
        for member in await members_of(queue_id):
            if not member.joined:
                continue
            joined.by_queue[queue_id].add(member.agent_id)
            joined.queues_of.setdefault(member.agent_id, set()).add(queue_id)
            joined.agents[member.agent_id] = merge(joined.agents.get(member.agent_id), member.status)
    return joined


def replay_memberships(members: dict[str, set[str]], items: Iterable[Any]) -> None:
    """Apply to MEMBERS (queue → agents) the joins and leaves among ITEMS, in order, for the queues it holds."""
    for item in items:
        if isinstance(item, QueueMembership) and item.queue_id in members:
            if item.joined:
                members[item.queue_id].add(item.agent_id)
            else:
                members[item.queue_id].discard(item.agent_id)


def merge(current: AgentStatus | None, new: AgentStatus) -> AgentStatus:
    """Return NEW on top of CURRENT (an agent read through two queues)."""
    if current is None:
        return new
    return AgentStatus(source=new.source, agent_id=new.agent_id, **(reported(current) | reported(new)))


def with_queues(status: AgentStatus, queue_ids: frozenset[str]) -> AgentStatus:
    """Return STATUS naming QUEUE_IDS as the agent's watched queues."""
    return AgentStatus(source=status.source, agent_id=status.agent_id, **(reported(status) | {"queue_ids": queue_ids}))
