"""The hand-off from web processes (the webhook view) to the worker (the webhook connector).

A webhook delivery is checked in the web process and answered at once; its
records are applied later, in whichever worker streams the source. Between
the two sits a queue per source, which also remembers the record ids it saw
in the last hour, so a platform's retries are acknowledged and ignored:

- production (``REDIS_URL`` set): a Redis Stream per source under
  ``REDIS_PREFIX``, read through a consumer group. One Lua script checks the
  backlog, marks the ids (``SET NX EX``) and adds the entry, so a refused
  delivery marks nothing and its retry is not mistaken for a duplicate. The
  reader acknowledges (``XACK``, then ``XDEL``) only what the connector
  handled, and a new reader first claims whatever an earlier one left
  pending (``XAUTOCLAIM``): records survive a worker handover. The length
  is bounded (``MAXLEN ~``), but a full queue refuses new deliveries rather
  than trimming unread ones.
- the embedded mode: the same in this process, safe to use from any thread
  and any event loop (Django's test clients run views in a loop of their
  own; the demo runs Daphne and the worker on one).

A full or unreachable queue raises ``HookQueueFull`` / ``HookQueueUnavailable``:
the view answers 503 with Retry-After and the platform sends it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from django.conf import settings

from streams.link.failures import LinkLost

log = logging.getLogger(__name__)

SEEN_TTL = 3600  # seconds a record id is remembered (the platform's retry horizon)
SEEN_MAX = 100_000  # ids remembered per source in the embedded mode
DEFAULT_BACKLOG = 10_000  # deliveries waiting per source before new ones are refused
RETRY_AFTER = 5  # seconds the platform is asked to wait when the queue cannot take a delivery
GROUP = "workers"  # the consumer group every worker reads through
READ_COUNT = 100  # entries per read
READ_BLOCK = 2.0  # seconds a read waits for new entries
CLAIM_IDLE = 60.0  # entries pending this long with another reader are claimed while streaming
CLAIM_EVERY = 30.0  # how often a reader looks for such entries
MAX_KEY = 200  # longer record ids are remembered by their hash


@dataclass(frozen=True)
class HookItem:
    """One record (or EventBridge envelope) of a delivery: its JSON text and its idempotency key."""

    text: str
    key: str | None = None  # the record's id; None: never taken for a duplicate


class Offered(NamedTuple):
    """What the queue did with a delivery."""

    queued: int  # items added
    duplicates: int  # items whose id was seen in the last hour


class HookQueueError(Exception):
    """The queue cannot take a delivery now; the platform should send it again later."""

    retry_after = RETRY_AFTER


class HookQueueFull(HookQueueError):
    """The source's backlog is full (the worker is behind or not running)."""


class HookQueueUnavailable(HookQueueError):
    """The queue's store (Redis) cannot be reached."""


def seen_key(record_id: str) -> str:
    """Return how a record id is remembered: itself, or its hash when it is long or not plain printable ASCII."""
    if len(record_id) <= MAX_KEY and record_id.isascii() and record_id.isprintable():
        return record_id
    return "sha256:" + hashlib.sha256(record_id.encode("utf-8", "surrogatepass")).hexdigest()


def batch_text(texts: Iterable[str]) -> bytes:
    """Return JSON texts as the UTF-8 text of one JSON list (what the reader hands the connector)."""
    return ("[" + ",".join(texts) + "]").encode("utf-8", "surrogatepass")


class HookQueue(ABC):
    """A queue per source of accepted webhook records, with the ids seen in the last hour."""

    @abstractmethod
    async def offer(self, source: str, items: list[HookItem]) -> Offered:
        """Queue ITEMS for SOURCE, leaving out those whose key was seen in the last hour.

        Raise ``HookQueueFull`` or ``HookQueueUnavailable``, having marked and queued nothing,
        when the delivery cannot be taken.
        """

    @abstractmethod
    def reader(self, source: str, consumer: str) -> HookReader:
        """Return a reader of SOURCE's queue for CONSUMER (a name unique to the reading connector)."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections."""


class HookReader(ABC):
    """The ``Wire`` a webhook connector reads: one frame per queued delivery (a JSON list, as bytes).

    A frame counts as handled when the next one is asked for (the connector's loop
    handles each frame before it asks again); only then is it acknowledged.
    """

    close_code: int | None = None
    close_reason: str | None = None

    def __aiter__(self) -> HookReader:
        return self

    async def open(self) -> None:
        """Make sure the queue can be read; raise ``LinkLost`` if it cannot (default: nothing to check)."""
        return

    @abstractmethod
    async def __anext__(self) -> bytes:
        """Return the next delivery, waiting for one; raise ``LinkLost`` when the queue fails."""

    @abstractmethod
    async def close(self) -> None:
        """Stop reading; what was handled is acknowledged, the rest stays queued."""


# -- the embedded mode ------------------------------------------------------------------------


@dataclass
class _MemoryStream:
    """One source's queue in this process."""

    unread: deque[tuple[int, bytes]] = field(default_factory=deque)
    pending: dict[int, bytes] = field(default_factory=dict)  # handed to a reader, not yet acknowledged
    seen: OrderedDict[str, float] = field(default_factory=OrderedDict)  # key → when it is forgotten
    waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = field(default_factory=set)


class MemoryHookQueue(HookQueue):
    """The embedded mode's queue: thread-safe, readable from any event loop."""

    def __init__(
        self,
        *,
        backlog: int = DEFAULT_BACKLOG,
        seen_ttl: float = SEEN_TTL,
        seen_max: int = SEEN_MAX,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backlog = backlog
        self.seen_ttl = seen_ttl
        self.seen_max = seen_max
        self.clock = clock
        self._lock = threading.Lock()
        self._streams: dict[str, _MemoryStream] = {}
        self._next_id = 0

    def _stream(self, source: str) -> _MemoryStream:
        stream = self._streams.get(source)
        if stream is None:
            stream = self._streams[source] = _MemoryStream()
        return stream

    async def offer(self, source: str, items: list[HookItem]) -> Offered:
        """Queue the items whose keys are new; refuse the whole delivery when the backlog is full."""
        with self._lock:
            stream = self._stream(source)
            if len(stream.unread) + len(stream.pending) >= self.backlog:
                raise HookQueueFull(f"{len(stream.unread) + len(stream.pending)} deliveries are waiting")
            now = self.clock()
            seen = stream.seen
            while seen and next(iter(seen.values())) <= now:
                seen.popitem(last=False)
            texts, duplicates = [], 0
            for item in items:
                if item.key is not None:
                    key = seen_key(item.key)
                    if key in seen:
                        duplicates += 1
                        continue
                    seen[key] = now + self.seen_ttl
                    if len(seen) > self.seen_max:
                        seen.popitem(last=False)
                texts.append(item.text)
            if texts:
                self._next_id += 1
                stream.unread.append((self._next_id, batch_text(texts)))
                waiters, stream.waiters = stream.waiters, set()
            else:
                waiters = set()
        for loop, event in waiters:
            with contextlib.suppress(RuntimeError):  # that loop is closed: its reader is gone
                loop.call_soon_threadsafe(event.set)
        return Offered(len(texts), duplicates)

    def reader(self, source: str, consumer: str) -> MemoryHookReader:
        """Return a reader; whatever an earlier reader left unacknowledged is delivered again first."""
        with self._lock:
            stream = self._stream(source)
            if stream.pending:
                stream.unread.extendleft(sorted(stream.pending.items(), reverse=True))
                stream.pending.clear()
        return MemoryHookReader(self, source)

    def backlog_of(self, source: str) -> int:
        """Return how many deliveries wait for SOURCE (read or not, unacknowledged)."""
        with self._lock:
            stream = self._streams.get(source)
            return len(stream.unread) + len(stream.pending) if stream else 0

    async def close(self) -> None:
        """Keep everything: the embedded mode's queue lives as long as the process."""

    # -- for the reader ---------------------------------------------------------------------

    def _take(self, source: str, waiter: tuple[asyncio.AbstractEventLoop, asyncio.Event]) -> tuple[int, bytes] | None:
        with self._lock:
            stream = self._stream(source)
            if stream.unread:
                entry_id, data = stream.unread.popleft()
                stream.pending[entry_id] = data
                return entry_id, data
            waiter[1].clear()
            stream.waiters.add(waiter)
            return None

    def _ack(self, source: str, entry_id: int) -> None:
        with self._lock:
            self._stream(source).pending.pop(entry_id, None)

    def _forget_waiter(self, source: str, waiter: tuple[asyncio.AbstractEventLoop, asyncio.Event]) -> None:
        with self._lock:
            self._stream(source).waiters.discard(waiter)


class MemoryHookReader(HookReader):
    """A reader of the embedded queue, in the event loop that iterates it."""

    def __init__(self, queue: MemoryHookQueue, source: str) -> None:
        self.queue = queue
        self.source = source
        self._delivered: int | None = None
        self._closed = asyncio.Event()
        self._waiter: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None

    async def __anext__(self) -> bytes:
        if self._delivered is not None:
            # The connector asks again: the last delivery was handled.
            self.queue._ack(self.source, self._delivered)
            self._delivered = None
        if self._waiter is None:
            self._waiter = (asyncio.get_running_loop(), asyncio.Event())
        while not self._closed.is_set():
            taken = self.queue._take(self.source, self._waiter)
            if taken is not None:
                self._delivered = taken[0]
                return taken[1]
            closed = asyncio.ensure_future(self._closed.wait())
            arrived = asyncio.ensure_future(self._waiter[1].wait())
            try:
                await asyncio.wait({closed, arrived}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                closed.cancel()
                arrived.cancel()
        raise StopAsyncIteration

    async def close(self) -> None:
        """Stop reading; an unacknowledged delivery is handed to the next reader."""
        self._closed.set()
        if self._delivered is not None:
            # Cancelled while awaiting, the loop had handled this one (it asks only once it has).
            self.queue._ack(self.source, self._delivered)
            self._delivered = None
        self.close_code, self.close_reason = 1000, "closed"
        if self._waiter is not None:
            self.queue._forget_waiter(self.source, self._waiter)


# -- production: Redis Streams ----------------------------------------------------------------

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


# -- the process-wide queue -------------------------------------------------------------------

_queue: HookQueue | None = None
_queue_lock = threading.Lock()


def get_hook_queue() -> HookQueue:
    """Return the process-wide queue: Redis when REDIS_URL is set, else in-process."""
    global _queue
    with _queue_lock:
        if _queue is None:
            backlog = int(settings.FLOORVIEW.get("WEBHOOK_BACKLOG", DEFAULT_BACKLOG))
            if settings.REDIS_URL:
                _queue = RedisHookQueue(settings.REDIS_URL, prefix=settings.REDIS_PREFIX, backlog=backlog)
            else:
                _queue = MemoryHookQueue(backlog=backlog)
        return _queue


def reset_hook_queue() -> None:
    """Forget the process-wide queue (tests switch settings)."""
    global _queue
    with _queue_lock:
        _queue = None
