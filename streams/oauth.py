"""OAuth client-credentials tokens: cached, refreshed well before expiry, one refresh at a time.

The cache sits behind ``TokenCache`` so that several workers can later share
one token per client through Redis (with a lock) instead of each fetching its
own. Tokens and secrets are never logged.

Two ways to ask for a token are spoken: Genesys' (``<login base>/oauth/token``,
the client's credentials as HTTP Basic auth) and the plain RFC 6749 form the
generic feeds use (any token URL, ``client_id``, ``client_secret`` and
``scope`` in the form body): see ``TokenProvider``.

What a failed fetch means is the shared classification's
(``streams.link.failures``): refused credentials are ``AuthFailed`` (an
admin must act), anything a later fetch may mend is ``TokenUnavailable``,
during which a token that still works is handed out.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp

from streams import sanity
from streams.http_body import BodyTooLarge, read_body

# AuthFailed lives with the other failures; token users keep importing it from here too.
from streams.link.failures import AuthFailed, UpstreamError, Verdict, classify, refused
from streams.retry_after import parse_retry_after

log = logging.getLogger(__name__)

# Refresh at 80% of the lifetime or 5 minutes before expiry, whichever is sooner,
# but never in the first half of the lifetime (a 300 s token would otherwise be
# refreshed on every call).
REFRESH_SHARE = 0.8
REFRESH_BEFORE = 300.0
REFRESH_FLOOR_SHARE = 0.5
MAX_TOKEN_REPLY_BYTES = 256 * 1024  # a token reply is a few kilobytes; a JWT-heavy one a few dozen


class TokenUnavailable(UpstreamError):
    """No token could be had just now (network, 5xx, 429): worth retrying later."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message, retry_after=retry_after)


@dataclass(frozen=True)
class Token:
    """One access token and when to refresh and drop it (epoch seconds)."""

    value: str = field(repr=False)
    refresh_at: float
    expires_at: float


def token_for(value: str, expires_in: float, now: float) -> Token:
    """Return a Token obtained at NOW that lives EXPIRES_IN seconds."""
    lifetime = max(float(expires_in), 0.0)
    refresh_after = max(min(lifetime * REFRESH_SHARE, lifetime - REFRESH_BEFORE), lifetime * REFRESH_FLOOR_SHARE)
    return Token(value=value, refresh_at=now + refresh_after, expires_at=now + lifetime)


class TokenCache(Protocol):
    """Where tokens live between calls, keyed per OAuth client; ``lock`` makes refreshes single-flight."""

    async def get(self, key: str) -> Token | None:
        """Return the cached token for KEY, if any."""
        ...

    async def set(self, key: str, token: Token) -> None:
        """Store TOKEN under KEY."""
        ...

    async def discard(self, key: str, value: str) -> None:
        """Drop the token under KEY if it is still VALUE (a newer one is kept)."""
        ...

    def lock(self, key: str) -> AbstractAsyncContextManager[None]:
        """Return a context that only one refresher of KEY holds at a time."""
        ...


class MemoryTokenCache:
    """A per-process token cache; its locks serialise refreshes within one event loop."""

    def __init__(self) -> None:
        self._tokens: dict[str, Token] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(self, key: str) -> Token | None:
        """Return the cached token for KEY, if any."""
        return self._tokens.get(key)

    async def set(self, key: str, token: Token) -> None:
        """Store TOKEN under KEY."""
        self._tokens[key] = token

    async def discard(self, key: str, value: str) -> None:
        """Drop the token under KEY if it is still VALUE."""
        token = self._tokens.get(key)
        if token is not None and token.value == value:
            del self._tokens[key]

    @contextlib.asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[None]:
        """Hold the refresh lock of KEY."""
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            yield


def cache_key(token_url: str, client_id: str, scope: str = "") -> str:
    """Return the cache key of one OAuth client (and scope) at one token endpoint (no secret in it)."""
    # Without a scope the key is what it always was, so tokens cached before scopes existed stay valid.
    scoped = f"\n{scope}" if scope else ""
    digest = hashlib.sha256(f"{token_url}\n{client_id}{scoped}".encode()).hexdigest()[:32]
    return f"floorview:oauth:{digest}"


class CachedTokens(ABC):
    """Hand out one credential's bearer tokens from the cache, renewing them well before expiry, one renewal at
    a time (the cache's lock spans the fleet when the cache is Redis's).

    Subclasses say how a token is fetched (``_fetch``) and under which cache ``key``.
    """

    cache: TokenCache
    key: str
    fetched: int  # tokens this object fetched itself (a renewal that failed hands out the older one)
    on_refresh: Callable[[Token], None] | None  # told of every token this object fetched
    _clock: Callable[[], float]

    @abstractmethod
    async def _fetch(self) -> Token:
        """Fetch a new token from the vendor (raise AuthFailed or TokenUnavailable)."""

    async def token(self) -> str:
        """Return a token valid for a good while yet, fetching one only if needed (one fetch at a time)."""
        cached = await self.cache.get(self.key)
        if cached is not None and self._clock() < cached.refresh_at:
            return cached.value
        async with self.cache.lock(self.key):
            # Another caller may have refreshed while this one waited for the lock.
            cached = await self.cache.get(self.key)
            now = self._clock()
            if cached is not None and now < cached.refresh_at:
                return cached.value
            try:
                fresh = await self._fetch()
            except Exception as exc:
                if classify(exc) is Verdict.RETRY and cached is not None and now < cached.expires_at - 1.0:
                    # The old token still works; a refresh that failed early is no outage.
                    log.warning("token refresh for %s failed; using the current token until it expires", self)
                    return cached.value
                raise
            return await self._keep(fresh)

    async def _keep(self, fresh: Token) -> str:
        """Cache FRESH (a token this object fetched) and tell ``on_refresh``; return its value."""
        await self.cache.set(self.key, fresh)
        self.fetched += 1
        if self.on_refresh is not None:
            self.on_refresh(fresh)
        return fresh.value

    async def invalidate(self, value: str) -> None:
        """Forget token VALUE (the vendor answered 401 or revoked it); the next call fetches a new one."""
        await self.cache.discard(self.key, value)

    async def forget(self) -> None:
        """Forget whatever token is cached (the vendor said it was revoked)."""
        cached = await self.cache.get(self.key)
        if cached is not None:
            await self.cache.discard(self.key, cached.value)


class TokenProvider(CachedTokens):
    """Hand out bearer tokens for one OAuth client (client-credentials grant).

    By default it speaks Genesys: ``<login_base>/oauth/token`` with the
    credentials as HTTP Basic auth. Given ``token_url``, it posts to that URL
    as is, with ``client_id``, ``client_secret`` and (if any) ``scope`` in the
    form body, as RFC 6749 allows and the generic feeds expect.
    """

    def __init__(
        self,
        login_base: str,
        client_id: str,
        client_secret: str,
        *,
        session: aiohttp.ClientSession,
        cache: TokenCache | None = None,
        clock: Callable[[], float] = time.time,
        timeout: float = 30.0,
        on_refresh: Callable[[Token], None] | None = None,
        token_url: str | None = None,
        scope: str = "",
        max_reply_bytes: int = MAX_TOKEN_REPLY_BYTES,
    ) -> None:
        self.form_credentials = token_url is not None
        self.token_url = token_url if token_url is not None else f"{login_base.rstrip('/')}/oauth/token"
        self.scope = scope
        self.max_reply_bytes = max_reply_bytes
        self._client_id = client_id
        self._client_secret = client_secret
        self._session = session
        self.cache = cache if cache is not None else MemoryTokenCache()
        self._clock = clock
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self.key = cache_key(self.token_url, client_id, scope)
        self.requests = 0  # token requests sent (for tests and the health page)
        # Tokens this provider fetched successfully (a refresh that failed hands out the older one).
        self.fetched = 0
        # Told of every token this provider fetched (not of tokens another worker fetched into the cache).
        self.on_refresh = on_refresh

    def __repr__(self) -> str:
        return f"TokenProvider({self.token_url!r}, client_id={self._client_id!r})"

    async def _fetch(self) -> Token:
        self.requests += 1
        form = {"grant_type": "client_credentials"}
        headers: dict[str, str] = {}
        if self.form_credentials:
            form |= {"client_id": self._client_id, "client_secret": self._client_secret}
        else:
            headers["Authorization"] = aiohttp.encode_basic_auth(self._client_id, self._client_secret)
        if self.scope:
            form["scope"] = self.scope
        try:
            async with self._session.post(
                self.token_url,
                data=form,
                headers=headers,
                timeout=self._timeout,
                # A redirect would re-post the form, client secret and all, to wherever it points.
                allow_redirects=False,
            ) as response:
                status = response.status
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                try:
                    raw: bytes | None = await read_body(response, self.max_reply_bytes)
                except BodyTooLarge:
                    raw = None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TokenUnavailable(f"token endpoint unreachable: {type(exc).__name__}") from None
        if raw is None and status == 200:
            raise TokenUnavailable(f"token endpoint sent more than {self.max_reply_bytes} bytes")
        body = _json_or_none(raw)
        if refused(status, grant=True):
            error = body.get("error", "") if isinstance(body, dict) else ""
            raise AuthFailed(f"token request refused ({status} {error})".strip())
        if status != 200:
            raise TokenUnavailable(f"token endpoint answered {status}", retry_after=retry_after)
        if not isinstance(body, dict) or not isinstance(body.get("access_token"), str) or not body["access_token"]:
            raise TokenUnavailable("token endpoint sent no access_token")
        # 1e400 is infinity once decoded: a token "valid for ever" would never be renewed (refused);
        # a finite long one is taken as a day.
        expires_in = sanity.lifetime_s(body.get("expires_in"))
        if expires_in is None:
            raise TokenUnavailable("token endpoint sent no usable expires_in")
        log.info("obtained a token for %s valid %d s", self, expires_in)
        return token_for(body["access_token"], expires_in, self._clock())


def _json_or_none(raw: bytes | None) -> object:
    """Return the JSON value of RAW, or None when there is none (no body, too large, not JSON)."""
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
