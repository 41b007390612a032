"""CXone's sign-in and discovery: the password and refresh grants, the ``id_token``, and both configurations.

As at NICE, the API lives at another origin than the sign-in: this same
server under the loopback's other name (see ``api_origin``).
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from simulator.cxone.errors import CxoneError
from simulator.cxone.payloads import BUSINESS_UNIT_ID
from simulator.http_input import basic_credentials

TENANT_ID = "11ef0000-c0de-4a11-9000-f100f1e00001"
CLUSTER = "SIM1"
AREA = "na1"
REFRESH_LIFETIME = 7 * 86400
# The two names of the loopback: a caller that signs in at one is sent to the other for the API.
LOOPBACK_TWINS = {"127.0.0.1": "localhost", "localhost": "127.0.0.1"}


@dataclass
class RefreshGrant:
    """One issued refresh token: whose it is and until when it works."""

    client_id: str
    access_key_id: str
    expires_at: float


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_id_token(claims: dict[str, Any]) -> str:
    """Return a JWT carrying CLAIMS (signed with nothing a client could check: clients do not check it)."""
    header = {"alg": "RS256", "typ": "JWT", "kid": "simulator"}
    parts = [_b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)]
    return ".".join([*parts, _b64url(secrets.token_bytes(64))])


def request_origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def api_origin(request: web.Request) -> str:
    """Return the API origin to name to a caller who reached the sign-in at REQUEST's host.

    The loopback's other name when it used one of them, with the same port;
    any other address as it is (nothing else is known to reach this server).
    """
    parts = urlsplit(request_origin(request))
    twin = LOOPBACK_TWINS.get((parts.hostname or "").lower())
    if twin is None:
        return request_origin(request)
    return f"{parts.scheme}://{twin}:{parts.port}" if parts.port else f"{parts.scheme}://{twin}"


class CxoneSignIn:
    """Issue access, refresh and id tokens for an access key, and answer the two discovery documents.

    A part of ``CxoneApi``: it uses the API's tokens, refresh tokens, access keys, faults and counters.
    """

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
            "iss": request_origin(request),
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
        origin = request_origin(request)
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
        origin = request_origin(request)
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
