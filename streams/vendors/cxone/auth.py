"""CXone sign-in: the password grant with an access key, refresh before expiry, and API discovery.

- ``POST <login>/auth/token`` (or the ``token_endpoint`` the OpenID
  configuration names on the same host) with the application's client id
  and secret as Basic auth, each URL-encoded first, and
  ``grant_type=password&username=<access key id>&password=<access key secret>``
  in the form (URL-encoded too: access keys may contain ``=``).
- Tokens are refreshed well before expiry with the ``refresh_token`` grant;
  a refused refresh falls back to the password grant.
- Discovery: the ``id_token``'s claims name the tenant, and
  ``<login>/.well-known/cxone-configuration?tenantId=`` names its API host.

Tokens sit in a ``TokenCache`` (shared through Redis in production), keyed
by a digest of the token URL, client id and access key id. The refresh token
and the id_token claims stay in this process: a token another worker fetched
can be used, but this process signs in once itself before it discovers.

400/401/403 from the token endpoint are ``AuthFailed`` (an admin must act);
429, 5xx and network trouble are ``TokenUnavailable`` with the server's
Retry-After (seconds or an HTTP date). No secret or token ever reaches a log
or an error text: logs name the access key by a short digest only.

No request here follows a redirect: on a 307 or 308 the HTTP client would
send the form (the access key's secret) again to wherever the reply points.
A redirect is an error that names the status, for an admin to look into.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from base64 import b64encode
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp

from streams import sanity
from streams.http_body import BodyTooLarge, read_body
from streams.link.failures import AuthFailed, UpstreamError, refused
from streams.log_safe import safe_text
from streams.oauth import CachedTokens, MemoryTokenCache, Token, TokenCache, TokenUnavailable, token_for
from streams.origins import origin
from streams.retry_after import parse_retry_after
from streams.vendors.cxone.values import ParseError, jwt_claims

log = logging.getLogger(__name__)

MAX_DISCOVERY_BYTES = 256 * 1024
MAX_TOKEN_REPLY_BYTES = 256 * 1024  # a token reply is a few kilobytes (the id_token is the bulk)


class DiscoveryError(UpstreamError):
    """The tenant's API could not be found (yet); worth retrying later."""

    def __init__(self, message: str, retry_after: float | None = None, status: int | None = None) -> None:
        # Never 401/403: the loop must not take a discovery hiccup for refused credentials.
        super().__init__(message, status, retry_after)


def cache_key(token_url: str, client_id: str, access_key_id: str) -> str:
    """Return the token cache key of one application and access key at one token endpoint (no secret in it)."""
    digest = hashlib.sha256(f"{token_url}\n{client_id}\n{access_key_id}".encode()).hexdigest()[:32]
    return f"floorview:cxone:{digest}"


def basic_auth(client_id: str, client_secret: str) -> str:
    """Return the Basic header of the client's credentials, each URL-encoded first (RFC 6749 §2.3.1)."""
    pair = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}"
    return "Basic " + b64encode(pair.encode()).decode()


class CxoneAuth(CachedTokens):
    """Hand out CXone bearer tokens for one application and access key, and find the tenant's API."""

    def __init__(
        self,
        login_base: str,
        client_id: str,
        client_secret: str,
        access_key_id: str,
        access_key_secret: str,
        *,
        session: aiohttp.ClientSession,
        cache: TokenCache | None = None,
        clock: Callable[[], float] = time.time,
        timeout: float = 30.0,
        on_refresh: Callable[[Token], None] | None = None,
        max_reply_bytes: int = MAX_TOKEN_REPLY_BYTES,
    ) -> None:
        self.login_base = login_base.rstrip("/")
        self.token_url = f"{self.login_base}/auth/token"
        self._client_id = client_id
        self._client_secret = client_secret
        self._access_key_id = access_key_id
        self._access_key_secret = access_key_secret
        self._session = session
        self.cache = cache if cache is not None else MemoryTokenCache()
        self._clock = clock
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self.on_refresh = on_refresh
        self.fetched = 0
        self.max_reply_bytes = max_reply_bytes
        self._refresh_token: str | None = None
        self.claims: dict[str, Any] | None = None  # of the last id_token this process received
        self.requests = 0  # token requests sent
        self.password_grants = 0
        self.refresh_grants = 0

    def __repr__(self) -> str:
        # Logs name the access key by a digest: enough to tell two keys apart, nothing an attacker can use.
        digest = hashlib.sha256(self._access_key_id.encode()).hexdigest()[:8]
        return f"CxoneAuth({self.login_base!r}, access key #{digest})"

    @property
    def key(self) -> str:
        """Return the token cache key (it follows the token URL discovery settles on)."""
        return cache_key(self.token_url, self._client_id, self._access_key_id)

    # -- tokens ------------------------------------------------------------------------

    async def sign_in(self) -> str:
        """Sign in afresh with the access key (password grant) and return the token; learns the id_token."""
        async with self.cache.lock(self.key):
            return await self._keep(await self._password_grant())

    async def _fetch(self) -> Token:
        """Renew with the refresh token if this process holds one, else (or if it is refused) sign in."""
        refresh = self._refresh_token
        if refresh is not None:
            self._refresh_token = None  # used once: the reply brings the next one
            try:
                return await self._grant({"grant_type": "refresh_token", "refresh_token": refresh}, "refresh")
            except AuthFailed:
                log.info("%s: the refresh token was refused; signing in with the access key", self)
        return await self._password_grant()

    async def _password_grant(self) -> Token:
        form = {"grant_type": "password", "username": self._access_key_id, "password": self._access_key_secret}
        return await self._grant(form, "password")

    async def _grant(self, form: dict[str, str], kind: str) -> Token:
        self.requests += 1
        if kind == "refresh":
            self.refresh_grants += 1
        else:
            self.password_grants += 1
        headers = {"Authorization": basic_auth(self._client_id, self._client_secret), "Accept": "application/json"}
        try:
            async with self._session.post(
                self.token_url, data=form, headers=headers, timeout=self._timeout, allow_redirects=False
            ) as reply:
                status = reply.status
                retry_after = parse_retry_after(reply.headers.get("Retry-After"))
                try:
                    raw: bytes | None = await read_body(reply, self.max_reply_bytes)
                except BodyTooLarge:
                    raw = None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TokenUnavailable(f"CXone's token endpoint is unreachable: {type(exc).__name__}") from None
        if _is_redirect(status):
            # Never followed (see the module's notes); a wrong sign-in address is for an admin to fix.
            raise AuthFailed(f"CXone's token endpoint answered {status}, a redirect: not followed (check the address)")
        too_large = raw is None
        body = None if raw is None else _json_or_none(raw)
        if refused(status, grant=True):
            raise AuthFailed(f"CXone refused the {kind} grant ({status} {error_code(body)})".strip())
        if status != 200:
            raise TokenUnavailable(f"CXone's token endpoint answered {status}", retry_after=retry_after)
        if too_large:
            raise TokenUnavailable(f"CXone's token endpoint sent more than {self.max_reply_bytes} bytes")
        if not isinstance(body, dict) or not isinstance(body.get("access_token"), str) or not body["access_token"]:
            raise TokenUnavailable("CXone's token endpoint sent no access_token")
        # 1e400 is infinity once decoded: a token "valid for ever" would never be renewed (refused);
        # a finite long one is taken as a day.
        expires_in = sanity.lifetime_s(body.get("expires_in"))
        if expires_in is None:
            raise TokenUnavailable("CXone's token endpoint sent no usable expires_in")
        refresh = body.get("refresh_token")
        self._refresh_token = refresh if isinstance(refresh, str) and refresh else None
        if body.get("id_token") is not None:
            try:
                # Read without checking the signature: it came straight from the token endpoint over TLS
                # in reply to our own credentials, and only names the tenant to look up (see jwt_claims).
                self.claims = jwt_claims(body["id_token"])
            except ParseError as exc:
                log.warning("%s: the id_token is unusable (%s)", self, safe_text(exc, 200))
        log.info("%s: obtained a token (%s grant) valid %d s", self, kind, expires_in)
        return token_for(body["access_token"], expires_in, self._clock())

    # -- discovery -----------------------------------------------------------------------

    async def discover(self) -> str:
        """Return the tenant's API endpoint (e.g. ``https://api-na1.niceincontact.com``), signing in on the way."""
        config = await self._well_known("openid-configuration", None, required=False)
        endpoint = config.get("token_endpoint") if isinstance(config, dict) else None
        if isinstance(endpoint, str) and origin(endpoint) == origin(self.login_base):
            self.token_url = endpoint
        elif endpoint is not None:
            # Credentials go nowhere but the host the admin configured.
            log.warning("%s: ignoring a token_endpoint on another host", self)
        if self.claims is None:
            # The tenant is named only in an id_token, which a token from the shared cache lacks.
            await self.sign_in()
        else:
            await self.token()
        tenant = (self.claims or {}).get("tenantId")
        if not isinstance(tenant, str) or not tenant.strip():
            raise DiscoveryError("the id_token names no tenantId")
        cxone = await self._well_known("cxone-configuration", {"tenantId": tenant.strip()}, required=True)
        api = cxone.get("api_endpoint") if isinstance(cxone, dict) else None
        if not isinstance(api, str) or not _acceptable_api(api, self.login_base):
            raise DiscoveryError("cxone-configuration names no usable api_endpoint")
        return api.rstrip("/")

    async def _well_known(self, name: str, params: dict[str, str] | None, *, required: bool) -> Any:
        url = f"{self.login_base}/.well-known/{name}"
        try:
            async with self._session.get(url, params=params, timeout=self._timeout, allow_redirects=False) as reply:
                status = reply.status
                retry_after = parse_retry_after(reply.headers.get("Retry-After"))
                try:
                    raw: bytes | None = await read_body(reply, MAX_DISCOVERY_BYTES)
                except BodyTooLarge:
                    raw = None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DiscoveryError(f"{name} is unreachable: {type(exc).__name__}") from None
        if _is_redirect(status):
            detail = f"{name} answered {status}, a redirect: not followed (check the address)"
            if not required:
                log.warning("%s: %s", self, detail)
                return None
            raise DiscoveryError(detail, status=status)
        if status == 429 or status >= 500:
            raise DiscoveryError(f"{name} answered {status}", retry_after=retry_after, status=status)
        if status != 200:
            if not required:
                return None
            raise DiscoveryError(f"{name} answered {status}", status=status if status not in (401, 403) else None)
        if raw is None:
            raise DiscoveryError(f"{name} is too large")
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            if not required:
                return None
            raise DiscoveryError(f"{name} is not JSON") from None


def error_code(body: Any) -> str:
    """Return the ``error`` code of a CXone error body (``{"error", "errorDescription"}``), or ""."""
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return body["error"][:60]
    return ""


def _is_redirect(status: int) -> bool:
    return 300 <= status < 400 and status != 304


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


def _acceptable_api(url: str, login_base: str) -> bool:
    """Return whether URL may receive our bearer tokens: HTTPS, or the login's own scheme (the simulator)."""
    parts = urlsplit(url)
    return bool(parts.netloc) and (parts.scheme == "https" or parts.scheme == urlsplit(login_base).scheme)
