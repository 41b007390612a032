"""Genesys Cloud CX: what differs from the shared loop (URLs, auth, topics, the REST snapshot).

Topics per watched queue: its observations and its member changes; per member
agent: the user's activity (presence and routing status together). Members
are found through the members REST call; one who joins later gets a topic of
its own at once (POST subscriptions) and its state fetched. More than 1,000
topics are split across channels, one socket each.

The connector routes frames and composes the parts beside it: ``channels``
(the REST side of channels and their topics), ``members`` (who is in the
watched queues, and newcomers welcomed), ``reads`` (the snapshot's REST
reads), ``media`` (per-media totals) and the pure parsers.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp

from streams.events import AgentStatus, Event, QueueMembership, QueueStats, SourceSnapshot
from streams.link.connector import Connector
from streams.link.liveness import Heartbeats
from streams.link.sockets import Link, Socket
from streams.link.timing import Timing
from streams.log_safe import safe_text
from streams.oauth import TokenProvider
from streams.vendors.genesys import reads
from streams.vendors.genesys.channels import Channels
from streams.vendors.genesys.media import MediaTotals
from streams.vendors.genesys.members import QueueMembers
from streams.vendors.genesys.parsers import parse_frame
from streams.vendors.genesys.queue_metrics import QueuePart
from streams.vendors.genesys.replies import Member
from streams.vendors.genesys.rest import GenesysRest, RestError
from streams.vendors.genesys.subscriptions import TOPIC_LIMIT, agent_topic, batches, queue_topics
from streams.vendors.spec import ConnectionSpec

log = logging.getLogger(__name__)


class GenesysConnector(Connector):
    """Stream one Genesys Cloud org's queues and agents."""

    kind = "genesys"
    liveness = Heartbeats(ping_frame='{"message": "ping"}')

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tokens: TokenProvider | None = None
        self.rest: GenesysRest | None = None
        self.queue_members = QueueMembers(self, self._members_of)
        self._resubscribe: set[str] = set()  # channel ids the server dropped
        self._token_revoked = False
        # Queue figures arrive per media type: the totals are kept here.
        self.media = MediaTotals()
        self.channels = Channels(self._api, self._topics_rejected)

    # -- resources -----------------------------------------------------------------------

    async def start(self) -> None:
        """Create the HTTP session, token provider and REST client."""
        self.open_session()
        self.tokens = TokenProvider(
            self.spec.settings.login_base,
            self.spec.settings.client_id,
            self.spec.settings.client_secret,
            session=self.session,
            cache=self.token_cache,
            timeout=self.timing.rest_timeout,
            on_refresh=self.token_refreshed,
        )
        self.rest = rest_client(self.spec, self.tokens, self.session, self.timing)

    def _api(self) -> GenesysRest:
        if self.rest is None:
            raise RuntimeError("the connector is not running")
        return self.rest

    @property
    def members(self) -> dict[str, set[str]]:
        """Watched queue → the agents who are joined members of it, as last seen."""
        return self.queue_members.by_queue

    # -- the link ------------------------------------------------------------------------

    def desired_topics(self) -> list[str]:
        """Return every topic the watched queues need, queues first, in a stable order."""
        topics = [t for q in self.spec.queue_ids for t in queue_topics(q)]
        return topics + [agent_topic(a) for a in self.queue_members.agents()]

    async def open_link(self) -> Link:
        """Create channels for every topic (1,000 a channel), subscribe them and open their sockets."""
        unknown = [q for q in self.spec.queue_ids if q not in self.members]
        if unknown:
            await self.queue_members.load(unknown)
        for queue_id in list(self.members):
            if queue_id not in self.spec.queue_ids:
                del self.members[queue_id]
        topics = self.desired_topics()
        link = Link()
        try:
            for chunk in batches(topics, TOPIC_LIMIT) or [[]]:
                link.sockets.append(await self._open_channel(chunk))
        except BaseException:
            await asyncio.gather(*(s.ws.close() for s in link.sockets), return_exceptions=True)
            raise
        return link

    async def _open_channel(self, topics: list[str]) -> Socket:
        channel, uri, expires = await self.channels.create(topics)
        # connectUri is used exactly as returned: no token, no header.
        return await self.connect_socket(uri, name=channel.id, expires_at=expires, data=channel)

    async def retire_link(self, link: Link) -> None:
        """Unsubscribe the channels of a replaced link, so the vendor stops publishing to them."""
        if self.rest is None or self.session is None or self.session.closed:
            return
        for socket in link.sockets:
            await self.channels.unsubscribe(socket.data)

    def _topics_rejected(self, rejected: list[Any]) -> None:
        self.health.count("topic_rejected", len(rejected))
        example = safe_text(rejected[0], 200)
        self.health.record_error(f"{len(rejected)} topics rejected, e.g. {example}")
        log.warning("%s: %d topics rejected, e.g. %s", self, len(rejected), example)

    async def sync_topics(self) -> None:
        """Make the current link carry exactly ``desired_topics()``, opening channels if they overflow."""
        link = self.link
        if link is None:
            return
        channels = [socket.data for socket in link.sockets]
        for chunk in await self.channels.sync(channels, self.desired_topics()):
            self.add_socket(await self._open_channel(chunk))

    async def apply_update(self, old: ConnectionSpec, new: ConnectionSpec) -> None:
        """Load members of newly watched queues and resubscribe the link to match."""
        for queue_id in set(self.members) - set(new.queue_ids):
            del self.members[queue_id]
        added = [q for q in new.queue_ids if q not in self.members]
        if added:
            await self.queue_members.load(added)
        await self.sync_topics()

    # -- frames --------------------------------------------------------------------------

    def handle(self, socket: Socket, frame: str | bytes) -> None:
        """Interpret one notification frame."""
        notice = parse_frame(self.spec.source, frame)
        kind = notice.kind
        if kind == "heartbeat":
            self.alive(socket, pong=False)
        elif kind == "pong":
            self.alive(socket, pong=True)
        elif kind == "events":
            for event in notice.events:
                self._route(event)
        elif kind == "socket_closing":
            if self.is_current(socket):
                self.request_rollover("the server is closing the socket")
        elif kind == "no_longer_subscribed":
            self._resubscribe.add(notice.target or socket.data.id)
            self.wake()
        elif kind == "token_revoked":
            self._token_revoked = True
            self.wake()
        elif kind in ("malformed", "unknown"):
            self.health.count("malformed" if kind == "malformed" else "unknown_topic")
            log.debug(
                "%s: skipped a %s frame (%s %s)", self, kind, safe_text(notice.topic, 200), safe_text(notice.detail)
            )
        else:
            self.health.count("metadata")

    def _route(self, event: Event | QueuePart) -> None:
        """Emit EVENT if it concerns what is watched; track memberships on the way."""
        watched = self.members
        if isinstance(event, QueuePart):
            if event.stats.queue_id not in watched:
                self.health.count("unwatched")
                return
        elif isinstance(event, AgentStatus):
            if not any(event.agent_id in agents for agents in watched.values()):
                self.health.count("unwatched")
                return
        elif isinstance(event, QueueMembership):
            tracked = self.queue_members.note(event)
            if not tracked:
                self.health.count("unwatched")
                return
            # A change that seems to change nothing is still passed on: during a snapshot the member
            # sets are about to be replaced by what REST said earlier, and the Floor ignores repeats.
        self.emit(event)

    def prepare(self, item: Event | QueuePart) -> Event:
        """Turn a queue's media part into the queue's totals, at delivery (after any snapshot it waited for)."""
        if isinstance(item, QueuePart):
            return self.media.add(item)
        return item

    # -- work queued by frames -----------------------------------------------------------

    async def maintain(self) -> None:
        """Act on revoked tokens, dropped subscriptions and new members."""
        if self._token_revoked:
            self._token_revoked = False
            if self.tokens is not None:
                await self.tokens.forget()
            # The new link subscribes everything afresh and its snapshot covers every newcomer.
            self._resubscribe.clear()
            self.queue_members.joiners.clear()
            self.request_rollover("the token was revoked")
            return
        if self._resubscribe and self.link is not None:
            dropped, self._resubscribe = self._resubscribe, set()
            await self.channels.resubscribe([socket.data for socket in self.link.sockets], dropped)
            self.request_resync("resubscribed after the server dropped the subscriptions")
        if self.queue_members.joiners:
            await self.queue_members.welcome()

    # -- the snapshot --------------------------------------------------------------------

    async def snapshot(self) -> SourceSnapshot:
        """Return queues (names, observations, interval numbers) and member agents, over REST."""
        source = self.spec.source
        queue_ids = list(self.spec.queue_ids)
        names, parts = await reads.queue_parts(self._api(), source, queue_ids)
        joined = await reads.joined_members(queue_ids, self._members_of)
        # Joins and leaves that arrived while REST was read are newer than it: replay them in order.
        reads.replay_memberships(joined.by_queue, self.buffered())
        self.media.keep_only(queue_ids)
        queues = {
            queue_id: QueueStats(
                source=source, queue_id=queue_id, **({"name": names.get(queue_id)} | self.media.replace(queue_id, got))
            )
            for queue_id, got in parts.items()
        }
        self.queue_members.by_queue = joined.by_queue
        # Members who joined while nobody listened get their topics now.
        await self.sync_topics()
        return SourceSnapshot(source=source, queues=queues, agents=joined.statuses())

    async def _members_of(self, queue_id: str) -> list[Member]:
        try:
            return await reads.members(self._api(), self.spec.source, queue_id)
        except RestError as exc:
            if exc.status != 404:
                raise
            # A queue deleted at the vendor must not keep the others from streaming.
            self.health.count("queue_not_found")
            self.health.record_error(f"queue {queue_id} not found")
            log.warning("%s: queue %s not found at the vendor", self, queue_id)
            return []


def rest_client(
    spec: ConnectionSpec, tokens: TokenProvider, session: aiohttp.ClientSession, timing: Timing
) -> GenesysRest:
    """Return the REST client of SPEC's org, signed in by TOKENS, with TIMING's timeouts and waits."""
    return GenesysRest(
        spec.settings.api_base,
        tokens,
        session,
        timeout=timing.rest_timeout,
        default_retry_after=timing.default_retry_after,
        max_retry_after=timing.max_retry_after,
    )
