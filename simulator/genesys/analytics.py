"""Genesys' analytics queries: queue observations, queue aggregates and routing activity, with their filters."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from simulator.genesys import payloads
from simulator.genesys.errors import ApiError, json_body
from simulator.presence import presence_id, socket_name
from simulator.timefmt import iso, parse_interval


def _filter_values(flt: Any, dimension: str) -> list[str]:
    """Return every value FLT (a query filter) gives for DIMENSION, recursively."""
    if not isinstance(flt, dict):
        return []
    values = [
        str(p.get("value"))
        for p in flt.get("predicates") or []
        if isinstance(p, dict) and p.get("dimension") == dimension and p.get("value") is not None
    ]
    for clause in flt.get("clauses") or []:
        values.extend(_filter_values(clause, dimension))
    return values


def _check_filter(flt: Any) -> None:
    if not isinstance(flt, dict):
        raise ApiError(400, "filter must be an object")
    kind = str(flt.get("type", "and")).lower()
    if kind not in ("and", "or"):
        raise ApiError(400, "filter type must be 'and' or 'or'")
    predicates, clauses = flt.get("predicates") or [], flt.get("clauses") or []
    if not isinstance(predicates, list) or not isinstance(clauses, list):
        raise ApiError(400, "filter predicates and clauses must be lists")
    for predicate in predicates:
        if not isinstance(predicate, dict) or not isinstance(predicate.get("dimension", ""), str):
            raise ApiError(400, "each predicate must be an object with a dimension")
    for clause in clauses:
        _check_filter(clause)


def _matches(flt: dict, group: dict[str, str]) -> bool | None:
    """Return whether GROUP satisfies FLT; None when FLT says nothing about the group's dimensions."""
    results: list[bool] = []
    for predicate in flt.get("predicates") or []:
        dimension = predicate.get("dimension")
        if dimension not in group:
            continue  # this group is not split by that dimension
        operator = str(predicate.get("operator", "matches")).lower()
        if operator == "exists":
            results.append(True)
        elif operator == "notexists":
            results.append(False)
        else:
            results.append(str(predicate.get("value")) == group[dimension])
    for clause in flt.get("clauses") or []:
        outcome = _matches(clause, group)
        if outcome is not None:
            results.append(outcome)
    if not results:
        return None
    return all(results) if str(flt.get("type", "and")).lower() == "and" else any(results)


def _metric_names(raw: Any, known: tuple[str, ...], field_name: str = "metrics") -> list[str]:
    if not isinstance(raw, list) or not raw:
        raise ApiError(400, f"{field_name} must be a non-empty list")
    unknown = [m for m in raw if m not in known]
    if unknown:
        raise ApiError(400, f"Unsupported {field_name}: {', '.join(map(str, unknown))}")
    return list(dict.fromkeys(raw))


class AnalyticsRoutes:
    """Answer the three analytics queries from the model, checking their filters and metric names as Genesys does.

    A part of ``GenesysApi``.
    """

    async def observations_query(self, request: web.Request) -> web.Response:
        """Answer a queue observation query: grouped by queueId (user metrics) and queueId+mediaType."""
        body = await json_body(request)
        if not isinstance(body, dict):
            raise ApiError(400, "The body must be a JSON object")
        flt = body.get("filter")
        _check_filter(flt)
        if not _filter_values(flt, "queueId"):
            raise ApiError(400, "The filter must name at least one queueId")
        metrics = _metric_names(body.get("metrics"), payloads.OBSERVATION_METRICS)
        details: set[str] = set()
        if body.get("detailMetrics"):
            details = set(_metric_names(body["detailMetrics"], payloads.OBSERVATION_METRICS, "detailMetrics"))
        named = set(_filter_values(flt, "queueId"))
        user_metrics = [m for m in metrics if m in payloads.USER_METRICS]
        conversation_metrics = [m for m in metrics if m in payloads.CONVERSATION_METRICS]
        results = []
        for queue in self.model.queues.values():
            if queue.id not in named:
                continue
            for group, wanted in (
                ({"queueId": queue.id}, user_metrics),
                ({"queueId": queue.id, "mediaType": queue.media_type}, conversation_metrics),
            ):
                if wanted and _matches(flt, group) is not False:
                    data = payloads.observation_data(self.model, queue, wanted, details)
                    results.append({"group": group, "data": data})
        return web.json_response({"results": results})

    async def aggregates_query(self, request: web.Request) -> web.Response:
        """Answer an aggregate query with the current 30-minute interval's numbers per queue."""
        body = await json_body(request)
        if not isinstance(body, dict):
            raise ApiError(400, "The body must be a JSON object")
        try:
            start, end = parse_interval(body.get("interval", ""))
        except (TypeError, ValueError) as exc:
            raise ApiError(400, f"interval: {exc}") from None
        group_by = body.get("groupBy") or []
        if group_by != ["queueId"]:
            raise ApiError(400, "The simulator groups aggregates by queueId only")
        metrics = _metric_names(body.get("metrics"), payloads.AGGREGATE_METRICS)
        flt = body.get("filter")
        if flt is not None:
            _check_filter(flt)
        results = []
        for queue in self.model.queues.values():
            # Genesys splits queue aggregates by media type even when grouped by queueId alone.
            group = {"queueId": queue.id, "mediaType": queue.media_type}
            if flt is not None and _matches(flt, group) is False:
                continue
            # Only the current interval is known; it answers when the asked interval overlaps it.
            if not (start < queue.interval_start + 1800 and end > queue.interval_start):
                continue
            data = [{"interval": payloads.current_interval(queue), "metrics": payloads.aggregate_data(queue, metrics)}]
            results.append({"group": group, "data": data})
        return web.json_response({"results": results})

    async def routing_activity_query(self, request: web.Request) -> web.Response:
        """Answer a routing activity query (user routing statuses and presences per queue)."""
        body = await json_body(request)
        if not isinstance(body, dict):
            raise ApiError(400, "The body must be a JSON object")
        raw = body.get("metrics")
        if not isinstance(raw, list) or not raw or not all(isinstance(m, dict) for m in raw):
            raise ApiError(400, "metrics must be a non-empty list of objects")
        # Documentation writes the key as "metric" in some places and "name" in others: take both.
        wanted = {str(m.get("metric") or m.get("name")): bool(m.get("details")) for m in raw}
        known = ("oUserRoutingStatuses", "oUserPresences", "oActiveUsers", "oMemberUsers")
        _metric_names(list(wanted), known)
        group_by = body.get("groupBy") or []
        if group_by not in ([], ["queueId"]):
            raise ApiError(400, "The simulator groups routing activity by queueId only")
        flt = body.get("filter")
        if flt is not None:
            _check_filter(flt)
        results = []
        for queue in self.model.queues.values():
            group = {"queueId": queue.id}
            if flt is not None and _matches(flt, group) is False:
                continue
            data, entities = [], []
            for metric, details in wanted.items():
                data.extend(payloads.observation_data(self.model, queue, [metric], set()))
                if details:
                    entities.extend(self._activity_entities(queue.id, metric))
            result: dict[str, Any] = {"group": group, "data": data}
            if entities:
                result["entities"] = entities
            results.append(result)
        return web.json_response({"results": results, "entityIdDimension": "userId"})

    def _activity_entities(self, queue_id: str, metric: str) -> list[dict[str, Any]]:
        queue = self.model.queues[queue_id]
        agents = [self.model.agents[a] for a in sorted(queue.member_ids)]
        if metric == "oUserRoutingStatuses":
            return [
                {
                    "userId": a.id,
                    "queueId": queue_id,
                    "routingStatus": a.routing_status,
                    "activityDate": iso(a.routing_since),
                }
                for a in agents
            ]
        if metric == "oUserPresences":
            return [
                {
                    "userId": a.id,
                    "queueId": queue_id,
                    "organizationPresenceId": presence_id(a.presence),
                    "systemPresence": socket_name(a.presence),
                    "activityDate": iso(a.presence_since),
                }
                for a in agents
            ]
        return [{"userId": a.id, "queueId": queue_id} for a in agents]
