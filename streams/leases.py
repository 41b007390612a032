"""Leases: who in the fleet runs what, so each upstream source streams in exactly one worker.

A lease is a Redis key holding its owner's id with a short TTL. The owner
renews it while it works and deletes it on shutdown; if the owner dies, the
key lapses and another worker acquires it. Renewing and releasing check the
owner inside Redis (a Lua script), so a worker that lost its lease can never
extend or delete another worker's.

The embedded mode has one worker and no Redis: ``MemoryLeases`` grants
everything to its one owner and keeps the same interface.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from typing import Any, Protocol

# Extend the key only if we still own it: otherwise a worker that stalled past its TTL
# would silently extend the lease a successor now holds. A key that is gone (Redis restarted
# empty) is nobody's: take it back, so a restart does not stop every stream in the fleet.
_RENEW = """
local owner = redis.call('get', KEYS[1])
if owner == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
if not owner and redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


def new_owner_id() -> str:
    """Return an id for this worker that says where it runs (host and pid) and is unique."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Leases(Protocol):
    """Acquire, renew and release named leases for one owner."""

    owner: str

    async def acquire(self, name: str, ttl: float) -> bool:
        """Take lease NAME for TTL seconds if nobody holds it (or we do); return whether we hold it."""
        ...

    async def renew(self, name: str, ttl: float) -> bool:
        """Extend lease NAME by TTL seconds if we still hold it; return whether we do."""
        ...

    async def release(self, name: str) -> None:
        """Give lease NAME up if we hold it."""
        ...

    async def holder(self, name: str) -> str | None:
        """Return the owner of lease NAME, or None."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class MemoryLeases:
    """The embedded mode's leases: one worker, which holds everything it asks for."""

    def __init__(self, owner: str | None = None) -> None:
        self.owner = owner or new_owner_id()
        self._held: set[str] = set()

    async def acquire(self, name: str, ttl: float) -> bool:
        """Take lease NAME (always granted: there is no other worker)."""
        self._held.add(name)
        return True

    async def renew(self, name: str, ttl: float) -> bool:
        """Return whether lease NAME is held."""
        return name in self._held

    async def release(self, name: str) -> None:
        """Give lease NAME up."""
        self._held.discard(name)

    async def holder(self, name: str) -> str | None:
        """Return this owner if it holds NAME."""
        return self.owner if name in self._held else None

    async def close(self) -> None:
        """Nothing to release."""


class RedisLeases:
    """Leases as Redis keys ``<prefix>:lease:<name>`` holding the owner id, with a TTL."""

    def __init__(self, url: str, *, prefix: str = "floorview", owner: str | None = None) -> None:
        import redis.asyncio as redis

        self.owner = owner or new_owner_id()
        self._prefix = prefix
        # Short timeouts: a lease check must fail fast, so the worker can stop its streams in time.
        self._client: Any = redis.from_url(url, decode_responses=True, socket_timeout=3, socket_connect_timeout=3)
        self._renew = self._client.register_script(_RENEW)
        self._release = self._client.register_script(_RELEASE)

    def key(self, name: str) -> str:
        """Return the Redis key of lease NAME."""
        return f"{self._prefix}:lease:{name}"

    async def acquire(self, name: str, ttl: float) -> bool:
        """Take lease NAME for TTL seconds if it is free, or renew it if already ours."""
        if await self._client.set(self.key(name), self.owner, nx=True, px=_ms(ttl)):
            return True
        return await self.renew(name, ttl)

    async def renew(self, name: str, ttl: float) -> bool:
        """Extend lease NAME if it is still ours."""
        return bool(await self._renew(keys=[self.key(name)], args=[self.owner, _ms(ttl)]))

    async def release(self, name: str) -> None:
        """Delete lease NAME if it is still ours."""
        await self._release(keys=[self.key(name)], args=[self.owner])

    async def holder(self, name: str) -> str | None:
        """Return the owner of lease NAME, or None."""
        return await self._client.get(self.key(name))

    async def close(self) -> None:
        """Close the Redis connection pool."""
        await self._client.aclose()


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


class LeaseClock:
    """When our hold on the leases was last confirmed, so a worker cut off from Redis stops in time.

    A worker that cannot reach Redis cannot know whether its leases still
    stand; once more than ``SAFE_SHARE`` of the TTL passed since the last
    confirmation, it must stop its streams before a successor may start.
    """

    SAFE_SHARE = 0.6

    def __init__(self, ttl: float, clock=time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self.confirmed_at: float | None = None

    def confirm(self) -> None:
        """Note that Redis just confirmed our leases."""
        self.confirmed_at = self._clock()

    def expired(self) -> bool:
        """Return whether our leases may have lapsed (nothing confirmed recently enough)."""
        return self.confirmed_at is None or self._clock() - self.confirmed_at > self.ttl * self.SAFE_SHARE
