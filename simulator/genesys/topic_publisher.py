"""Turn model changes into notification messages on the topics they affect.

User and membership topics go out at once. Queue observation topics go out on
change but at most once per ``min_interval`` per topic, like Genesys'
analytics topics: the first change is sent at once, later ones within the
window are folded into one message sent when the window ends, built from the
state at that moment (so the last state always goes out).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from simulator.genesys import payloads
from simulator.genesys import topics as t
from simulator.genesys.channels import Hub
from simulator.model import (
    AgentChange,
    Change,
    ContactCentreModel,
    ConversationChange,
    MembershipChange,
    QueueChange,
)


class TopicPublisher:
    """Listen to the model and publish what changed to the hub."""

    def __init__(
        self,
        model: ContactCentreModel,
        hub: Hub,
        min_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.model = model
        self.hub = hub
        self.min_interval = min_interval
        self.clock = clock
        self._last_sent: dict[str, float] = {}
        self._pending: dict[str, list[bool]] = {}  # queue id -> [observations, interval]
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        """Start listening (call from the event loop that will run the trailing sends)."""
        self._loop = asyncio.get_running_loop()
        if self.on_changes not in self.model.listeners:
            self.model.listeners.append(self.on_changes)

    def stop(self) -> None:
        """Stop listening and drop scheduled sends."""
        if self.on_changes in self.model.listeners:
            self.model.listeners.remove(self.on_changes)
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        self._pending.clear()

    def on_changes(self, changes: list[Change]) -> None:
        """Publish CHANGES (the model's listener)."""
        for change in changes:
            if isinstance(change, QueueChange):
                self._queue_changed(change)
            elif isinstance(change, AgentChange):
                self._agent_changed(change)
            elif isinstance(change, MembershipChange):
                self._membership_changed(change)
            elif isinstance(change, ConversationChange):
                self._conversation_changed(change)

    # -- users ----------------------------------------------------------------

    def _agent_changed(self, change: AgentChange) -> None:
        agent = self.model.agents.get(change.user_id)
        if agent is None:
            return
        hub = self.hub
        activity = t.user_topic(agent.id, "activity")
        if hub.wants(activity):
            hub.publish(activity, payloads.activity_body(agent))
        if change.presence and hub.wants(t.user_topic(agent.id, "presence")):
            hub.publish(t.user_topic(agent.id, "presence"), payloads.presence_body(agent))
        if change.routing and hub.wants(t.user_topic(agent.id, "routingStatus")):
            hub.publish(t.user_topic(agent.id, "routingStatus"), payloads.routing_status_body(agent))
        changed = {"presence"} if change.presence else set()
        if change.routing:
            changed.add("routingStatus")
        for topic, kinds in list(hub.combined_topics(agent.id).items()):
            if kinds & changed:
                hub.publish(topic, payloads.combined_body(agent, kinds))

    def _membership_changed(self, change: MembershipChange) -> None:
        topic = t.queue_users(change.queue_id)
        if self.hub.wants(topic):
            self.hub.publish(topic, payloads.membership_body(change.queue_id, change.user_id, change.joined))
        agent = self.model.agents.get(change.user_id)
        activity = t.user_topic(change.user_id, "activity")
        if agent is not None and self.hub.wants(activity):
            self.hub.publish(activity, payloads.activity_body(agent))

    # -- conversations ----------------------------------------------------------

    def _conversation_changed(self, change: ConversationChange) -> None:
        contact, hub = change.contact, self.hub
        topic = t.queue_conversations(contact.queue_id)
        if change.event in ("customer.start", "user.start", "acd.end", "customer.end", "user.end") and hub.wants(topic):
            hub.publish(topic, payloads.conversation_body(contact))
        body = None
        for entity_id in (contact.id, contact.queue_id):
            exact = t.detail_event(entity_id, change.event)
            wildcard = t.detail_wildcard(entity_id)
            if hub.wants(exact) or hub.wants(wildcard):
                body = body or payloads.detail_event_body(contact, change.event, change.time)
                hub.publish(exact, body, also=wildcard)

    # -- queue observations (throttled) -------------------------------------------

    def _queue_changed(self, change: QueueChange) -> None:
        if not self.hub.wants(t.queue_observations(change.queue_id)):
            return
        flags = self._pending.setdefault(change.queue_id, [False, False])
        flags[0] = flags[0] or change.observations
        flags[1] = flags[1] or change.interval
        if change.queue_id in self._timers:
            return  # a trailing send is already booked and will carry this change
        wait = self._last_sent.get(change.queue_id, -float("inf")) + self.min_interval - self.clock()
        if wait <= 0 or self._loop is None:
            self._send_queue(change.queue_id)
        else:
            self._timers[change.queue_id] = self._loop.call_later(wait, self._trailing, change.queue_id)

    def _trailing(self, queue_id: str) -> None:
        self._timers.pop(queue_id, None)
        self._send_queue(queue_id)

    def _send_queue(self, queue_id: str) -> None:
        observations, interval = self._pending.pop(queue_id, (False, False))
        queue = self.model.queues.get(queue_id)
        topic = t.queue_observations(queue_id)
        if queue is None or not self.hub.wants(topic):
            return
        self._last_sent[queue_id] = self.clock()
        if observations:
            for body in payloads.instant_observation_bodies(self.model, queue):
                self.hub.publish(topic, body)
        if interval:
            self.hub.publish(topic, payloads.interval_body(queue))
