"""The snapshot store: each board's current rows and ``seq``, so a viewer that
connects (or reconnects) gets the full picture without asking the worker.

Production keeps a Redis hash per board (rows) beside a small meta hash
(epoch, seq, times, health), written by one script so a reader never sees
rows from one ``seq`` with the meta of another. The embedded mode keeps the
same shape in this process.

A write that is not a reset applies only on top of the writer's own epoch.
Redis may have restarted empty since the last write (or lost the keys some
other way); applying a delta to nothing would leave a board showing only the
rows that changed since. The write then reports that it did nothing, and the
publisher writes the board again in full.
"""

from __future__ import annotations

import asyncio
import json
import threading
import weakref
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings

# KEYS: rows hash, meta hash. ARGV: reset ("1"/"0"), epoch, seq, server_time, live_at, health,
# the number of removed keys, the removed keys, then key/row pairs. Returns 1 if written, 0 if refused.
# Rows go in slices: Lua's unpack() has a stack limit a big board's reset would exceed.
WRITE_SCRIPT = """
local reset = ARGV[1] == '1'
if not reset and redis.call('HGET', KEYS[2], 'epoch') ~= ARGV[2] then
  return 0
end
if reset then
  redis.call('DEL', KEYS[1])
end
local slice = 1000
local removed_end = 7 + tonumber(ARGV[7])
for first = 8, removed_end, slice do
  redis.call('HDEL', KEYS[1], unpack(ARGV, first, math.min(first + slice - 1, removed_end)))
end
for first = removed_end + 1, #ARGV, slice do
  redis.call('HSET', KEYS[1], unpack(ARGV, first, math.min(first + slice - 1, #ARGV)))
end
redis.call('HSET', KEYS[2], 'epoch', ARGV[2], 'seq', ARGV[3], 'server_time', ARGV[4],
  'live_at', ARGV[5], 'health', ARGV[6])
return 1
"""


@dataclass
class BoardSnapshot:
    """A board's rows as of ``seq`` in ``epoch``."""

    epoch: str
    seq: int
    rows: dict[str, dict] = field(default_factory=dict)
    server_time: float = 0.0
    live_at: float | None = None
    health: dict = field(default_factory=dict)


class SnapshotStore(ABC):
    """Where boards' current rows live; the base of the Redis and in-process stores."""

    @abstractmethod
    async def read(self, board_id: int) -> BoardSnapshot | None:
        """Return the board's snapshot, or None if the worker has written none."""

    @abstractmethod
    async def write(
        self,
        board_id: int,
        *,
        epoch: str,
        seq: int,
        upserts: dict[str, dict],
        removed: Iterable[str],
        server_time: float,
        live_at: float | None,
        health: dict,
        reset: bool = False,
    ) -> bool:
        """Store changed rows and the new meta; with RESET, drop every other row first.

        Return False, having written nothing, when it is not a RESET and the store does not hold
        this EPOCH's picture of the board: the caller must write the board again with RESET.
        """

    @abstractmethod
    async def delete(self, board_id: int) -> None:
        """Forget a board (it was deleted)."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections."""


class MemorySnapshotStore(SnapshotStore):
    """The embedded mode's store: plain dicts in this process."""

    def __init__(self) -> None:
        self._boards: dict[int, BoardSnapshot] = {}

    async def read(self, board_id: int) -> BoardSnapshot | None:
        snap = self._boards.get(board_id)
        if snap is None:
            return None
        # A copy, so a consumer filtering it can never disturb the store.
        return BoardSnapshot(snap.epoch, snap.seq, dict(snap.rows), snap.server_time, snap.live_at, dict(snap.health))

    async def write(self, board_id, *, epoch, seq, upserts, removed, server_time, live_at, health, reset=False):
        snap = self._boards.get(board_id)
        if not reset and (snap is None or snap.epoch != epoch):
            return False
        if reset:
            snap = self._boards[board_id] = BoardSnapshot(epoch=epoch, seq=seq)
        for key in removed:
            snap.rows.pop(key, None)
        snap.rows.update(upserts)
        snap.epoch, snap.seq, snap.server_time, snap.live_at, snap.health = epoch, seq, server_time, live_at, health
        return True

    async def delete(self, board_id: int) -> None:
        self._boards.pop(board_id, None)

    async def close(self) -> None:
        """Keep the rows: the embedded mode's viewers still read them."""


class RedisSnapshotStore(SnapshotStore):
    """The production store: ``<prefix>:board:<id>:rows`` (hash key → row JSON) and ``:meta``."""

    def __init__(self, url: str, prefix: str = "floorview") -> None:
        import redis.asyncio as redis

        self._url = url
        self._prefix = prefix
        self._redis_module = redis
        # One client per event loop: redis.asyncio connections belong to the loop that opened them.
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()
        self._scripts: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Any]] = (
            weakref.WeakKeyDictionary()
        )

    def _client(self):
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = self._redis_module.from_url(
                self._url, decode_responses=True, health_check_interval=10, socket_connect_timeout=5
            )
            self._clients[loop] = client
        return client

    def _script(self, source: str) -> Any:
        # redis-py's Script falls back from EVALSHA to EVAL, so a restarted server's empty script cache is fine.
        loop = asyncio.get_running_loop()
        scripts = self._scripts.setdefault(loop, {})
        if source not in scripts:
            scripts[source] = self._client().register_script(source)
        return scripts[source]

    def _keys(self, board_id: int) -> list[str]:
        base = f"{self._prefix}:board:{board_id}"
        return [f"{base}:rows", f"{base}:meta"]

    async def _once_more_after_a_restart(self, operation: Callable[[], Awaitable[Any]]) -> Any:
        # After Redis restarts, every idle pooled connection is dead, and each fails once when next
        # used. Both operations here are idempotent: drop the idle ones and try once more.
        try:
            return await operation()
        except self._redis_module.ConnectionError:
            await self._client().connection_pool.disconnect(inuse_connections=False)
            return await operation()

    async def read(self, board_id: int) -> BoardSnapshot | None:
        rows_key, meta_key = self._keys(board_id)

        async def read_both() -> list:
            async with self._client().pipeline(transaction=True) as pipe:
                return await pipe.hgetall(meta_key).hgetall(rows_key).execute()

        meta, rows = await self._once_more_after_a_restart(read_both)
        if not meta:
            return None
        return BoardSnapshot(
            epoch=meta["epoch"],
            seq=int(meta["seq"]),
            rows={key: json.loads(value) for key, value in rows.items()},
            server_time=float(meta.get("server_time") or 0),
            live_at=float(meta["live_at"]) if meta.get("live_at") else None,
            health=json.loads(meta.get("health") or "{}"),
        )

    async def write(self, board_id, *, epoch, seq, upserts, removed, server_time, live_at, health, reset=False):
        removed = list(removed)
        args: list[Any] = [
            "1" if reset else "0",
            epoch,
            seq,
            repr(server_time),
            "" if live_at is None else repr(live_at),
            json.dumps(health),
            len(removed),
            *removed,
        ]
        for key, row in upserts.items():
            args += (key, json.dumps(row, separators=(",", ":")))
        script, keys = self._script(WRITE_SCRIPT), self._keys(board_id)
        written = await self._once_more_after_a_restart(lambda: script(keys=keys, args=args))
        return bool(written)

    async def delete(self, board_id: int) -> None:
        await self._client().delete(*self._keys(board_id))

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        client = self._clients.pop(loop, None)
        if client is not None:
            self._scripts.pop(loop, None)
            await client.aclose()


_store: SnapshotStore | None = None
_store_lock = threading.Lock()


def get_snapshot_store() -> SnapshotStore:
    """Return the process-wide store: Redis when REDIS_URL is set, else in-process."""
    global _store
    with _store_lock:
        if _store is None:
            if settings.REDIS_URL:
                _store = RedisSnapshotStore(settings.REDIS_URL, prefix=settings.REDIS_PREFIX)
            else:
                _store = MemorySnapshotStore()
        return _store


def reset_snapshot_store() -> None:
    """Forget the process-wide store (tests switch settings)."""
    global _store
    with _store_lock:
        _store = None


def read_snapshot_sync(board_id: int) -> BoardSnapshot | None:
    """Return a board's snapshot from synchronous code (views)."""
    return async_to_sync(get_snapshot_store().read)(board_id)
