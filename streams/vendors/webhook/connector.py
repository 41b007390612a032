"""Webhooks: what a platform posted to ``/hooks/<slug>/``, read back from the hook queue in the worker.

The web process checked each delivery and queued its new records
(``streams.webhooks``); this connector's one "socket" is a reader of that
queue (``streams.hook_queue``), so the shared loop gives it reconnects and
backoff for free. There is nothing to prove alive (``liveness = SelfReported()``: the
reader raises ``LinkLost`` when the queue fails) and no REST snapshot.

Each queued item is either

- a record, mapped like every generic feed's with ``RecordFolder`` (upsert
  by interaction id, stale ones dropped, terminal types end the row); or
- an Amazon EventBridge envelope carrying a Genesys notification, whose
  ``detail`` has the shape of a notification-socket message: it is parsed by
  ``genesys_parsers.parse_message`` exactly as the Genesys connector parses its
  socket, and queue figures (per media type) are summed by ``MediaTotals``.

Records and figures for queues nobody watches are dropped and counted (a
record that names no queue is kept, as with the other feeds). With
no member list from REST, an agent counts as watched while a notification
(``activeQueueIds`` of the activity topic, or a queue's membership topic)
says it is in a watched queue.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from typing import Any

from streams import sanity
from streams.events import AgentStatus, Event, QueueMembership, reported
from streams.feeds.mapped import MappedFeed
from streams.hook_queue import HookQueue, get_hook_queue
from streams.leases import new_owner_id
from streams.link.liveness import SelfReported
from streams.link.sockets import Link, Socket
from streams.link.timing import Timing
from streams.vendors.genesys.media import MediaTotals
from streams.vendors.genesys.parsers import ParseError, QueuePart, parse_message, parse_time
from streams.vendors.spec import ConnectionSpec
from streams.webhooks import is_envelope

log = logging.getLogger(__name__)

MAX_AGENTS = 100_000  # agents tracked as members of watched queues
MAX_TOPICS = 100_000  # topics whose last notification time is remembered


class WebhookConnector(MappedFeed):
    """Apply the records (and EventBridge notifications) a platform posted to one webhook connection."""

    kind = "webhook"
    liveness = SelfReported()
    default_timing = Timing(backoff_cap=30.0)

    def __init__(self, *args: Any, queue: HookQueue | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = queue
        # Unique to this connector: a successor claims whatever it leaves pending.
        self.consumer = f"{new_owner_id()}:{self.spec.source}"
        self.media = MediaTotals()
        self.items = 0  # records and envelopes handled
        # Agent → the watched queues it is in, as the notifications last said.
        self._agents: dict[str, frozenset[str]] = {}
        # Topic → the time of its latest notification applied (EventBridge does not promise order).
        self._topic_times: OrderedDict[str, float] = OrderedDict()

    # -- the link ------------------------------------------------------------------------

    async def start(self) -> None:
        """Find the process-wide hook queue unless one was given (no HTTP session, no token: nothing is dialled)."""
        if self.queue is None:
            self.queue = get_hook_queue()

    async def open_link(self) -> Link:
        """Open a reader of this source's queue: the link's one socket (``start`` found the queue)."""
        reader = self.queue.reader(self.spec.source, self.consumer)
        # An unreachable queue fails here, before the link counts as live.
        await reader.open()
        return Link(sockets=[Socket(reader, name="hook queue", expires_at=None)])

    async def apply_update(self, old: ConnectionSpec, new: ConnectionSpec) -> None:
        """Take rows of queues no longer watched off the board; the reader itself needs no change.

        Unlike a feed that is dialled, nothing is asked of the platform: no new link.
        """
        self.drop_unwatched(new)
        self.media.keep_only(new.queue_ids)
        for agent_id, queues in list(self._agents.items()):
            kept = queues & self._watched
            if kept != queues:
                self._track(agent_id, kept)
                self.emit(AgentStatus(source=new.source, agent_id=agent_id, queue_ids=kept))

    # -- frames --------------------------------------------------------------------------

    def handle(self, socket: Socket, frame: str | bytes) -> None:
        """Apply one queued delivery: a JSON list of records and envelopes, in the order they were posted."""
        try:
            items = json.loads(frame)
        except (ValueError, RecursionError):
            self.bad.note("malformed", frame)
            return
        if not isinstance(items, list):
            self.bad.note("malformed", frame)
            return
        records: list[Any] = []
        for item in items:
            self.items += 1
            if isinstance(item, dict) and is_envelope(item):
                # Records before it go first: the order of the delivery is kept.
                self.take_records(records)
                records = []
                try:
                    self._envelope(item)
                except Exception:
                    # One item that trips a bug costs that item, never the rest of the delivery.
                    self.health.count("handler_error")
                    log.exception("%s: an envelope could not be applied; the delivery goes on", self)
            else:
                records.append(item)
        self.take_records(records)

    def prepare(self, item: Event | QueuePart) -> Event:
        """Turn a queue's media part into the queue's totals, at delivery."""
        if isinstance(item, QueuePart):
            return self.media.add(item)
        return item

    # -- EventBridge ---------------------------------------------------------------------

    def _envelope(self, envelope: dict[str, Any]) -> None:
        detail = envelope.get("detail")
        if not isinstance(detail, dict) or not isinstance(detail.get("topicName"), str):
            self.bad.note("malformed", "an envelope without detail.topicName")
            return
        topic = detail["topicName"]
        stale, moment = self._ordered(topic, detail.get("timestamp"))
        if stale:
            self.health.count("stale")
            return
        # ``detail`` is a notification-socket message: parse it as the Genesys connector parses its socket.
        notice = parse_message(self.spec.source, detail)
        kind = notice.kind
        if kind == "events":
            # Only a notification that was read moves its topic's cursor.
            self._remember(topic, moment)
            body = detail.get("eventBody")
            for event in notice.events:
                self._route_notification(event, body if isinstance(body, dict) else {})
        elif kind in ("malformed", "unknown"):
            if kind == "malformed":
                self.bad.note("malformed", f"{notice.topic}: {notice.detail}")
            else:
                self.health.count("unknown_topic")
        else:
            # Heartbeats and system topics concern sockets; through EventBridge they mean nothing.
            self.health.count("metadata")

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

    def _route_notification(self, event: Event | QueuePart, body: dict[str, Any]) -> None:
        """Emit EVENT if it concerns what is watched; learn which agents are in watched queues."""
        watched = self._watched
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
