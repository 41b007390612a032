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
redirects); ``control.py`` names them all (its CXone block).

One extra beyond NICE's documentation: a contact that ended stays listed as
``EndContact`` for ``changes.keep_ended`` seconds (300 by default), so a
poller that last asked before the end hears of it; 0 turns that off, leaving
pollers only their full lists to notice ends.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from simulator.cxone_changes import ChangeLog
from simulator.cxone_payloads import (
    BUSINESS_UNIT_ID,
    MEDIA,
    active_contact,
    agent_state,
    agent_view,
    skill_activity,
)
from simulator.faults import Faults
from simulator.http_input import basic_credentials, int_param
from simulator.model import ContactCentreModel
from simulator.timefmt import iso, parse_iso
from simulator.tokens import TokenStore, bearer_token

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

TENANT_ID = "11ef0000-c0de-4a11-9000-f100f1e00001"
CLUSTER = "SIM1"
AREA = "na1"
API_PREFIX = "/inContactAPI/"
MAX_TOP = 10_000
REFRESH_LIFETIME = 7 * 86400
SHAPES = ("flat", "resultSet")
LINK_FORMS = ("absolute", "relative")
RETRY_AFTER_FORMS = ("seconds", "date")
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
# The two names of the loopback: a caller that signs in at one is sent to the other for the API.
LOOPBACK_TWINS = {"127.0.0.1": "localhost", "localhost": "127.0.0.1"}
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
class RefreshGrant:
    """One issued refresh token: whose it is and until when it works."""

    client_id: str
    access_key_id: str
    expires_at: float


@dataclass
class Redirect:
    """Answer the next REMAINING calls under PATH with STATUS and ``Location: LOCATION``."""

    status: int
    location: str
    path: str
    remaining: int


class CxoneError(Exception):
    """Stop handling a request and answer ``{"error", "errorDescription"}``."""

    def __init__(self, status: int, error: str, description: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description
        self.headers = headers or {}


def error_response(status: int, error: str, description: str, headers: dict[str, str] | None = None) -> web.Response:
    """Return CXone's error body."""
    return web.json_response({"error": error, "errorDescription": description}, status=status, headers=headers)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_id_token(claims: dict[str, Any]) -> str:
    """Return a JWT carrying CLAIMS (signed with nothing a client could check: clients do not check it)."""
    header = {"alg": "RS256", "typ": "JWT", "kid": "simulator"}
    parts = [_b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)]
    return ".".join([*parts, _b64url(secrets.token_bytes(64))])


class CxoneApi:
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

    # -- sign-in and discovery -----------------------------------------------------

    async def auth_token(self, request: web.Request) -> web.Response:
        """Issue tokens for the password grant (access key) or the refresh_token grant."""
        self.counters.token_requests += 1
        form = await request.post()
        # Each part of the Basic header is URL-encoded, as OAuth says (access key secrets may end in "=").
        client_id, client_secret = basic_credentials(request, url_encoded=True)
        if client_id is None:
            client_id, client_secret = form.get("client_id"), form.get("client_secret")
        if self.faults.credentials_refused():
            self.counters.refused += 1
            raise CxoneError(401, "invalid_client", "The credentials were refused.")
        if not isinstance(client_id, str) or not isinstance(client_secret, str):
            raise CxoneError(401, "invalid_client", "Client authentication is required.")
        if not self.tokens.check_client(client_id, client_secret):
            raise CxoneError(401, "invalid_client", "Invalid client credentials.")
        grant = form.get("grant_type")
        if grant == "password":
            username, password = form.get("username"), form.get("password")
            expected = self.access_keys.get(username) if isinstance(username, str) else None
            if (
                expected is None
                or not isinstance(password, str)
                or not secrets.compare_digest(expected.encode(), password.encode())
            ):
                raise CxoneError(400, "invalid_grant", "Invalid access key.")
            self.counters.password_grants += 1
            return self._issue(request, client_id, username)
        if grant == "refresh_token":
            value = form.get("refresh_token")
            issued = self.refresh_tokens.pop(value, None) if isinstance(value, str) else None
            if issued is None or issued.client_id != client_id or issued.expires_at <= self.clock():
                raise CxoneError(400, "invalid_grant", "The refresh token is invalid or expired.")
            self.counters.refresh_grants += 1
            return self._issue(request, client_id, issued.access_key_id)
        raise CxoneError(400, "unsupported_grant_type", f"Unsupported grant type: {grant!s:.40}")

    def _issue(self, request: web.Request, client_id: str, access_key_id: str) -> web.Response:
        now = self.clock()
        access = self.tokens.issue(client_id)
        refresh = secrets.token_urlsafe(32)
        self.refresh_tokens = {k: v for k, v in self.refresh_tokens.items() if v.expires_at > now}
        self.refresh_tokens[refresh] = RefreshGrant(client_id, access_key_id, now + REFRESH_LIFETIME)
        lifetime = self.tokens.expires_in
        claims = {
            "iss": _origin(request),
            "aud": client_id,
            "sub": f"user:{access_key_id}",
            "tenantId": TENANT_ID,
            "icBUId": BUSINESS_UNIT_ID,
            "icClusterId": CLUSTER,
            "area": AREA,
            "iat": int(now),
            "exp": int(now + lifetime),
        }
        return web.json_response(
            {
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": lifetime,
                "refresh_token": refresh,
                "id_token": make_id_token(claims),
            }
        )

    async def openid_configuration(self, request: web.Request) -> web.Response:
        """Return the OpenID configuration (issuer, token endpoint, client auth methods)."""
        origin = _origin(request)
        return web.json_response(
            {
                "issuer": origin,
                "token_endpoint": f"{origin}/auth/token",
                "authorization_endpoint": f"{origin}/auth/authorize",
                "jwks_uri": f"{origin}/auth/jwks",
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
                "grant_types_supported": ["password", "refresh_token", "authorization_code"],
                "response_types_supported": ["code"],
            }
        )

    async def cxone_configuration(self, request: web.Request) -> web.Response:
        """Return the tenant's endpoints; the API is this server under its other loopback name (see above)."""
        tenant = request.query.get("tenantId", "")
        if tenant != TENANT_ID:
            raise CxoneError(404, "not_found", "Unknown tenant.")
        origin = _origin(request)
        return web.json_response(
            {
                "api_endpoint": api_origin(request),
                "ui_endpoint": origin,
                "auth_endpoint": origin,
                "area": AREA,
                "cluster": CLUSTER,
                "domain": request.host,
                "tenantId": TENANT_ID,
            }
        )

    # -- the real-time calls -------------------------------------------------------

    async def agent_states(self, request: web.Request) -> web.StreamResponse:
        """``GET /agents/states``: every agent whose state changed at or after ``updatedSince``."""
        since, now = self._since(request), self.clock()
        model, changes = self.model, self.changes
        agents = sorted(model.agents.values(), key=lambda a: a.number)
        selected = [a for a in agents if changes.agent(a.id) >= since]

        def build(agent: Any) -> dict[str, Any]:
            return agent_state(model, agent, agent_view(agent), changes.agent(agent.id))

        return self._reply(request, "agentStates", selected, build, now)

    async def skills_activity(self, request: web.Request) -> web.StreamResponse:
        """``GET /skills/activity``: every skill whose figures changed at or after ``updatedSince``."""
        since, now = self._since(request), self.clock()
        media_type = int_param(request, "mediaTypeId", None, 0, _invalid)
        queues = sorted(self.model.queues.values(), key=lambda q: q.number)
        selected = [
            q
            for q in queues
            if self.changes.skill(q.id) >= since
            and (media_type is None or MEDIA.get(q.media_type, (0,))[0] == media_type)
        ]
        views = {agent.id: agent_view(agent) for agent in self.model.agents.values()} if selected else {}
        return self._reply(request, "skillActivity", selected, lambda q: skill_activity(q, views, now), now)

    async def contacts_active(self, request: web.Request) -> web.StreamResponse:
        """``GET /contacts/active``: live contacts changed at or after ``updatedSince``, and lately ended ones."""
        since, now = self._since(request), self.clock()
        skill_id = int_param(request, "skillId", None, 0, _invalid)
        campaign_id = int_param(request, "campaignId", None, 0, _invalid)
        agent_id = int_param(request, "agentId", None, 0, _invalid)
        model, changes = self.model, self.changes
        records = [
            active_contact(model, c, changes.contact(c.id), c.state)
            for c in model.contacts.values()
            if changes.contact(c.id) >= since
        ]
        # Ended contacts stay listed as EndContact for pollers that last asked before the end.
        records += changes.ended_since(since)
        records = [
            r
            for r in records
            if (skill_id is None or r["skillId"] == skill_id)
            and (campaign_id is None or r["campaignId"] == campaign_id)
            and (agent_id is None or r["agentId"] == agent_id)
        ]
        records.sort(key=lambda r: r["contactId"])
        return self._reply(
            request, "activeContacts", records, lambda r: r, now, extra={"businessUnitId": BUSINESS_UNIT_ID}
        )

    def _since(self, request: web.Request) -> float:
        raw = request.query.get("updatedSince")
        if raw is None or raw == "":
            return -math.inf
        try:
            return parse_iso(raw)
        except ValueError:
            raise CxoneError(400, "InvalidParameter", "updatedSince must be an ISO-8601 date and time.") from None

    def _reply(
        self,
        request: web.Request,
        root: str,
        selected: list[Any],
        build: Callable[[Any], dict[str, Any]],
        now: float,
        extra: dict[str, Any] | None = None,
    ) -> web.StreamResponse:
        """Answer one page of SELECTED (304 when nothing changed), in the current shape."""
        top = int_param(request, "top", MAX_TOP, 1, _invalid)
        skip = int_param(request, "skip", 0, 0, _invalid)
        top = min(top, MAX_TOP)
        total = len(selected)
        if total == 0:
            by_list = self.counters.not_modified_by_list
            by_list[root] = by_list.get(root, 0) + 1
            return web.Response(status=304)
        fields = [f for value in request.query.getall("fields", []) for f in value.split(",") if f.strip()]
        items = [build(item) for item in selected[skip : skip + top]]
        if fields:
            wanted = {f.strip() for f in fields}
            items = [{k: v for k, v in item.items() if k in wanted} for item in items]
        relative = self.link_form == "relative"
        body: dict[str, Any] = {
            "totalRecords": total,
            "_links": {
                "self": _page_url(request, skip, relative),
                "next": _page_url(request, skip + top, relative) if skip + top < total else None,
                "previous": _page_url(request, max(skip - top, 0), relative) if skip > 0 else None,
            },
            **(extra or {}),
            # Cut, not rounded: a lastPollTime later than the reply's own instant would make the next
            # updatedSince skip a change made in that millisecond.
            "lastPollTime": iso(now, floor=True),
            root: items,
        }
        if self.shape == "resultSet":
            body = {"resultSet": body}
        return web.json_response(body)


def _origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def api_origin(request: web.Request) -> str:
    """Return the API origin to name to a caller who reached the sign-in at REQUEST's host.

    The loopback's other name when it used one of them, with the same port;
    any other address as it is (nothing else is known to reach this server).
    """
    parts = urlsplit(_origin(request))
    twin = LOOPBACK_TWINS.get((parts.hostname or "").lower())
    if twin is None:
        return _origin(request)
    return f"{parts.scheme}://{twin}:{parts.port}" if parts.port else f"{parts.scheme}://{twin}"


def _page_url(request: web.Request, skip: int, relative: bool = False) -> str:
    query = [(k, v) for k, v in request.query.items() if k != "skip"] + [("skip", str(skip))]
    path = f"{request.path}?{urlencode(query)}"
    return path if relative else f"{_origin(request)}{path}"


def _invalid(message: str) -> CxoneError:
    return CxoneError(400, "InvalidParameter", f"{message}.")
