"""The shared OAuth token cache: one token per client for the whole fleet, kept in Redis.

Workers that each fetched their own token would stampede the vendor's token
endpoint after every deploy and hold tokens that disagree (a revocation seen
by one would not reach the others). Here a token lives in Redis, encrypted
with the field key like every other secret, and a Redis lock makes refreshes
single-flight across processes: the others wait and then read the fresh one.

While Redis is unreachable the cache falls back to this process's own copy
(and lock), so a Redis restart costs at most one extra token request per
worker, never a stream.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from redis.exceptions import RedisError

from streams import crypto
from streams.oauth import MemoryTokenCache, Token, TokenCache, TokenUnavailable

log = logging.getLogger(__name__)

LOCK_TIMEOUT = 60.0  # a refresher that died lets go after this long
LOCK_WAIT = 45.0  # longer than one token request may take, so waiters see the fresh token


class LockUnavailable(TokenUnavailable):
    """Another process held the refresh lock for too long."""


class RedisTokenCache(TokenCache):
    """Tokens under ``<key>`` (encrypted JSON, expiring with the token) and a lock under ``<key>:lock``."""

    def __init__(self, url: str) -> None:
        import redis.asyncio as redis

        self._client: Any = redis.from_url(url, decode_responses=True, socket_timeout=5, socket_connect_timeout=5)
        self._local = MemoryTokenCache()

    async def get(self, key: str) -> Token | None:
        """Return the cached token for KEY, if any (one that cannot be decrypted counts as none)."""
        try:
            raw = await self._client.get(key)
        except RedisError as exc:
            log.warning("token cache unreachable (%s); using this process's copy", type(exc).__name__)
            return await self._local.get(key)
        if not raw:
            return None
        try:
            data = json.loads(crypto.decrypt(raw))
            return Token(value=data["value"], refresh_at=data["refresh_at"], expires_at=data["expires_at"])
        except (crypto.SecretUnreadable, ValueError, KeyError, TypeError):
            return None

    async def set(self, key: str, token: Token) -> None:
        """Store TOKEN under KEY until it expires."""
        await self._local.set(key, token)
        data = {"value": token.value, "refresh_at": token.refresh_at, "expires_at": token.expires_at}
        ttl = max(1, int(token.expires_at - time.time()))
        with contextlib.suppress(RedisError):
            await self._client.set(key, crypto.encrypt(json.dumps(data)), ex=ttl)

    async def discard(self, key: str, value: str) -> None:
        """Drop the token under KEY if it is still VALUE (a newer one fetched meanwhile is kept)."""
        await self._local.discard(key, value)
        with contextlib.suppress(RedisError):
            current = await self.get(key)
            if current is not None and current.value == value:
                await self._client.delete(key)

    @contextlib.asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[None]:
        """Hold the fleet-wide refresh lock of KEY (this process's own while Redis is unreachable)."""
        lock = self._client.lock(f"{key}:lock", timeout=LOCK_TIMEOUT, blocking_timeout=LOCK_WAIT)
        try:
            acquired = await lock.acquire()
        except RedisError:
            async with self._local.lock(key):
                yield
            return
        if not acquired:
            raise LockUnavailable("another worker has been refreshing this token for too long")
        try:
            yield
        finally:
            with contextlib.suppress(RedisError):
                # The lock may have timed out meanwhile; that is no reason to fail the caller.
                await lock.release()

    async def close(self) -> None:
        """Close the Redis connection pool."""
        await self._client.aclose()
