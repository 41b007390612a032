"""The Genesys Cloud side of the simulator as an aiohttp application.

OAuth client credentials at ``/oauth/token``, the REST API under ``/api/v2``
(bearer tokens, per-token rate limits with ``inin-ratelimit-*`` headers,
Genesys' error body on every 4xx/5xx), and the notification sockets at the
``connectUri`` each channel hands out. The contract is Genesys Cloud's
documented protocol, as summarised in ``docs/protocols/genesys.md``.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import WSMsgType, web

from simulator import payloads
from simulator.faults import Faults
from simulator.http_input import basic_credentials, int_param
from simulator.hub import PONG, Channel, Hub, SocketSession
from simulator.model import ContactCentreModel, SimAgent
from simulator.presence import presence_id, socket_name
from simulator.timefmt import iso, parse_interval
from simulator.tokens import RateLimiter, TokenStore, bearer_token

log = logging.getLogger(__name__)

MAX_BULK_PRESENCE_IDS = 50
QUEUES_MAX_PAGE_SIZE = 500
MEMBERS_MAX_PAGE_SIZE = 100

# The OAuth client a request's bearer token belongs to (set by the middleware).
CLIENT_ID = web.RequestKey("client_id", str)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class ApiCounters:
    """What the API saw: requests served, bad input dropped, limits hit."""

    requests: int = 0
    bad_requests: int = 0
    unauthorized: int = 0
    rate_limited: int = 0
    bad_frames: int = 0
    token_requests: int = 0
    sockets_opened: int = 0
    by_path: dict[str, int] = field(default_factory=dict)


class ApiError(Exception):
    """Stop handling a request and answer with Genesys' error body."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or _CODES.get(status, "error")
        self.headers = headers or {}


_CODES = {
    400: "bad.request",
    401: "bad.credentials",
    403: "missing.any.permissions",
    404: "not.found",
    405: "method.not.allowed",
    429: "too.many.requests.retry.after",
    500: "internal.server.error",
    502: "bad.gateway",
    503: "service.unavailable",
    504: "gateway.timeout",
}


def error_response(status: int, message: str, code: str | None = None, headers: dict | None = None) -> web.Response:
    """Return a response with Genesys' error body ``{"message","code","status","contextId","details","errors"}``."""
    body = {
        "message": message,
        "code": code or _CODES.get(status, "error"),
        "status": status,
        "contextId": str(uuid.uuid4()),
        "details": [],
        "errors": [],
    }
    return web.json_response(body, status=status, headers=headers)


def _bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def _page_params(request: web.Request, max_page_size: int) -> tuple[int, int]:
    """Return (pageSize, pageNumber) of REQUEST: 25 and 1 by default, the size cut to MAX_PAGE_SIZE."""
    page_size = int_param(request, "pageSize", 25, 1, _bad_request)
    page_number = int_param(request, "pageNumber", 1, 1, _bad_request)
    return min(page_size, max_page_size), page_number


async def _json_body(request: web.Request) -> Any:
    try:
        return await request.json(loads=json.loads)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "The request body is not valid JSON") from None


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


class GenesysApi:
    """Serve Genesys' OAuth, REST and notification sockets from the model."""

    def __init__(
        self,
        model: ContactCentreModel,
        hub: Hub,
        tokens: TokenStore,
        limiter: RateLimiter,
        faults: Faults | None = None,
    ) -> None:
        self.model = model
        self.hub = hub
        self.tokens = tokens
        self.limiter = limiter
        self.faults = faults or Faults()
        self.counters = ApiCounters()

    def install(self, app: web.Application) -> None:
        """Add the routes and the auth/rate-limit middleware to APP."""
        app.middlewares.append(self.middleware)
        r = app.router
        r.add_post("/oauth/token", self.oauth_token)
        r.add_get("/api/v2/routing/queues", self.list_queues)
        r.add_get("/api/v2/routing/queues/{queue_id}", self.get_queue)
        r.add_get("/api/v2/routing/queues/{queue_id}/members", self.list_members)
        r.add_get("/api/v2/routing/queues/{queue_id}/users", self.list_members)
        r.add_post("/api/v2/analytics/queues/observations/query", self.observations_query)
        r.add_post("/api/v2/analytics/queues/aggregates/query", self.aggregates_query)
        r.add_post("/api/v2/analytics/routing/activity/query", self.routing_activity_query)
        r.add_get("/api/v2/users/presences/purecloud/bulk", self.bulk_presences)
        r.add_get("/api/v2/users/{user_id}/routingstatus", self.get_routing_status)
        r.add_get("/api/v2/users/{user_id}/presences/purecloud", self.get_presence)
        r.add_get("/api/v2/users/{user_id}", self.get_user)
        r.add_get("/api/v2/presence/definitions", self.list_presence_definitions)
        r.add_get("/api/v2/presencedefinitions", self.list_presence_definitions)
        r.add_get("/api/v2/notifications/channels", self.list_channels, allow_head=False)
        r.add_post("/api/v2/notifications/channels", self.create_channel)
        r.add_route("HEAD", "/api/v2/notifications/channels/{channel_id}", self.head_channel)
        r.add_delete("/api/v2/notifications/channels/{channel_id}", self.delete_channel)
        subscriptions = "/api/v2/notifications/channels/{channel_id}/subscriptions"
        r.add_get(subscriptions, self.get_subscriptions)
        r.add_put(subscriptions, self.put_subscriptions)
        r.add_post(subscriptions, self.post_subscriptions)
        r.add_delete(subscriptions, self.delete_subscriptions)
        r.add_get("/channels/{channel_id}", self.channel_socket)

    # -- middleware ---------------------------------------------------------

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Play unreachable, inject faults, authenticate and rate-limit ``/api/v2`` calls; shape every error."""
        if self.faults.unreachable() and not request.path.startswith("/simulator/"):
            # The operator's endpoints stay up, so an outage can be watched and ended.
            self.faults.refused += 1
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=503)  # never delivered: the connection is gone
        if request.path.startswith("/oauth/"):
            # Counted here, so refused and faulted requests count as attempts too.
            self.counters.token_requests += request.path == "/oauth/token"
            fault = self.faults.take_rest(request.path)
            if fault is not None:
                headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else None
                return self._oauth_error(fault.status, "injected_fault", "Injected fault", headers)
            return await handler(request)
        if not request.path.startswith("/api/v2/"):
            return await handler(request)
        self.counters.requests += 1
        fault = self.faults.take_rest(request.path)
        if fault is not None:
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else None
            return error_response(fault.status, "Injected fault", headers=headers)
        auth = request.headers.get("Authorization", "")
        token = bearer_token(request)
        client_id = self.tokens.client_of(token) if token is not None else None
        if token is None or client_id is None:
            self.counters.unauthorized += 1
            message = "Invalid login credentials." if auth else "Authentication required"
            return error_response(401, message, "bad.credentials" if auth else "authentication.required")
        request[CLIENT_ID] = client_id
        verdict = self.limiter.hit(token)
        headers = {
            "inin-ratelimit-allowed": str(verdict.limit),
            "inin-ratelimit-count": str(verdict.count),
            "inin-ratelimit-reset": str(verdict.reset),
        }
        if not verdict.allowed:
            self.counters.rate_limited += 1
            message = f"Rate limit exceeded the maximum. Retry the request in [{verdict.reset}] seconds"
            return error_response(429, message, headers=headers | {"Retry-After": str(verdict.reset)})
        try:
            response = await handler(request)
        except ApiError as exc:
            if exc.status == 400:
                self.counters.bad_requests += 1
            response = error_response(exc.status, exc.message, exc.code, exc.headers)
        except web.HTTPException as exc:
            response = error_response(exc.status, exc.reason)
        except Exception:
            log.exception("simulator: %s %s failed", request.method, request.path)
            response = error_response(500, "The simulator failed to handle the request")
        response.headers.update(headers)
        return response

    # -- OAuth --------------------------------------------------------------

    async def oauth_token(self, request: web.Request) -> web.Response:
        """Issue a token for client credentials (Basic auth, ``grant_type=client_credentials``)."""
        if self.faults.credentials_refused():
            return self._oauth_error(401, "invalid_client", "Invalid client credentials")
        client_id, client_secret = basic_credentials(request)
        form = await request.post()
        if client_id is None:
            # RFC 6749 also allows the credentials in the form body.
            client_id, client_secret = form.get("client_id"), form.get("client_secret")
        if not isinstance(client_id, str) or not isinstance(client_secret, str):
            return self._oauth_error(401, "invalid_client", "Client authentication is required")
        if not self.tokens.check_client(client_id, client_secret):
            return self._oauth_error(401, "invalid_client", "Invalid client credentials")
        grant = form.get("grant_type")
        if grant != "client_credentials":
            return self._oauth_error(400, "unsupported_grant_type", f"Unsupported grant type: {grant!s:.40}")
        token = self.tokens.issue(client_id)
        return web.json_response({"access_token": token, "token_type": "bearer", "expires_in": self.tokens.expires_in})

    def _oauth_error(self, status: int, error: str, description: str, headers: dict | None = None) -> web.Response:
        self.counters.unauthorized += status == 401
        self.counters.bad_requests += status == 400
        return web.json_response({"error": error, "error_description": description}, status=status, headers=headers)

    # -- routing ------------------------------------------------------------

    async def list_queues(self, request: web.Request) -> web.Response:
        """List queues a page at a time, with Genesys' paging fields."""
        page_size, page_number = _page_params(request, QUEUES_MAX_PAGE_SIZE)
        name = request.query.get("name")
        ids = {part for value in request.query.getall("id", []) for part in value.split(",") if part}
        queues = [
            q
            for q in self.model.queues.values()
            if (not name or q.name.lower().startswith(name.lower())) and (not ids or q.id in ids)
        ]
        total = len(queues)
        page_count = max(1, -(-total // page_size))
        chunk = queues[(page_number - 1) * page_size : page_number * page_size]

        filters = [("name", name)] if name else []
        filters += [("id", queue_id) for queue_id in sorted(ids)]

        def uri(number: int) -> str:
            return "/api/v2/routing/queues?" + urlencode([("pageSize", page_size), ("pageNumber", number), *filters])

        body: dict[str, Any] = {
            "entities": [payloads.queue_entity(q) for q in chunk],
            "pageSize": page_size,
            "pageNumber": page_number,
            "total": total,
            "pageCount": page_count,
            "firstUri": uri(1),
            "lastUri": uri(page_count),
            "selfUri": uri(page_number),
        }
        if page_number < page_count:
            body["nextUri"] = uri(page_number + 1)
        if page_number > 1:
            body["previousUri"] = uri(page_number - 1)
        return web.json_response(body)

    async def get_queue(self, request: web.Request) -> web.Response:
        """Return one queue."""
        queue = self.model.queues.get(request.match_info["queue_id"])
        if queue is None:
            raise ApiError(404, "Queue not found")
        return web.json_response(payloads.queue_entity(queue))

    async def list_members(self, request: web.Request) -> web.Response:
        """List a queue's members a page at a time (no totals; ``nextUri`` while more)."""
        queue_id = request.match_info["queue_id"]
        queue = self.model.queues.get(queue_id)
        if queue is None:
            raise ApiError(404, "Queue not found")
        page_size, page_number = _page_params(request, MEMBERS_MAX_PAGE_SIZE)
        expand = {part.strip() for value in request.query.getall("expand", []) for part in value.split(",")}
        members = sorted((self.model.agents[a] for a in queue.member_ids), key=lambda a: (a.name, a.id))
        chunk = members[(page_number - 1) * page_size : page_number * page_size]
        query = {"pageSize": page_size}
        if expand:
            query["expand"] = ",".join(sorted(expand))

        def uri(number: int) -> str:
            return f"/api/v2/routing/queues/{queue_id}/members?" + urlencode(query | {"pageNumber": number})

        body: dict[str, Any] = {
            "entities": [payloads.member_entity(a, expand) for a in chunk],
            "pageSize": page_size,
            "pageNumber": page_number,
            "firstUri": uri(1),
            "selfUri": uri(page_number),
        }
        if page_number * page_size < len(members):
            body["nextUri"] = uri(page_number + 1)
        if page_number > 1:
            body["previousUri"] = uri(page_number - 1)
        return web.json_response(body)

    # -- users --------------------------------------------------------------

    def _agent(self, request: web.Request) -> SimAgent:
        agent = self.model.agents.get(request.match_info["user_id"])
        if agent is None:
            raise ApiError(404, "User not found")
        return agent

    async def get_routing_status(self, request: web.Request) -> web.Response:
        """Return a user's routing status."""
        return web.json_response(payloads.routing_status(self._agent(request)))

    async def get_presence(self, request: web.Request) -> web.Response:
        """Return a user's presence (REST spelling)."""
        return web.json_response(payloads.user_presence(self._agent(request)))

    async def get_user(self, request: web.Request) -> web.Response:
        """Return a user, with presence and routing status when expanded."""
        agent = self._agent(request)
        expand = {part.strip() for value in request.query.getall("expand", []) for part in value.split(",")}
        body: dict[str, Any] = {
            "id": agent.id,
            "name": agent.name,
            "state": "active",
            "selfUri": f"/api/v2/users/{agent.id}",
        }
        if "presence" in expand:
            body["presence"] = payloads.user_presence(agent)
        if "routingStatus" in expand:
            body["routingStatus"] = payloads.routing_status(agent)
        return web.json_response(body)

    async def bulk_presences(self, request: web.Request) -> web.Response:
        """Return the presences of up to 50 users (``?id=a,b`` or repeated ``id``)."""
        ids = [part.strip() for value in request.query.getall("id", []) for part in value.split(",") if part.strip()]
        if len(ids) > MAX_BULK_PRESENCE_IDS:
            raise ApiError(400, f"At most {MAX_BULK_PRESENCE_IDS} user ids may be requested at once")
        agents = [self.model.agents[i] for i in dict.fromkeys(ids) if i in self.model.agents]
        return web.json_response([payloads.bulk_presence(a) for a in agents])

    async def list_presence_definitions(self, request: web.Request) -> web.Response:
        """List the system presence definitions (ids are the ``oUserPresences`` qualifiers)."""
        entities = payloads.presence_definitions()
        return web.json_response(
            {"entities": entities, "pageSize": len(entities), "pageNumber": 1, "total": len(entities)}
        )

    # -- analytics ----------------------------------------------------------

    async def observations_query(self, request: web.Request) -> web.Response:
        """Answer a queue observation query: grouped by queueId (user metrics) and queueId+mediaType."""
        body = await _json_body(request)
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
        body = await _json_body(request)
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
        body = await _json_body(request)
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

    # -- notification channels ------------------------------------------------

    def _channel(self, request: web.Request) -> Channel:
        channel = self.hub.channel(request.match_info["channel_id"], request[CLIENT_ID])
        if channel is None:
            raise ApiError(404, "Channel not found")
        return channel

    async def list_channels(self, request: web.Request) -> web.Response:
        """List the caller's live channels."""
        self.hub.sweep()
        owned = [c.as_json() for c in self.hub.channels.values() if c.client_id == request[CLIENT_ID]]
        return web.json_response({"entities": owned})

    async def create_channel(self, request: web.Request) -> web.Response:
        """Create a channel; past 20 per client the least recently used (idle first) is removed."""
        channel = self.hub.create_channel(request[CLIENT_ID], f"ws://{request.host}")
        return web.json_response(channel.as_json())

    async def head_channel(self, request: web.Request) -> web.Response:
        """Answer 200 if the channel still exists, else 404."""
        self._channel(request)
        return web.Response(status=200)

    async def delete_channel(self, request: web.Request) -> web.Response:
        """Remove a channel and close its socket."""
        self.hub.remove_channel(self._channel(request), code=1001, message="channel deleted")
        return web.Response(status=204)

    async def get_subscriptions(self, request: web.Request) -> web.Response:
        """List a channel's topics."""
        channel = self._channel(request)
        self.hub.touch(channel)
        return web.json_response({"entities": self.hub.topic_entities(channel)})

    async def put_subscriptions(self, request: web.Request) -> web.Response:
        """Replace a channel's topics."""
        return await self._subscribe(request, replace=True)

    async def post_subscriptions(self, request: web.Request) -> web.Response:
        """Add topics to a channel."""
        return await self._subscribe(request, replace=False)

    async def delete_subscriptions(self, request: web.Request) -> web.Response:
        """Remove every topic from a channel."""
        self.hub.unsubscribe_all(self._channel(request))
        return web.Response(status=200)

    async def _subscribe(self, request: web.Request, replace: bool) -> web.Response:
        channel = self._channel(request)
        body = await _json_body(request)
        if not isinstance(body, list) or not all(isinstance(item, dict) and "id" in item for item in body):
            raise ApiError(400, 'The body must be a list of {"id": "<topic>"}')
        ignore_errors = request.query.get("ignoreErrors", "false").lower() == "true"
        result = self.hub.subscribe(
            channel, [item["id"] for item in body], replace=replace, ignore_errors=ignore_errors
        )
        if result.status != 200:
            raise ApiError(result.status, result.message)
        return web.json_response({"entities": result.entities})

    # -- sockets --------------------------------------------------------------

    async def channel_socket(self, request: web.Request) -> web.StreamResponse:
        """Serve the notification socket of one channel (no auth: the channel id is the secret)."""
        channel = self.hub.channel(request.match_info["channel_id"])
        if channel is None:
            return error_response(404, "Channel not found")
        ws = web.WebSocketResponse(autoping=True, max_msg_size=1 << 20)
        await ws.prepare(request)
        session = SocketSession(ws, channel, self.hub.heartbeat_period, transport=request.transport)
        self.counters.sockets_opened += 1
        self.hub.attach(channel, session)
        session.start()
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self._client_frame(session, message.data)
                elif message.type == WSMsgType.BINARY:
                    self.counters.bad_frames += 1
        finally:
            self.hub.detach(channel, session)
            session.closing = True
            await session.stop()
        return ws

    def _client_frame(self, session: SocketSession, text: str) -> None:
        """Answer one text frame from a client: ping, or socket-level subscribe/unsubscribe."""
        try:
            frame = json.loads(text)
        except ValueError:
            self.counters.bad_frames += 1
            return
        if not isinstance(frame, dict):
            self.counters.bad_frames += 1
            return
        message = frame.get("message")
        if message == "ping":
            session.send(PONG)
            return
        if message not in ("subscribe", "unsubscribe"):
            self.counters.bad_frames += 1
            return
        reply: dict[str, Any] = {}
        if "correlationId" in frame:
            reply["correlationId"] = frame["correlationId"]
        channel = self.hub.channel(session.channel.id)
        requested = frame.get("topics")
        if channel is None:
            reply |= {"result": "404", "message": "Channel not found"}
        elif not isinstance(requested, list):
            self.counters.bad_frames += 1
            reply |= {"result": "400", "message": "topics must be a list"}
        elif message == "unsubscribe":
            keep = [t for t in channel.topics if t not in set(map(str, requested))]
            self.hub.subscribe(channel, keep, replace=True, ignore_errors=True)
            reply |= {"result": "200", "status": "unsubscribed"}
        else:
            result = self.hub.subscribe(channel, requested, replace=False, ignore_errors=False)
            if result.status == 200:
                reply |= {"result": "200", "status": "subscribed"}
            else:
                reply |= {"result": str(result.status), "message": result.message}
        session.send(json.dumps(reply))
