"""The REST reads behind a Genesys snapshot: queue names, observations, interval aggregates and members."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from streams.events import AgentStatus, reported
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


def merge(current: AgentStatus | None, new: AgentStatus) -> AgentStatus:
    """Return NEW on top of CURRENT (an agent read through two queues)."""
    if current is None:
        return new
    return AgentStatus(source=new.source, agent_id=new.agent_id, **(reported(current) | reported(new)))


def with_queues(status: AgentStatus, queue_ids: frozenset[str]) -> AgentStatus:
    """Return STATUS naming QUEUE_IDS as the agent's watched queues."""
    return AgentStatus(source=status.source, agent_id=status.agent_id, **(reported(status) | {"queue_ids": queue_ids}))
