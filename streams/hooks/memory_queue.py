"""The embedded mode's hook queue: one queue per source in this process's memory.

Safe to use from any thread and any event loop (Django's test clients run
views in a loop of their own; the demo runs Daphne and the worker on one).
It keeps the interface's promises as the Redis queue does: ids seen in the
last hour are duplicates, a full backlog refuses the whole delivery, and a
delivery handed to a reader that did not acknowledge it goes to the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from streams.hooks.queue import (
    DEFAULT_BACKLOG,
    SEEN_TTL,
    HookItem,
    HookQueue,
    HookQueueFull,
    HookReader,
    Offered,
    batch_text,
    seen_key,
)

SEEN_MAX = 100_000  # ids remembered per source


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
