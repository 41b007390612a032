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

The feed keeps its membership through dashboard.group_subscription. When the
layer fails (Redis restarting), the viewers' sockets stay open; once the feed
is back in its group it asks each viewer to resync, since messages sent
meanwhile are lost. Viewers see the data age grow and the page marks it
stale until then.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable
from typing import Any, Protocol

from channels.layers import get_channel_layer

from dashboard.group_subscription import GroupSubscription
from dashboard.protocol import MESSAGE_TYPES

log = logging.getLogger(__name__)

# How long a new viewer waits for the feed to join its group before giving up (the layer is down).
JOIN_TIMEOUT = 5.0


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
        self._on_empty = on_empty
        self.subscription = GroupSubscription(
            layer, group, name=f"board feed {group}", on_message=self._deliver, on_rejoin=self._resync_all
        )
        self.joined = self.subscription.joined

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
        if not self.viewers and self.subscription.running:
            self.subscription.stop()
            self._on_empty(self)

    async def _resync_all(self) -> None:
        # Whatever the worker sent while we were out is gone: every viewer starts over.
        log.info("board feed %s is back; %d viewers resync", self.group, len(self.viewers))
        for viewer in list(self.viewers):
            viewer.resync()

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


class BoardFeeds:
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


board_feeds = BoardFeeds()
