"""ContactCentreModel: the seeded contact-centre model, built and acted on; its parts live beside it.

It is a discrete-event simulation on wall-clock time. Everything that will
happen (the next arrival, an abandon, the end of a call) sits in a heap with
its due time, drawn from one seeded RNG when it is scheduled; ``step(now)``
runs every event due by ``now`` in time order and stamps each change with the
event's own time. So the same seed and the same calls give the same history,
however often the server happens to tick.

Life of a contact: it arrives in a queue (Poisson, ``rate`` per second over
all queues) and waits; it is offered (alerting) to the longest-idle member on
queue; the agent answers after a few seconds (rarely not: the agent becomes
NOT_RESPONDING and the contact waits again); the call lasts about
``handle_mean``; the agent does wrap-up (ACW) and becomes idle. A waiting or
alerting contact abandons when its patience runs out. Agents change presence
now and then; anything but On Queue takes them off queue.

Every change is reported to the listeners as a list of ``Change`` values at the
end of the call that made it; the notification side turns them into topics.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from typing import Any

from simulator import names
from simulator.model.agent_status import AgentStatus
from simulator.model.changes import Change, ChangeReporting, Listener, MembershipChange
from simulator.model.clock import EventClock
from simulator.model.entities import CAMPAIGNS, IDLE, OFF_QUEUE, Contact, ModelConfig, SimAgent, SimQueue
from simulator.model.routing import ContactRouting
from simulator.model.truth import GroundTruth
from simulator.presence import canonical
from simulator.timefmt import interval_start, ms


class ContactCentreModel(EventClock, ContactRouting, AgentStatus, GroundTruth, ChangeReporting):
    """Simulate queues, agents and contacts; report every change to the listeners.

    This class builds the model and takes the explicit actions (tests, the
    control endpoint); its clock, contact routing, agent status, truth and
    change reporting are the parts it is made of, one module each.
    """

    def __init__(
        self,
        config: ModelConfig | None = None,
        *,
        start: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config or ModelConfig()
        self.clock = clock
        self.rng = random.Random(self.config.seed)
        # Dispositions draw from their own RNG, so adding them left the main sequence (and every
        # history a seed gives) as it was.
        self.labels_rng = random.Random(self.config.seed + 7919)
        self.now = ms(clock() if start is None else start)
        self.paused = False
        self.paused_at: float | None = None
        self.listeners: list[Listener] = []
        self.queues: dict[str, SimQueue] = {}
        self.agents: dict[str, SimAgent] = {}
        self.contacts: dict[str, Contact] = {}
        self.interval_start = interval_start(self.now)
        self.events_processed = 0
        self._heap: list[tuple[float, int, str, Any, int, float]] = []
        self._seq = 0
        self._contact_order = 0
        self._arrival_epoch = 0
        self._changes: list[Change] = []
        self._queue_changes: dict[str, list[bool]] = {}
        self._build()

    # -- construction -------------------------------------------------------

    def new_id(self) -> str:
        """Return a UUID-shaped id drawn from the model's RNG (stable for a seed)."""
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _build(self) -> None:
        cfg, rng, now = self.config, self.rng, self.now
        for name in names.queue_names(cfg.queues):
            queue = SimQueue(
                id=self.new_id(),
                name=name,
                media_type="message" if "Chat" in name else "voice",
                weight=rng.uniform(0.5, 1.5),
                sl_threshold=cfg.sl_threshold,
                sl_target=cfg.sl_target,
                number=1000 + len(self.queues) + 1,
            )
            campaign = CAMPAIGNS[len(self.queues) % len(CAMPAIGNS)]
            queue.campaign_id = campaign.lower().replace(" ", "-")
            queue.campaign_name = campaign
            queue.reset_interval(self.interval_start)
            self.queues[queue.id] = queue
        queue_ids = list(self.queues)
        for name in names.person_names(rng, cfg.agents):
            agent_id = self.new_id()
            member_of = set(rng.sample(queue_ids, min(len(queue_ids), rng.randint(1, 3)))) if queue_ids else set()
            since = ms(now - rng.uniform(60, 3600))
            if rng.random() < cfg.on_queue_share:
                presence, routing, routing_since = "on_queue", IDLE, ms(since + rng.uniform(0, now - since))
            else:
                presence, routing, routing_since = rng.choice(("available", "break", "meal", "away")), OFF_QUEUE, since
            self.agents[agent_id] = SimAgent(
                agent_id, name, member_of, presence, since, routing, routing_since, number=5000 + len(self.agents) + 1
            )
            for queue_id in member_of:
                self.queues[queue_id].member_ids.add(agent_id)
        # Every queue gets at least one member, so no queue is unanswerable by construction.
        for queue in self.queues.values():
            if not queue.member_ids and self.agents:
                agent = rng.choice(list(self.agents.values()))
                agent.queue_ids.add(queue.id)
                queue.member_ids.add(agent.id)
        self._schedule_arrival(now)
        if cfg.presence_change_mean > 0:
            for agent in self.agents.values():
                self._schedule_presence(agent, now)

    # -- explicit actions (tests, the control endpoint) ---------------------

    def arrive(self, queue_id: str, now: float | None = None) -> Contact:
        """Put a new contact into QUEUE_ID now (routing it at once if a member is idle) and return it."""
        queue = self.queues[queue_id]
        t = self._at(now)
        contact = self._enter_queue(queue, t)
        self._dispatch(t, {queue.id})
        self._flush()
        return contact

    def set_presence(self, user_id: str, presence: str, now: float | None = None) -> SimAgent:
        """Set an agent's presence now (any spelling: ``BREAK``, ``OnQueue``, ``on_queue``); return the agent."""
        agent = self.agents[user_id]
        value = canonical(presence)
        t = self._at(now)
        self._set_presence(agent, value, t)
        self._dispatch(t, set(agent.queue_ids))
        self._flush()
        return agent

    def set_membership(self, user_id: str, queue_id: str, joined: bool, now: float | None = None) -> SimAgent:
        """Add an agent to a queue or remove it; return the agent."""
        agent, queue = self.agents[user_id], self.queues[queue_id]
        t = self._at(now)
        if joined != (queue_id in agent.queue_ids):
            if joined:
                agent.queue_ids.add(queue_id)
                queue.member_ids.add(user_id)
            else:
                agent.queue_ids.discard(queue_id)
                queue.member_ids.discard(user_id)
            self._changes.append(MembershipChange(queue_id, user_id, joined))
            self._queue_changed(queue_id)
            self._dispatch(t, {queue_id})
        self._flush()
        return agent

    def set_rate(self, rate: float, now: float | None = None) -> None:
        """Change the arrival rate (contacts per second over all queues) from now on."""
        if rate < 0:
            raise ValueError("the rate cannot be negative")
        t = self._at(now)
        self.config.rate = rate
        self._schedule_arrival(t)
        self._flush()
