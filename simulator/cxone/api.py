"""The NICE CXone side of the simulator: sign-in, discovery and the Real-Time Data API.

Served on the SimulatorServer's one port beside the Genesys API, from the
same model, as ``docs/protocols/cxone.md`` describes the real thing:

- ``POST /auth/token``: the password grant with an access key (client
  credentials as Basic auth, URL-encoded, or in the form body) and the
  ``refresh_token`` grant; replies carry ``access_token``, ``expires_in``,
  ``refresh_token`` and an ``id_token`` JWT whose claims name the tenant.
- ``GET /.well-known/openid-configuration`` and
  ``GET /.well-known/cxone-configuration?tenantId=``. As at NICE, the
  ``api_endpoint`` is another origin than the sign-in's, served by this same
  server: ``http://localhost:<port>`` for a caller that signed in at
  ``http://127.0.0.1:<port>`` and the other way round (both name the
  loopback, so nothing else need listen, and a client that mixes the two
  up shows in ``counters.api_hosts``/``auth_hosts``). Any other address the
  caller used is answered with itself (nothing else is known to reach us).
- ``GET /inContactAPI/services/v{NN}.0/agents/states``, ``/skills/activity``
  and ``/contacts/active`` with a bearer token: ``updatedSince`` returns only
  what changed at or after it (304 when nothing did), ``lastPollTime`` is
  the server time, ``top``/``skip`` page with ``_links.next`` (absolute, or
  server-relative when told), and the reply shape is either today's or the
  older ``resultSet`` wrapper.

Errors are ``{"error", "errorDescription"}``. Faults come from the shared
``Faults`` (HTTP errors under ``/inContactAPI/`` or ``/auth/token``, the
whole-simulator refusal of credentials) and from this API's own switches
(token lifetime, reply shape, next-link form, Retry-After as an HTTP date,
redirects); ``control/cxone_faults.py`` names them all.

One extra beyond NICE's documentation: a contact that ended stays listed as
``EndContact`` for ``changes.keep_ended`` seconds (300 by default), so a
poller that last asked before the end hears of it; 0 turns that off, leaving
pollers only their full lists to notice ends.

``CxoneApi`` holds the switches and the middleware; its routes are its
parts ``sign_in.py`` and ``realtime.py``, replies are built by
``payloads.py`` and what changed when is kept by ``changes.py``.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from simulator.cxone.changes import ChangeLog
from simulator.cxone.errors import CxoneError, error_response
from simulator.cxone.realtime import RealtimeRoutes
from simulator.cxone.sign_in import CxoneSignIn, RefreshGrant
from simulator.faults import Faults
from simulator.model import ContactCentreModel
from simulator.tokens import TokenStore, bearer_token

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

API_PREFIX = "/inContactAPI/"
SHAPES = ("flat", "resultSet")
LINK_FORMS = ("absolute", "relative")
RETRY_AFTER_FORMS = ("seconds", "date")
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
_VERSION = re.compile(r"^v\d{1,3}\.\d{1,2}$")


@dataclass
class CxoneCounters:
    """What the CXone API saw."""

    token_requests: int = 0
    password_grants: int = 0
    refresh_grants: int = 0
    refused: int = 0
    requests: int = 0
    unauthorized: int = 0
    faulted: int = 0
    redirected: int = 0
    not_modified_by_list: dict[str, int] = field(default_factory=dict)  # "agentStates" → 304s answered
    api_hosts: dict[str, int] = field(default_factory=dict)  # Host header → real-time calls received
    auth_hosts: dict[str, int] = field(default_factory=dict)  # Host header → sign-in and discovery calls


@dataclass
class Redirect:
    """Answer the next REMAINING calls under PATH with STATUS and ``Location: LOCATION``."""

    status: int
    location: str
    path: str
    remaining: int


class CxoneApi(CxoneSignIn, RealtimeRoutes):
    """Serve CXone's sign-in, discovery and real-time calls from the model."""

    def __init__(
        self,
        model: ContactCentreModel,
        faults: Faults,
        *,
        client_id: str,
        client_secret: str,
        access_keys: dict[str, str],
        token_expires_in: int = 3600,
    ) -> None:
        self.model = model
        self.faults = faults
        self.access_keys = dict(access_keys)
        self.token_expires_in = token_expires_in
        self.clock: Callable[[], float] = time.time
        self.tokens = TokenStore({client_id: client_secret}, token_expires_in, self.clock)
        self.refresh_tokens: dict[str, RefreshGrant] = {}
        self.changes = ChangeLog(model, clock=self.clock)
        self.shape = "flat"
        self.link_form = "absolute"
        self.retry_after_form = "seconds"
        self.redirects: list[Redirect] = []
        self.counters = CxoneCounters()

    def install(self, app: web.Application) -> None:
        """Add the routes and the fault/auth middleware to APP."""
        app.middlewares.append(self.middleware)
        r = app.router
        r.add_post("/auth/token", self.auth_token)
        r.add_get("/.well-known/openid-configuration", self.openid_configuration)
        r.add_get("/.well-known/cxone-configuration", self.cxone_configuration)
        services = "/inContactAPI/services/{version}"
        r.add_get(f"{services}/agents/states", self.agent_states)
        r.add_get(f"{services}/skills/activity", self.skills_activity)
        r.add_get(f"{services}/contacts/active", self.contacts_active)

    # -- the operator's switches ------------------------------------------------

    def set_shape(self, shape: str) -> None:
        """Answer in SHAPE: ``flat`` (today's) or ``resultSet`` (older versions)."""
        if shape not in SHAPES:
            raise ValueError(f"shape must be one of {', '.join(SHAPES)}")
        self.shape = shape

    def set_link_form(self, form: str) -> None:
        """Write ``_links`` as FORM: ``absolute`` URLs (as CXone does) or ``relative`` (server-relative paths)."""
        if form not in LINK_FORMS:
            raise ValueError(f"form must be one of {', '.join(LINK_FORMS)}")
        self.link_form = form

    def set_retry_after_form(self, form: str) -> None:
        """Send an injected fault's Retry-After as FORM: ``seconds`` or an HTTP ``date`` (RFC 9110)."""
        if form not in RETRY_AFTER_FORMS:
            raise ValueError(f"form must be one of {', '.join(RETRY_AFTER_FORMS)}")
        self.retry_after_form = form

    def add_redirect(self, status: int, location: str, path: str = "/auth/token", count: int = 1) -> None:
        """Answer the next COUNT calls under PATH with a redirect to LOCATION."""
        if status not in REDIRECT_STATUSES:
            raise ValueError(f"status must be one of {', '.join(map(str, REDIRECT_STATUSES))}")
        if urlsplit(location).scheme not in ("http", "https") or not path.startswith("/") or count < 1:
            raise ValueError("give an http(s) location, a path starting with /, and a count of at least 1")
        self.redirects.append(Redirect(status, location, path, count))

    def revoke(self, *, refresh: bool) -> dict[str, int]:
        """Revoke every access token (and, with REFRESH, every refresh token); return how many."""
        revoked = {"access_tokens": self.tokens.revoke_all(), "refresh_tokens": 0}
        if refresh:
            revoked["refresh_tokens"] = len(self.refresh_tokens)
            self.refresh_tokens.clear()
        return revoked

    def clear_faults(self) -> None:
        """Undo this API's switches: today's shape and link form, no redirects, the configured token lifetime."""
        self.shape = "flat"
        self.link_form = "absolute"
        self.retry_after_form = "seconds"
        self.redirects.clear()
        self.tokens.set_lifetime(self.token_expires_in)

    def settings(self) -> dict[str, Any]:
        """Return this API's switches and counters (listed by ``GET /simulator/control``)."""
        return {
            "shape": self.shape,
            "link_form": self.link_form,
            "retry_after_form": self.retry_after_form,
            "redirects": [asdict(r) for r in self.redirects],
            "token_lifetime": self.tokens.expires_in,
            "ended_kept": len(self.changes.ended),
            "counters": asdict(self.counters),
        }

    # -- middleware --------------------------------------------------------------

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Inject faults on CXone paths, demand a bearer token under ``/inContactAPI/``, shape errors."""
        path = request.path
        if not (path.startswith(API_PREFIX) or path == "/auth/token" or path.startswith("/.well-known/")):
            return await handler(request)
        hosts = self.counters.api_hosts if path.startswith(API_PREFIX) else self.counters.auth_hosts
        hosts[request.host] = hosts.get(request.host, 0) + 1
        redirect = self._take_redirect(path)
        if redirect is not None:
            self.counters.redirected += 1
            return web.Response(status=redirect.status, headers={"Location": redirect.location})
        fault = self.faults.take_rest(path)
        if fault is not None:
            self.counters.faulted += 1
            headers = {"Retry-After": self._retry_after(fault.retry_after)} if fault.retry_after is not None else None
            return error_response(fault.status, "InjectedFault", "Injected fault", headers)
        try:
            if path.startswith(API_PREFIX):
                self.counters.requests += 1
                self._authenticate(request)
                if not _VERSION.match(request.match_info.get("version", "")):
                    raise CxoneError(404, "NotFound", "Unknown API version.")
            return await handler(request)
        except CxoneError as exc:
            return error_response(exc.status, exc.error, exc.description, exc.headers)
        except web.HTTPException:
            raise
        except Exception:
            log.exception("simulator: %s %s failed", request.method, path)
            return error_response(500, "InternalError", "The simulator failed to handle the request.")

    def _take_redirect(self, path: str) -> Redirect | None:
        for redirect in self.redirects:
            if path.startswith(redirect.path):
                redirect.remaining -= 1
                if redirect.remaining <= 0:
                    self.redirects.remove(redirect)
                return redirect
        return None

    def _retry_after(self, seconds: int) -> str:
        if self.retry_after_form == "date":
            # Whole seconds only, rounded up: the date never asks for less than SECONDS.
            moment = datetime.fromtimestamp(math.ceil(self.clock() + seconds), UTC)
            return format_datetime(moment, usegmt=True)
        return str(seconds)

    def _authenticate(self, request: web.Request) -> None:
        token = bearer_token(request)
        if token is None or self.tokens.client_of(token) is None:
            self.counters.unauthorized += 1
            raise CxoneError(401, "invalid_token", "The access token is missing, expired or revoked.")
