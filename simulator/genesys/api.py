"""The Genesys Cloud side of the simulator as an aiohttp application.

OAuth client credentials at ``/oauth/token``, the REST API under ``/api/v2``
(bearer tokens, per-token rate limits with ``inin-ratelimit-*`` headers,
Genesys' error body on every 4xx/5xx), and the notification sockets at the
``connectUri`` each channel hands out. The contract is Genesys Cloud's
documented protocol, as summarised in ``docs/protocols/genesys.md``.

``GenesysApi`` holds the middleware (outage, faults, auth, rate limits,
error bodies) and is made of one part per family of routes: ``oauth.py``,
``queues_and_users.py``, ``analytics.py`` and ``notifications.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from simulator.faults import Faults
from simulator.genesys.analytics import AnalyticsRoutes
from simulator.genesys.channels import Hub
from simulator.genesys.errors import ApiError, error_response
from simulator.genesys.notifications import NotificationRoutes
from simulator.genesys.oauth import CLIENT_ID, GenesysOAuth
from simulator.genesys.queues_and_users import QueueAndUserRoutes
from simulator.model import ContactCentreModel
from simulator.tokens import RateLimiter, TokenStore, bearer_token

log = logging.getLogger(__name__)

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


class GenesysApi(GenesysOAuth, QueueAndUserRoutes, AnalyticsRoutes, NotificationRoutes):
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
