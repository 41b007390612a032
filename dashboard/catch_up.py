"""Snapshot first, then the board messages that waited for it: when one viewer reads its board's picture.

A viewer reads its board's snapshot when it connects, after a gap in the
board's messages or a new epoch (dashboard.frame_order), after its feed lost
the channel layer, and when its page asks (a resync, a filter change). While
one is being read, the board messages the feed hands over wait here, in
order; once the snapshot is sent they are worked off, and those it already
covers are skipped by the viewer's frame order.

A read never runs inline while the feed is handing out a message: the
board's other viewers would wait. Snapshots the page asks for pass a bucket
of their own (dashboard.page_messages sets its rate) and coalesce into at
most one in flight and one pending.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Protocol

from dashboard import page_messages
from dashboard.frame_order import FrameOrder
from dashboard.viewer_limits import TokenBucket


class Reader(Protocol):
    """What the catch-up needs from a viewer."""

    group: str | None  # None once the viewer stopped streaming (left, revoked, closing)
    order: FrameOrder

    async def send_snapshot(self, newer_than: tuple[str, int] | None = None) -> None:
        """Send the board's full picture from the store."""

    async def handle(self, message: dict) -> None:
        """Handle one board message, as Channels dispatches it."""

    def failed(self, error: BaseException) -> None:
        """Stop handing the viewer anything: a send to its page failed."""


class CatchUp:
    """One viewer's snapshot reads, the board messages that wait for them, and the tasks that run them."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader
        self.reading = 0  # snapshots being read, or about to be: board messages wait meanwhile
        self.waiting: list[dict] = []  # board messages that arrived while one was read, in order
        self.tasks: set[asyncio.Task] = set()
        self.asks = TokenBucket(page_messages.SNAPSHOT_RATE, page_messages.SNAPSHOT_BURST)
        self.asked: asyncio.Task | None = None  # the snapshot the page asked for, in flight
        self.ask_again = False  # the page asked again meanwhile: one more snapshot after it

    def expect(self) -> None:
        """Count a snapshot read that starts soon: board messages wait from now on (see run())."""
        self.reading += 1

    def hold(self, message: dict) -> bool:
        """Keep MESSAGE for after the snapshot being read, and return True; return False if none is."""
        if not self.reading:
            return False
        self.waiting.append(message)
        return True

    async def run(self, newer_than: tuple[str, int] | None = None, retire: str | None = None) -> None:
        """Send a snapshot (the caller counted it with expect()), then the board messages that waited for it."""
        reader = self.reader
        try:
            await reader.send_snapshot(newer_than=newer_than)
            if retire is not None and reader.order.epoch is not None and reader.order.epoch != retire:
                # The store has moved past that epoch (an old worker still flushing): ignore it for a while,
                # otherwise each of its messages would cost this viewer another snapshot.
                reader.order.retire(retire)
        finally:
            self.reading -= 1
        while self.waiting and not self.reading and reader.group is not None:
            await reader.handle(self.waiting.pop(0))

    def soon(self, newer_than: tuple[str, int] | None = None, retire: str | None = None) -> None:
        """Read a snapshot in a task of its own; with NEWER_THAN (epoch, seq), one at least that recent."""
        # Never read inline while the feed is handing out a message: the board's other viewers would wait.
        self.expect()
        self._spawn(self.run(newer_than, retire))

    def restart(self) -> None:
        """Start over from the store: drop what waits (it may have gaps) and read a snapshot."""
        self.waiting.clear()
        self.soon()

    def ask(self) -> None:
        """Read a snapshot the page asked for, in its turn."""
        # At most one snapshot the page asked for is in flight and one more pending: a page (or a
        # script) asking in a loop costs one snapshot per round trip to the store, not one per message.
        if self.asked is not None and not self.asked.done():
            self.ask_again = True
            return
        self.asked = self._spawn(self._asked_snapshots())

    def cancel(self) -> None:
        """Cancel every read in flight but the one calling (it is ending anyway)."""
        for task in list(self.tasks):
            if task is not asyncio.current_task():
                task.cancel()

    async def _asked_snapshots(self) -> None:
        while self.reader.group is not None:
            if not self.asks.take():
                # Asks past the snapshot rate wait their turn; those made meanwhile coalesce into this one.
                await asyncio.sleep(self.asks.wait())
                self.asks.take()
            self.ask_again = False
            self.expect()
            await self.run()
            if not self.ask_again:
                return

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            self.reader.failed(error)
