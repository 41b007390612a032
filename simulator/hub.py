"""Notification channels, their topic subscriptions and their sockets (Genesys' streaming side).

A channel belongs to one OAuth client, lives 24 hours (subscribing extends
it), holds at most 1,000 topics and at most one socket: a second socket
replaces the first (close 1000). A client may hold 20 channels; creating a
21st removes the least recently used one, idle ones (no socket) first.
Nothing is queued for a channel without a socket: its events are lost, as
with Genesys.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from simulator import topics as topic_names
from simulator.timefmt import iso

log = logging.getLogger(__name__)

CHANNEL_LIFETIME = 24 * 3600.0
MAX_CHANNELS = 20
MAX_TOPICS = 1000
# A socket that falls this many messages behind is closed rather than buffered without bound.
MAX_PENDING = 10_000
SOCKET_CLOSING_DELAY = 60.0

HEARTBEAT = json.dumps({"topicName": "channel.metadata", "eventBody": {"message": "WebSocket Heartbeat"}})
PONG = json.dumps({"topicName": "channel.metadata", "eventBody": {"message": "pong"}})


def envelope(topic: str, body: dict[str, Any]) -> str:
    """Return the JSON text of one notification message on TOPIC."""
    return json.dumps(
        {"topicName": topic, "version": "2", "eventBody": body, "metadata": {"CorrelationId": str(uuid.uuid4())}},
        separators=(",", ":"),
    )


@dataclass(frozen=True)
class _Close:
    code: int
    message: str


class SocketSession:
    """One open notification socket: an outbound queue drained by a writer task, and a heartbeat."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        channel: Channel,
        heartbeat_period: float,
        transport: asyncio.BaseTransport | None = None,
    ) -> None:
        self.ws = ws
        self.transport = transport  # for dropping the connection without a close frame (a fault)
        self.channel = channel
        self.heartbeat_period = heartbeat_period
        self.outbox: asyncio.Queue[str | _Close] = asyncio.Queue(MAX_PENDING)
        self.closing = False
        self.sent = 0
        # While stalled (a monotonic deadline, inf: until cleared) nothing reaches the client.
        self.stalled_until: float | None = None
        self.dropped = 0
        self._tasks: list[asyncio.Task] = []

    def start(self) -> None:
        """Start the writer and the heartbeat."""
        self._tasks = [asyncio.create_task(self._write(), name=f"sim-socket-writer-{self.channel.id}")]
        if self.heartbeat_period > 0:
            self._tasks.append(asyncio.create_task(self._beat(), name=f"sim-socket-heartbeat-{self.channel.id}"))

    def send(self, text: str) -> bool:
        """Queue TEXT for the client; return False if the socket is closing (the message is lost)."""
        if self.closing:
            return False
        if self.stalled():
            self.dropped += 1
            return False
        try:
            self.outbox.put_nowait(text)
        except asyncio.QueueFull:
            log.warning("simulator socket on channel %s fell %d behind; closing it", self.channel.id, MAX_PENDING)
            self.close(1008, "too slow")
            return False
        return True

    def stall(self, seconds: float | None) -> None:
        """Send nothing (no events, heartbeats or pongs) for SECONDS, or until ``unstall``."""
        self.stalled_until = math.inf if seconds is None else time.monotonic() + seconds

    def unstall(self) -> None:
        """End a stall."""
        self.stalled_until = None

    def stalled(self) -> bool:
        """Return whether the socket is stalled just now."""
        if self.stalled_until is not None and time.monotonic() >= self.stalled_until:
            self.stalled_until = None
        return self.stalled_until is not None

    def close(self, code: int, message: str = "") -> None:
        """Close the socket with CODE after what is already queued (idempotent)."""
        if self.closing:
            return
        self.closing = True
        if self.outbox.full():
            # A stuck client loses its backlog; the close frame must still get through.
            while not self.outbox.empty():
                self.outbox.get_nowait()
        self.outbox.put_nowait(_Close(code, message))

    def abort(self) -> None:
        """Drop the connection at once, without a close frame (as a network failure would)."""
        self.closing = True
        if self.transport is not None:
            self.transport.abort()

    async def stop(self) -> None:
        """Cancel the writer and heartbeat and wait for them."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _write(self) -> None:
        try:
            while True:
                item = await self.outbox.get()
                if isinstance(item, _Close):
                    await self.ws.close(code=item.code, message=item.message.encode())
                    return
                await self.ws.send_str(item)
                self.sent += 1
        except (ConnectionResetError, RuntimeError) as exc:
            # The client went away mid-send; the reader notices and cleans up.
            log.debug("simulator socket on channel %s: %s", self.channel.id, exc)

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_period)
            self.send(HEARTBEAT)


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


class Hub:
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

    # -- sockets ------------------------------------------------------------

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

    def sessions(self, channel_id: str | None = None) -> list[SocketSession]:
        """Return the open sockets (of one channel, if given)."""
        chosen = [self.channels[channel_id]] if channel_id in self.channels else []
        if channel_id is None:
            chosen = list(self.channels.values())
        return [c.session for c in chosen if c.session is not None and not c.session.closing]

    def socket_closing(self, channel_id: str | None = None, delay: float = SOCKET_CLOSING_DELAY) -> int:
        """Warn sockets with ``v2.system.socket_closing`` and close them (1001) after DELAY; return how many."""
        sessions = self.sessions(channel_id)
        body = {"message": "This socket will be closed shortly; reconnect now.", "closeIn": int(delay)}
        text = envelope("v2.system.socket_closing", body)
        for session in sessions:
            session.send(text)
            self._close_later(session, max(0.0, delay))
        return len(sessions)

    def close_sockets(self, channel_id: str | None, code: int, message: str = "") -> int:
        """Close the open sockets (of one channel, if given) with CODE; return how many."""
        sessions = self.sessions(channel_id)
        for session in sessions:
            session.close(code, message)
        return len(sessions)

    def stall(self, channel_id: str | None, seconds: float | None) -> int:
        """Silence the open sockets (of one channel, if given) for SECONDS or until cleared; return how many."""
        sessions = self.sessions(channel_id)
        for session in sessions:
            session.stall(seconds)
        return len(sessions)

    def unstall_all(self) -> int:
        """End every stall; return how many sockets were stalled."""
        stalled = [s for s in self.sessions() if s.stalled()]
        for session in stalled:
            session.unstall()
        return len(stalled)

    def send_system(self, kind: str, channel_id: str | None) -> int:
        """Send ``v2.system.<KIND>.<channel id>`` on the open sockets (of one channel, if given)."""
        sessions = self.sessions(channel_id)
        for session in sessions:
            session.send(envelope(f"v2.system.{kind}.{session.channel.id}", {"channelId": session.channel.id}))
        return len(sessions)

    def send_text(self, channel_id: str | None, texts: Iterable[str]) -> int:
        """Send raw TEXTS (well-formed or not) on the open sockets (of one channel, if given)."""
        sessions = self.sessions(channel_id)
        texts = list(texts)
        for session in sessions:
            for text in texts:
                session.send(text)
        return len(sessions)

    def _close_later(self, session: SocketSession, delay: float) -> None:
        handles: list[asyncio.TimerHandle] = []

        def fire() -> None:
            self._timers.discard(handles[0])
            session.close(1001, "socket closing")

        handles.append(asyncio.get_running_loop().call_later(delay, fire))
        self._timers.add(handles[0])

    def channels_truth(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Return the channels per client as ``/simulator/truth`` shows them."""
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for channel in self.channels.values():
            open_ = 1 if channel.session is not None and not channel.session.closing else 0
            out.setdefault(channel.client_id, {})[channel.id] = {
                "sockets_open": open_,
                "stalled": bool(open_ and channel.session.stalled()),
                "topics": len(channel.topics),
                "expires": iso(channel.expires),
            }
        return out

    def sockets_truth(self) -> dict[str, dict[str, Any]]:
        """Return, per client, how many notification sockets are open and on how many channels."""
        out: dict[str, dict[str, Any]] = {}
        for channel in self.channels.values():
            summary = out.setdefault(channel.client_id, {"channels": 0, "sockets_open": 0, "stalled": 0})
            summary["channels"] += 1
            session = channel.session
            if session is not None and not session.closing:
                summary["sockets_open"] += 1
                summary["stalled"] += session.stalled()
        return out

    def close_all(self, code: int = 1001, message: str = "server shutting down") -> None:
        """Close every socket and cancel pending closes."""
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        for channel in self.channels.values():
            if channel.session is not None:
                channel.session.close(code, message)
