"""One channel-layer subscription per board and web process, shared by that process's viewers.

The worker sends each board message once to the board's group. If every
viewer joined the group with a channel of its own, the layer would copy the
message per viewer (the in-memory layer deep-copies it, the Redis layer
stores it once per member and the process pulls it back one round trip at a
time), and Channels would dispatch it to each consumer as a separate task,
closing stale database connections in a thread each time. At a few hundred
viewers that fan-out is most of a change's delay.

So a web process joins each board's group once, with one channel, and a
``BoardFeed`` hands every message straight to the process's viewers of that
board, in order. A viewer's handler must not wait on I/O of its own: a
viewer that needs a snapshot reads it in a task of its own and queues the
messages that arrive meanwhile (see dashboard.consumers).

The feed also owns the group membership's health. The layer forgets members
after its group expiry (a day by default), so the feed joins again well
before that. When the layer fails (Redis restarting), the feed keeps the
viewers' sockets open, retries with jittered backoff, joins again and then
asks each viewer to resync, since messages sent meanwhile are lost. Viewers
see the data age grow and the page marks it stale until then.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable
from typing import Any, Protocol

from channels.layers import get_channel_layer

from streams.backoff import Backoff

log = logging.getLogger(__name__)

# Well inside the layers' default group expiry of a day.
RENEW_EVERY = 3600.0
# How long a new viewer waits for the feed to join its group before giving up (the layer is down).
JOIN_TIMEOUT = 5.0
MESSAGE_TYPES = ("board.delta", "board.tick")
# Prefix of every process-local channel this process receives on (board feeds, the access watch). The
# Redis layer reads all process-local channels of one prefix from one list, under one lock: a channel of
# another prefix would take turns with the feeds and starve them for seconds at a time.
CHANNEL_PREFIX = "board-feed"


class Viewer(Protocol):
    """What a feed needs from a viewer."""

    async def take(self, message: dict) -> None:
        """Handle one board message without waiting on I/O (sending to the own socket is fine).

        A viewer whose take() raises is discarded from the feed.
        """

    def resync(self) -> None:
        """Start over from the snapshot store: messages may have been lost."""


class FeedUnavailable(Exception):
    """The channel layer cannot be reached, so the board's messages cannot be received."""


class BoardFeed:
    """Receive one board group's messages in this process and hand them to its viewers."""

    def __init__(self, group: str, layer: Any, *, on_empty: Callable[[BoardFeed], None]) -> None:
        self.group = group
        self.layer = layer
        self.viewers: dict[Viewer, None] = {}  # insertion-ordered set
        self.joined = asyncio.Event()
        self._on_empty = on_empty
        self._channel: str | None = None
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._run(), name=f"feed {group}")
        self._renewal = loop.create_task(self._renew_membership(), name=f"feed {group} renewal")

    async def add(self, viewer: Viewer) -> None:
        """Start handing messages to VIEWER; return once the feed is in the group.

        Raises FeedUnavailable if the layer cannot be reached within JOIN_TIMEOUT. However the wait ends
        without joining (a timeout, the connecting task cancelled), the viewer is not kept: the caller
        has no feed to leave yet, so a viewer kept here would keep the feed running for ever.
        """
        self.viewers[viewer] = None
        try:
            await asyncio.wait_for(self.joined.wait(), JOIN_TIMEOUT)
        except TimeoutError:
            self.discard(viewer)
            raise FeedUnavailable(f"could not join {self.group}") from None
        except BaseException:
            self.discard(viewer)
            raise

    def discard(self, viewer: Viewer) -> None:
        """Stop handing messages to VIEWER; the last viewer out ends the feed."""
        self.viewers.pop(viewer, None)
        if not self.viewers and not self._task.done():
            self._task.cancel()
            self._renewal.cancel()
            self._on_empty(self)

    async def _run(self) -> None:
        backoff = Backoff(first=0.2, minimum=0.5, cap=5.0, healthy_after=30.0)
        lost = False
        try:
            while True:
                try:
                    await self._join()
                    backoff.link_up()
                    if lost:
                        # Whatever the worker sent while we were out is gone: every viewer starts over.
                        log.info("board feed %s is back; %d viewers resync", self.group, len(self.viewers))
                        for viewer in list(self.viewers):
                            viewer.resync()
                        lost = False
                    await self._receive()
                except asyncio.CancelledError:
                    raise
                except Exception as error:
                    self.joined.clear()
                    lost = True
                    delay = backoff.next_delay()
                    log.warning(
                        "board feed %s lost the channel layer (%s); retrying in %.1fs", self.group, error, delay
                    )
                    await asyncio.sleep(delay)
        finally:
            self.joined.clear()
            await self._leave()

    async def _join(self) -> None:
        if self._channel is None:
            self._channel = await self.layer.new_channel(prefix=CHANNEL_PREFIX + ".")
        await self.layer.group_add(self.group, self._channel)
        self.joined.set()

    async def _receive(self) -> None:
        while True:
            message = await self.layer.receive(self._channel)
            await self._deliver(message)

    async def _renew_membership(self) -> None:
        # Time-based rather than on a message: a quiet board (worker down) must not drop out of its group.
        while True:
            await asyncio.sleep(RENEW_EVERY)
            if not self.joined.is_set():
                continue  # The receiving side is reconnecting and joins again itself.
            try:
                await self.layer.group_add(self.group, self._channel)
            except Exception as error:
                log.warning("board feed %s could not renew its membership: %s", self.group, error)

    async def _deliver(self, message: Any) -> None:
        if not isinstance(message, dict) or message.get("type") not in MESSAGE_TYPES:
            log.warning("board feed %s dropped a message of unknown shape", self.group)
            return
        for viewer in list(self.viewers):
            try:
                await viewer.take(message)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                # One viewer's failure must not starve the others, nor be logged again with every later
                # message: a viewer that cannot take a message is gone (its page left), so drop it.
                log.warning("a viewer of %s failed to take a message and is dropped: %r", self.group, error)
                self.discard(viewer)

    async def _leave(self) -> None:
        if self._channel is None:
            return
        try:
            await asyncio.shield(self.layer.group_discard(self.group, self._channel))
        except Exception as error:
            # The membership then expires by itself; messages to a channel nobody reads are dropped.
            log.info("board feed %s could not leave its group: %s", self.group, error)


class Feeds:
    """The board feeds of this process, one per event loop, channel layer and group."""

    def __init__(self) -> None:
        self._feeds: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, BoardFeed]] = (
            weakref.WeakKeyDictionary()
        )

    async def join(self, group: str, viewer: Viewer) -> BoardFeed:
        """Hand GROUP's messages to VIEWER from now on and return the feed (raises FeedUnavailable)."""
        loop = asyncio.get_running_loop()
        layer = get_channel_layer()
        feeds = self._feeds.setdefault(loop, {})
        feed = feeds.get(group)
        if feed is None or feed.layer is not layer:
            # A feed on a replaced layer (settings changed in tests) ends with its last viewer.
            feed = feeds[group] = BoardFeed(group, layer, on_empty=lambda done: self._forget(loop, done))
        await feed.add(viewer)
        return feed

    def _forget(self, loop: asyncio.AbstractEventLoop, feed: BoardFeed) -> None:
        feeds = self._feeds.get(loop, {})
        if feeds.get(feed.group) is feed:
            del feeds[feed.group]

    def active(self) -> list[BoardFeed]:
        """Return the feeds of the running event loop."""
        return list(self._feeds.get(asyncio.get_running_loop(), {}).values())


feeds = Feeds()
