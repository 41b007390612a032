"""Genesys notifications forwarded through Amazon EventBridge (posted to a webhook connection).

Genesys can forward the messages of its notification service to EventBridge,
which delivers them in envelopes; a platform posts those to a webhook, and
the webhook connector (``streams.vendors.webhook``) hands each envelope here.
An envelope's ``detail`` has the shape of a notification-socket message, so
it is parsed by ``parsers.parse_message`` exactly as the socket connector
parses its frames, and queue figures (per media type) are summed by
``MediaTotals`` as there.

What differs from the socket is where membership comes from. The socket
connector asks REST who the members of each watched queue are and follows
their changes; nothing here can ask REST, so an agent counts as watched
while a notification says it is in a watched queue: ``activeQueueIds`` of
the activity topic, or a queue's membership topic. And EventBridge does not
promise order, so a notification older than one already applied on its
topic is dropped as stale.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from streams import sanity
from streams.events import AgentStatus, Event, QueueMembership, reported
from streams.health import LinkHealth
from streams.vendors.genesys.media import MediaTotals
from streams.vendors.genesys.parsers import parse_message
from streams.vendors.genesys.queue_metrics import QueuePart
from streams.vendors.genesys.values import ParseError, parse_time

MAX_AGENTS = 100_000  # agents tracked as members of watched queues
MAX_TOPICS = 100_000  # topics whose last notification time is remembered


class EventBridgeNotifications:
    """Apply EventBridge envelopes carrying Genesys notifications for one source and its watched queues.

    EMIT takes what concerns the watched queues (queue parts too: ``prepare``
    turns them into totals at delivery); MALFORMED is told of each unusable
    envelope; HEALTH counts the rest of what is dropped.
    """

    def __init__(
        self,
        source: str,
        queue_ids: Iterable[str],
        *,
        emit: Callable[[Event | QueuePart], None],
        malformed: Callable[[str], None],
        health: LinkHealth,
    ) -> None:
        self.source = source
        self.watched = frozenset(queue_ids)
        self.emit = emit
        self.malformed = malformed
        self.health = health
        self.media = MediaTotals()
        # Agent → the watched queues it is in, as the notifications last said.
        self._agents: dict[str, frozenset[str]] = {}
        # Topic → the time of its latest notification applied (EventBridge does not promise order).
        self._topic_times: OrderedDict[str, float] = OrderedDict()

    def apply(self, envelope: dict[str, Any]) -> None:
        """Apply one envelope: parse its ``detail`` as a socket message and emit what is watched."""
        detail = envelope.get("detail")
        if not isinstance(detail, dict) or not isinstance(detail.get("topicName"), str):
            self.malformed("an envelope without detail.topicName")
            return
        topic = detail["topicName"]
        stale, moment = self._ordered(topic, detail.get("timestamp"))
        if stale:
            self.health.count("stale")
            return
        notice = parse_message(self.source, detail)
        kind = notice.kind
        if kind == "events":
            # Only a notification that was read moves its topic's cursor.
            self._remember(topic, moment)
            body = detail.get("eventBody")
            for event in notice.events:
                self._route(event, body if isinstance(body, dict) else {})
        elif kind in ("malformed", "unknown"):
            if kind == "malformed":
                self.malformed(f"{notice.topic}: {notice.detail}")
            else:
                self.health.count("unknown_topic")
        else:
            # Heartbeats and system topics concern sockets; through EventBridge they mean nothing.
            self.health.count("metadata")

    def prepare(self, item: Event | QueuePart) -> Event:
        """Turn a queue's media part into the queue's totals, at delivery."""
        if isinstance(item, QueuePart):
            return self.media.add(item)
        return item

    def watch(self, source: str, queue_ids: tuple[str, ...]) -> None:
        """Watch QUEUE_IDS from now on: agents keep only the watched queues they are in (emitted when that changes)."""
        self.watched = frozenset(queue_ids)
        self.media.keep_only(queue_ids)
        for agent_id, queues in list(self._agents.items()):
            kept = queues & self.watched
            if kept != queues:
                self._track(agent_id, kept)
                self.emit(AgentStatus(source=source, agent_id=agent_id, queue_ids=kept))

    def _ordered(self, topic: str, stamp: Any) -> tuple[bool, float | None]:
        """Return whether a notification on TOPIC stamped STAMP is older than one already applied, and the
        time its topic's cursor moves to once it is applied (None: it moves no cursor)."""
        try:
            seconds = parse_time(stamp)
        except ParseError:
            seconds = None
        # Ordered as if stamped now when far ahead: one notification from the year 5138 must not make
        # every later one on its topic look stale. Nor is that *now* remembered: it would make every
        # real notification stamped before this one was processed (a queue backlog, latency) stale.
        moment = sanity.ordering(seconds)
        if moment is None:
            return False, None
        last = self._topic_times.get(topic)
        if last is not None and moment < last:
            return True, None
        return False, (seconds if moment == seconds else None)

    def _remember(self, topic: str, moment: float | None) -> None:
        if moment is None:
            return
        self._topic_times[topic] = moment
        self._topic_times.move_to_end(topic)
        if len(self._topic_times) > MAX_TOPICS:
            self._topic_times.popitem(last=False)

    def _route(self, event: Event | QueuePart, body: dict[str, Any]) -> None:
        """Emit EVENT if it concerns what is watched; learn which agents are in watched queues."""
        watched = self.watched
        if isinstance(event, QueuePart):
            if event.stats.queue_id not in watched:
                self.health.count("unwatched")
                return
            self.emit(event)
        elif isinstance(event, AgentStatus):
            active = body.get("activeQueueIds")
            known = event.agent_id in self._agents
            if isinstance(active, list):
                queues = frozenset(q for q in active if isinstance(q, str) and q in watched)
                if not queues and not known:
                    self.health.count("unwatched")
                    return
                if not self._track(event.agent_id, queues):
                    return
                event = AgentStatus(
                    source=event.source, agent_id=event.agent_id, **(reported(event) | {"queue_ids": queues})
                )
            elif not known:
                self.health.count("unwatched")
                return
            self.emit(event)
        elif isinstance(event, QueueMembership):
            if event.queue_id not in watched:
                self.health.count("unwatched")
                return
            queues = self._agents.get(event.agent_id, frozenset())
            queues = queues | {event.queue_id} if event.joined else queues - {event.queue_id}
            if self._track(event.agent_id, queues):
                self.emit(event)
        else:
            self.emit(event)

    def _track(self, agent_id: str, queues: frozenset[str]) -> bool:
        """Remember AGENT_ID's watched queues; return False (counted) when too many agents are tracked.

        An agent in no watched queue is forgotten once that is passed on: it is no longer watched.
        """
        if not queues:
            self._agents.pop(agent_id, None)
            return True
        if agent_id not in self._agents and len(self._agents) >= MAX_AGENTS:
            self.health.count("too_many_agents")
            return False
        self._agents[agent_id] = queues
        return True
