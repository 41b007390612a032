"""Notification channels and their topic subscriptions, held by the hub that delivers messages to their sockets.

A channel belongs to one OAuth client, lives 24 hours (subscribing extends
it), holds at most 1,000 topics and at most one socket: a second socket
replaces the first (close 1000). A client may hold 20 channels; creating a
21st removes the least recently used one, idle ones (no socket) first.
Nothing is queued for a channel without a socket: its events are lost, as
with Genesys.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from simulator.genesys import topics as topic_names
from simulator.genesys.socket_control import SocketControl
from simulator.genesys.sockets import SocketSession, envelope
from simulator.timefmt import iso

CHANNEL_LIFETIME = 24 * 3600.0
MAX_CHANNELS = 20
MAX_TOPICS = 1000


@dataclass(eq=False)
class Channel:
    """One notification channel."""

    id: str
    client_id: str
    connect_uri: str
    created: float
    expires: float
    last_used: float
    topics: dict[str, None] = field(default_factory=dict)  # ordered set
    session: SocketSession | None = None

    def as_json(self) -> dict[str, Any]:
        """Return the channel as ``POST /api/v2/notifications/channels`` replies."""
        return {"id": self.id, "connectUri": self.connect_uri, "expires": iso(self.expires)}


@dataclass
class SubscribeResult:
    """The outcome of a subscription request: the ChannelTopic entities, or an error status and message."""

    entities: list[dict[str, Any]]
    status: int = 200
    message: str = ""


class Hub(SocketControl):
    """Hold every channel, index subscriptions by topic, and deliver messages to sockets."""

    def __init__(self, heartbeat_period: float = 30.0, clock: Callable[[], float] = time.time) -> None:
        self.heartbeat_period = heartbeat_period
        self.clock = clock
        self.channels: dict[str, Channel] = {}
        self.published = 0
        self.delivered = 0
        self.channels_created = 0
        self._subscribers: dict[str, set[Channel]] = {}
        self._combined: dict[str, dict[str, frozenset[str]]] = {}  # user id -> combined topic -> kinds
        self._timers: set[asyncio.TimerHandle] = set()

    # -- channels -----------------------------------------------------------

    def create_channel(self, client_id: str, socket_base: str) -> Channel:
        """Create a channel for CLIENT_ID (evicting one past the limit); SOCKET_BASE is ``ws://host:port``."""
        now = self.clock()
        owned = [c for c in self.channels.values() if c.client_id == client_id]
        if len(owned) >= MAX_CHANNELS:
            self.evict(min(owned, key=lambda c: (c.session is not None, c.last_used)))
        channel_id = str(uuid.uuid4())
        channel = Channel(
            id=channel_id,
            client_id=client_id,
            connect_uri=f"{socket_base}/channels/{channel_id}",
            created=now,
            expires=now + CHANNEL_LIFETIME,
            last_used=now,
        )
        self.channels[channel_id] = channel
        self.channels_created += 1
        return channel

    def evict(self, channel: Channel) -> None:
        """Remove CHANNEL as creating a 21st channel for its client does (its socket closes with 1001)."""
        self.remove_channel(channel, code=1001, message="channel removed: too many channels")

    def channel(self, channel_id: str, client_id: str | None = None) -> Channel | None:
        """Return a live channel (of CLIENT_ID, if given), or None; an expired one is removed on the way."""
        channel = self.channels.get(channel_id)
        if channel is None or (client_id is not None and channel.client_id != client_id):
            return None
        if channel.expires <= self.clock():
            self.remove_channel(channel, code=1001, message="channel expired")
            return None
        return channel

    def touch(self, channel: Channel) -> None:
        """Mark CHANNEL as just used (for least-recently-used eviction)."""
        channel.last_used = self.clock()

    def remove_channel(self, channel: Channel, code: int = 1001, message: str = "") -> None:
        """Forget CHANNEL and its subscriptions; close its socket."""
        self._unindex(channel, list(channel.topics))
        channel.topics.clear()
        self.channels.pop(channel.id, None)
        if channel.session is not None:
            channel.session.close(code, message)

    def sweep(self) -> int:
        """Remove expired channels; return how many."""
        now = self.clock()
        expired = [c for c in self.channels.values() if c.expires <= now]
        for channel in expired:
            self.remove_channel(channel, code=1001, message="channel expired")
        return len(expired)

    # -- subscriptions ------------------------------------------------------

    def subscribe(
        self, channel: Channel, requested: Iterable[Any], *, replace: bool, ignore_errors: bool
    ) -> SubscribeResult:
        """Add (or with REPLACE, set) CHANNEL's topics; a rejected topic fails all of it unless IGNORE_ERRORS."""
        entities, accepted, rejected = [], [], []
        for topic in requested:
            if topic_names.is_known(topic):
                accepted.append(topic)
                entities.append(self._topic_entity(channel, topic, "Permitted"))
            else:
                rejected.append(topic)
                entities.append(self._topic_entity(channel, str(topic), "Rejected"))
        if rejected and not ignore_errors:
            return SubscribeResult([], 403, f"Not permitted to subscribe to: {', '.join(map(str, rejected[:10]))}")
        wanted = dict.fromkeys(accepted) if replace else channel.topics | dict.fromkeys(accepted)
        if len(wanted) > MAX_TOPICS:
            return SubscribeResult([], 400, f"A channel may hold at most {MAX_TOPICS} topics ({len(wanted)} requested)")
        removed = [t for t in channel.topics if t not in wanted]
        added = [t for t in wanted if t not in channel.topics]
        self._unindex(channel, removed)
        channel.topics = wanted
        self._index(channel, added)
        now = self.clock()
        channel.expires = now + CHANNEL_LIFETIME
        channel.last_used = now
        return SubscribeResult(entities)

    def unsubscribe_all(self, channel: Channel) -> None:
        """Remove every topic from CHANNEL."""
        self._unindex(channel, list(channel.topics))
        channel.topics = {}
        self.touch(channel)

    def topic_entities(self, channel: Channel) -> list[dict[str, Any]]:
        """Return CHANNEL's topics as ChannelTopic entities."""
        return [self._topic_entity(channel, topic, "Permitted") for topic in channel.topics]

    @staticmethod
    def _topic_entity(channel: Channel, topic: str, state: str) -> dict[str, Any]:
        entity = {
            "id": topic,
            "state": state,
            "selfUri": f"/api/v2/notifications/channels/{channel.id}/subscriptions",
        }
        if state == "Rejected":
            entity["rejectionReason"] = "Unknown topic or no permission to subscribe to it"
        return entity

    def _index(self, channel: Channel, added: Iterable[str]) -> None:
        for topic in added:
            self._subscribers.setdefault(topic, set()).add(channel)
            combined = topic_names.parse_combined(topic)
            if combined:
                self._combined.setdefault(combined[0], {})[topic] = combined[1]

    def _unindex(self, channel: Channel, removed: Iterable[str]) -> None:
        for topic in removed:
            holders = self._subscribers.get(topic)
            if holders is None:
                continue
            holders.discard(channel)
            if holders:
                continue
            del self._subscribers[topic]
            combined = topic_names.parse_combined(topic)
            if combined and combined[0] in self._combined:
                self._combined[combined[0]].pop(topic, None)
                if not self._combined[combined[0]]:
                    del self._combined[combined[0]]

    # -- delivery -----------------------------------------------------------

    def wants(self, topic: str) -> bool:
        """Return whether any channel subscribes to TOPIC."""
        return topic in self._subscribers

    def combined_topics(self, user_id: str) -> dict[str, frozenset[str]]:
        """Return the combined topics subscribed for USER_ID, each with its kinds."""
        return self._combined.get(user_id, {})

    def publish(self, topic: str, body: dict[str, Any], *, also: str | None = None) -> int:
        """Send BODY on TOPIC to every subscribed open socket (and to subscribers of ALSO); return how many."""
        holders = set(self._subscribers.get(topic, ()))
        if also is not None:
            holders |= self._subscribers.get(also, set())
        if not holders:
            return 0
        text = envelope(topic, body)
        self.published += 1
        count = 0
        for channel in holders:
            if channel.session is not None and channel.session.send(text):
                count += 1
        self.delivered += count
        return count

    def attach(self, channel: Channel, session: SocketSession) -> None:
        """Make SESSION the channel's socket; a previous one is closed with 1000."""
        previous = channel.session
        channel.session = session
        self.touch(channel)
        if previous is not None:
            previous.close(1000, "replaced by a new connection")

    def detach(self, channel: Channel, session: SocketSession) -> None:
        """Forget SESSION if it is still the channel's socket."""
        if channel.session is session:
            channel.session = None
            self.touch(channel)
