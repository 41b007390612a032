"""Production's hook queue: a Redis Stream per source under ``REDIS_PREFIX``, read through a consumer group.

One Lua script checks the backlog, marks the ids (``SET NX EX``) and adds
the entry, so a refused delivery marks nothing and its retry is not
mistaken for a duplicate. The reader acknowledges (``XACK``, then ``XDEL``)
only what the connector handled, and a new reader first claims whatever an
earlier one left pending (``XAUTOCLAIM``): records survive a worker
handover. The length is bounded (``MAXLEN ~``), but a full queue refuses new
deliveries rather than trimming unread ones.

The key names (``<prefix>:hook:{<source>}:stream`` and ``...:seen:<id>``)
and the group's name are what queued deliveries are found by: changing them
would strand what a rolling deploy leaves queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections import deque
from typing import Any

from streams.hooks.queue import (
    DEFAULT_BACKLOG,
    SEEN_TTL,
    HookItem,
    HookQueue,
    HookQueueFull,
    HookQueueUnavailable,
    HookReader,
    Offered,
    seen_key,
)
from streams.link.failures import LinkLost

log = logging.getLogger(__name__)

GROUP = "workers"  # the consumer group every worker reads through
READ_COUNT = 100  # entries per read
READ_BLOCK = 2.0  # seconds a read waits for new entries
CLAIM_IDLE = 60.0  # entries pending this long with another reader are claimed while streaming
CLAIM_EVERY = 30.0  # how often a reader looks for such entries


# KEYS[1]: the stream; KEYS[2..]: one "seen" key per keyed item, in order.
# ARGV: ttl, backlog, item count, then per item a flag ("1": keyed) and its JSON text.
# Returns {queued, duplicates}, or {-1, 0} when the backlog is full (nothing marked, nothing added).
OFFER_SCRIPT = """
local ttl, backlog, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
if redis.call('XLEN', KEYS[1]) >= backlog then
  return {-1, 0}
end
local texts, duplicates, k = {}, 0, 2
for i = 1, n do
  local text = ARGV[3 + 2 * i]
  if ARGV[2 + 2 * i] == '1' then
    if redis.call('SET', KEYS[k], '1', 'NX', 'EX', ttl) then
      texts[#texts + 1] = text
    else
      duplicates = duplicates + 1
    end
    k = k + 1
  else
    texts[#texts + 1] = text
  end
end
if #texts > 0 then
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', backlog, '*', 'items', '[' .. table.concat(texts, ',') .. ']')
end
return {#texts, duplicates}
"""


class RedisHookQueue(HookQueue):
    """Production's queue: ``<prefix>:hook:{<source>}:stream`` and ``...:seen:<id>`` keys in Redis."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "floorview",
        backlog: int = DEFAULT_BACKLOG,
        seen_ttl: int = SEEN_TTL,
        read_block: float = READ_BLOCK,
        claim_idle: float = CLAIM_IDLE,
        claim_every: float = CLAIM_EVERY,
    ) -> None:
        import redis.asyncio as redis

        self._redis = redis
        self.url = url
        self.prefix = prefix
        self.backlog = backlog
        self.seen_ttl = seen_ttl
        self.read_block = read_block
        self.claim_idle = claim_idle
        self.claim_every = claim_every
        # One client per event loop: redis.asyncio connections belong to the loop that opened them.
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()
        self._scripts: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()

    def _base(self, source: str) -> str:
        # The braces make a Redis Cluster keep a source's stream and ids in one slot (one script touches both).
        return f"{self.prefix}:hook:{{{source}}}"

    def stream_key(self, source: str) -> str:
        """Return the key of SOURCE's stream."""
        return f"{self._base(source)}:stream"

    def client(self) -> Any:
        """Return this event loop's client (bytes replies)."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            # Reads block for READ_BLOCK: the socket must wait longer than that.
            timeout = max(10.0, self.read_block * 3)
            client = self._redis.from_url(
                self.url, socket_timeout=timeout, socket_connect_timeout=5, health_check_interval=10
            )
            self._clients[loop] = client
        return client

    def _offer_script(self) -> Any:
        loop = asyncio.get_running_loop()
        script = self._scripts.get(loop)
        if script is None:
            script = self._scripts[loop] = self.client().register_script(OFFER_SCRIPT)
        return script

    async def offer(self, source: str, items: list[HookItem]) -> Offered:
        """Check the backlog, mark the new ids and add one entry, in one atomic script."""
        base = self._base(source)
        keys = [self.stream_key(source)]
        args: list[Any] = [self.seen_ttl, self.backlog, len(items)]
        for item in items:
            if item.key is not None:
                keys.append(f"{base}:seen:{seen_key(item.key)}")
            args += ("1" if item.key is not None else "0", item.text)
        try:
            try:
                reply = await self._offer_script()(keys=keys, args=args)
            except self._redis.ConnectionError:
                # After a Redis restart every idle pooled connection fails once. Running the script
                # again is safe: had it run, its ids are marked and the retry queues nothing twice.
                await self.client().connection_pool.disconnect(inuse_connections=False)
                reply = await self._offer_script()(keys=keys, args=args)
        except (self._redis.RedisError, OSError) as exc:
            raise HookQueueUnavailable(f"the queue is unreachable ({type(exc).__name__})") from None
        queued, duplicates = int(reply[0]), int(reply[1])
        if queued < 0:
            raise HookQueueFull(f"{self.backlog} deliveries are waiting")
        return Offered(queued, duplicates)

    def reader(self, source: str, consumer: str) -> RedisHookReader:
        """Return a reader in the consumer group; it claims what earlier readers left pending."""
        return RedisHookReader(self, source, consumer)

    async def backlog_of(self, source: str) -> int:
        """Return how many deliveries wait for SOURCE (read or not, unacknowledged)."""
        return int(await self.client().xlen(self.stream_key(source)))

    async def close(self) -> None:
        """Close this loop's client."""
        loop = asyncio.get_running_loop()
        client = self._clients.pop(loop, None)
        self._scripts.pop(loop, None)
        if client is not None:
            await client.aclose()


class RedisHookReader(HookReader):
    """One consumer of a source's stream: claim what is pending, then read new entries as they come."""

    def __init__(self, queue: RedisHookQueue, source: str, consumer: str) -> None:
        self.queue = queue
        self.key = queue.stream_key(source)
        self.consumer = consumer
        self._buffer: deque[tuple[bytes, bytes]] = deque()
        self._acks: list[bytes] = []
        self._delivered: bytes | None = None
        self._opened = False
        self._claim_from: bytes | None = b"0-0"  # None: not claiming just now
        self._claim_idle_ms = 0  # the first claim takes everything: the lease says no one else reads
        self._next_claim = 0.0
        self._closed = False

    async def open(self) -> None:
        """Create the consumer group if need be, proving Redis reachable before the link counts as live."""
        try:
            await self._ensure_group()
        except (self.queue._redis.RedisError, OSError) as exc:
            raise LinkLost(f"hook queue unreachable ({type(exc).__name__})") from None

    async def _ensure_group(self) -> None:
        if self._opened:
            return
        with contextlib.suppress(self.queue._redis.ResponseError):  # BUSYGROUP: it exists
            # From the start of the stream: deliveries queued before any worker read are kept.
            await self.queue.client().xgroup_create(self.key, GROUP, id="0", mkstream=True)
        self._opened = True
        self._next_claim = time.monotonic() + self.queue.claim_every

    async def __anext__(self) -> bytes:
        if self._delivered is not None:
            # The connector asks again: the last delivery was handled.
            self._acks.append(self._delivered)
            self._delivered = None
        try:
            while not self._buffer:
                if self._closed:
                    raise StopAsyncIteration
                await self._flush_acks()
                await self._fill()
        except self.queue._redis.ResponseError as exc:
            # NOGROUP after Redis lost its data, or a command it refuses: a new reader starts over.
            raise LinkLost(f"hook queue refused a read ({str(exc)[:80]})") from None
        except (self.queue._redis.RedisError, OSError) as exc:
            raise LinkLost(f"hook queue unreachable ({type(exc).__name__})") from None
        entry_id, data = self._buffer.popleft()
        self._delivered = entry_id
        return data

    async def _fill(self) -> None:
        client = self.queue.client()
        await self._ensure_group()
        if self._claim_from is None and time.monotonic() >= self._next_claim:
            self._claim_from, self._claim_idle_ms = b"0-0", round(self.queue.claim_idle * 1000)
        if self._claim_from is not None:
            await self._claim(client)
            return
        reply = await client.xreadgroup(
            GROUP, self.consumer, {self.key: ">"}, count=READ_COUNT, block=round(self.queue.read_block * 1000)
        )
        for _stream, entries in reply or ():
            self._take(entries)

    async def _claim(self, client: Any) -> None:
        """Claim one page of entries another reader (or an earlier one of ours) left pending."""
        reply = await client.xautoclaim(
            self.key, GROUP, self.consumer, self._claim_idle_ms, start_id=self._claim_from, count=READ_COUNT
        )
        cursor, entries = reply[0], reply[1]
        if entries:
            log.info("hook queue %s: claimed %d pending deliveries", self.key, len(entries))
        self._take(entries)
        if cursor in (b"0-0", "0-0"):
            self._claim_from = None
            self._next_claim = time.monotonic() + self.queue.claim_every
            await self._forget_idle_consumers(client)
        else:
            self._claim_from = cursor

    def _take(self, entries: list) -> None:
        for entry_id, fields in entries:
            if fields is None:
                # Deleted while pending (Redis before 7): nothing to hand on, only to acknowledge.
                self._acks.append(entry_id)
                continue
            self._buffer.append((entry_id, fields.get(b"items", b"")))

    async def _forget_idle_consumers(self, client: Any) -> None:
        """Remove consumers that hold nothing (earlier workers), so the group does not grow for ever."""
        try:
            for info in await client.xinfo_consumers(self.key, GROUP):
                name = info.get("name")
                name = name.decode() if isinstance(name, bytes) else name
                if name != self.consumer and not info.get("pending"):
                    await client.xgroup_delconsumer(self.key, GROUP, name)
        except self.queue._redis.RedisError as exc:
            log.info("hook queue %s: could not tidy consumers (%s)", self.key, type(exc).__name__)

    async def _flush_acks(self) -> None:
        if not self._acks:
            return
        acks, self._acks = self._acks, []
        try:
            async with self.queue.client().pipeline(transaction=True) as pipe:
                # Acknowledged entries are deleted: the stream's length is then the backlog still to apply.
                await pipe.xack(self.key, GROUP, *acks).xdel(self.key, *acks).execute()
        except BaseException:
            self._acks = acks + self._acks
            raise

    async def close(self) -> None:
        """Acknowledge what was handled (best effort); the rest stays pending for the next reader."""
        if self._closed:
            return
        self._closed = True
        self.close_code, self.close_reason = 1000, "closed"
        if self._delivered is not None:
            # Cancelled while awaiting, the loop had handled this one (it asks only once it has).
            self._acks.append(self._delivered)
            self._delivered = None
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._flush_acks(), timeout=2.0)
