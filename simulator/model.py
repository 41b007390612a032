"""The contact-centre model behind the simulator: queues, agents, contacts, and their ground truth.

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

import bisect
import heapq
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from simulator import names
from simulator.presence import SYSTEM_PRESENCES, canonical
from simulator.timefmt import interval_start, ms

log = logging.getLogger(__name__)

OFF_QUEUE, IDLE, INTERACTING, NOT_RESPONDING = "OFF_QUEUE", "IDLE", "INTERACTING", "NOT_RESPONDING"

# Where an agent on queue goes when it leaves, and how likely each is.
_LEAVE_QUEUE = (("break", 40), ("meal", 15), ("away", 15), ("available", 15), ("meeting", 8), ("training", 7))
# Where an agent off queue goes next: mostly back on queue.
_RETURN = (("on_queue", 85), ("available", 10), ("away", 5))


@dataclass
class ModelConfig:
    """The knobs of the model; the defaults make a plausible small contact centre."""

    queues: int = 4
    agents: int = 20
    rate: float = 0.5  # new contacts per second across all queues
    seed: int = 1
    handle_mean: float = 30.0  # seconds connected, mean
    acw_range: tuple[float, float] = (2.0, 8.0)  # wrap-up seconds
    alert_range: tuple[float, float] = (2.0, 6.0)  # seconds until the agent answers
    alert_timeout: float = 8.0  # seconds before an unanswered offer is taken back
    not_responding_probability: float = 0.02
    not_responding_range: tuple[float, float] = (10.0, 30.0)  # seconds until the agent is back
    patience_mean: float = 60.0  # seconds a caller waits before abandoning, mean
    presence_change_mean: float = 240.0  # seconds between an agent's presence changes, mean; 0 turns them off
    sl_threshold: float = 20.0  # answered within this many seconds counts towards service level
    sl_target: float = 0.8
    on_queue_share: float = 0.8  # agents on queue at the start


@dataclass(eq=False)
class Contact:
    """One inbound contact (a Genesys conversation) while it is in the queue or with an agent."""

    id: str
    queue_id: str
    media_type: str
    start: float  # when it entered the queue (epoch seconds, ms precision)
    participant_name: str
    ani: str
    dnis: str
    session_id: str
    customer_participant_id: str
    acd_participant_id: str
    agent_participant_id: str
    state: str = "waiting"  # waiting, alerting, interacting, acw, ended
    number: int = 0  # a numeric id, for vendors with numeric contact ids (CXone)
    disposition: str | None = None  # chosen by the agent at wrap-up
    updated_at: float = 0.0  # when anything about the contact last changed
    agent_id: str | None = None
    offered_at: float | None = None
    connected_at: float | None = None
    ended_at: float | None = None
    abandon_at: float | None = None  # when the caller's patience runs out
    abandoned: bool = False
    order: int = 0  # arrival order: breaks ties between equal start times
    epoch: int = 0  # bumped on every state change; scheduled events carry the epoch they expect


@dataclass(eq=False)
class SimQueue:
    """One routing queue and the live and interval numbers behind its statistics."""

    id: str
    name: str
    media_type: str
    weight: float
    sl_threshold: float
    sl_target: float
    number: int = 0  # a numeric id, for vendors with numeric skill ids (CXone)
    campaign_id: str = ""
    campaign_name: str = ""
    member_ids: set[str] = field(default_factory=set)
    waiting: list[Contact] = field(default_factory=list)  # oldest first
    alerting: dict[str, Contact] = field(default_factory=dict)
    interacting: dict[str, Contact] = field(default_factory=dict)
    interval_start: float = 0.0
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    sl_numerator: int = 0
    sl_denominator: int = 0
    answered_wait_ms: list[int] = field(default_factory=lambda: [0, 0])  # sum, max
    abandon_wait_ms: list[int] = field(default_factory=lambda: [0, 0])  # sum, max

    def reset_interval(self, start: float) -> None:
        """Start a new 30-minute interval with zeroed aggregates."""
        self.interval_start = start
        self.offered = self.answered = self.abandoned = self.sl_numerator = self.sl_denominator = 0
        self.answered_wait_ms = [0, 0]
        self.abandon_wait_ms = [0, 0]


@dataclass(eq=False)
class SimAgent:
    """One agent (a Genesys user) with presence, routing status and queue memberships."""

    id: str
    name: str
    queue_ids: set[str]
    presence: str
    presence_since: float
    routing_status: str
    routing_since: float
    number: int = 0  # a numeric id, for vendors with numeric agent ids (CXone)
    phase: str | None = None  # None, "alerting", "interacting" or "acw"
    contact: Contact | None = None
    epoch: int = 0  # bumped on every engagement change
    presence_epoch: int = 0  # bumped when the presence timer is rescheduled

    @property
    def idle(self) -> bool:
        """Return whether routing may offer this agent a contact now."""
        return self.routing_status == IDLE and self.phase is None


@dataclass(frozen=True, slots=True)
class QueueChange:
    """A queue's live observations and/or its interval aggregates changed."""

    queue_id: str
    observations: bool
    interval: bool


@dataclass(frozen=True, slots=True)
class AgentChange:
    """An agent's presence and/or routing status changed."""

    user_id: str
    presence: bool
    routing: bool


@dataclass(frozen=True, slots=True)
class MembershipChange:
    """An agent joined or left a queue."""

    queue_id: str
    user_id: str
    joined: bool


@dataclass(frozen=True, slots=True)
class ConversationChange:
    """A step in a contact's life (Genesys detail-event names: acd.start, user.start, ...)."""

    contact: Contact
    event: str
    time: float


Change = QueueChange | AgentChange | MembershipChange | ConversationChange

# What the model's contact states are called on boards (and in the generic feeds' records).
INTERACTION_STATES = {"waiting": "waiting", "alerting": "alerting", "interacting": "connected", "acw": "wrapup"}
CAMPAIGNS = ("Spring Offers", "Loyalty", "Service Recovery", "Renewals Drive")
DISPOSITIONS = ("Resolved", "Sale", "Callback Requested", "Escalated", "No Sale", "Information Given")
Listener = Callable[[list[Change]], None]


class ContactCentreModel:
    """Simulate queues, agents and contacts; report every change to the listeners."""

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

    # -- the clock ----------------------------------------------------------

    def step(self, now: float | None = None) -> int:
        """Run every event due by NOW (default: the clock); return how many ran. Paused: do nothing."""
        if self.paused:
            return 0
        now = ms(self.clock() if now is None else now)
        count = 0
        while self._heap and self._heap[0][0] <= now:
            due, _, kind, target, epoch, _ = heapq.heappop(self._heap)
            self._advance(due)
            if self._handle(kind, target, epoch):
                count += 1
        self._advance(now)
        self.events_processed += count
        self._flush()
        return count

    def pause(self, now: float | None = None) -> None:
        """Freeze the model: no state changes at all until ``resume``."""
        if self.paused:
            return
        self.step(now)
        self.paused = True
        self.paused_at = self.now

    def resume(self, now: float | None = None) -> None:
        """Unfreeze the model; what was due during the pause is postponed by its length (no catch-up burst)."""
        if not self.paused:
            return
        now = ms(self.clock() if now is None else now)
        paused_at = self.paused_at if self.paused_at is not None else now
        shifted = []
        for due, seq, kind, target, epoch, scheduled_at in self._heap:
            # An event scheduled during the pause (by an explicit action) is postponed only by the rest of it.
            gap = max(0.0, now - max(paused_at, scheduled_at))
            shifted.append((ms(due + gap), seq, kind, target, epoch, scheduled_at))
        heapq.heapify(shifted)
        self._heap = shifted
        self.paused = False
        self.paused_at = None
        self._advance(max(self.now, now))
        self._flush()

    def _advance(self, t: float) -> None:
        if t < self.now:
            return
        self.now = t
        start = interval_start(t)
        if start != self.interval_start:
            self.interval_start = start
            for queue in self.queues.values():
                queue.reset_interval(start)
                self._queue_changed(queue.id, observations=False, interval=True)

    def _at(self, now: float | None) -> float:
        """Bring the model to NOW for an explicit action and return the action's time."""
        if not self.paused:
            self.step(now)
            return self.now
        # Paused: the action happens at the wall time given, but nothing that was due runs.
        t = max(self.now, ms(self.clock() if now is None else now))
        self._advance(t)
        return t

    def _schedule(self, due: float, kind: str, target: Any, epoch: int = 0) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (ms(due), self._seq, kind, target, epoch, self.now))

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

    # -- reading ------------------------------------------------------------

    def queue_truth(self, queue_id: str) -> dict[str, Any]:
        """Return the ground truth of one queue, in the shape of the Floor's queue state."""
        queue = self.queues[queue_id]
        members = [self.agents[a] for a in queue.member_ids]
        return {
            "name": queue.name,
            "waiting": len(queue.waiting),
            "interacting": len(queue.interacting),
            "alerting": len(queue.alerting),
            "longest_waiting_since": queue.waiting[0].start if queue.waiting else None,
            "on_queue_agents": sum(1 for a in members if a.routing_status != OFF_QUEUE),
            "idle_agents": sum(1 for a in members if a.routing_status == IDLE),
            "interval_start": queue.interval_start,
            "offered": queue.offered,
            "answered": queue.answered,
            "abandoned": queue.abandoned,
            "sl_numerator": queue.sl_numerator,
            "sl_denominator": queue.sl_denominator,
        }

    def agent_truth(self, user_id: str) -> dict[str, Any]:
        """Return the ground truth of one agent, in the shape of the Floor's agent state."""
        agent = self.agents[user_id]
        return {
            "name": agent.name,
            "presence": agent.presence,
            "presence_since": agent.presence_since,
            "routing_status": agent.routing_status,
            "routing_since": agent.routing_since,
            "queue_ids": sorted(agent.queue_ids),
        }

    def contact_truth(self, contact: Contact) -> dict[str, Any]:
        """Return the ground truth of one live contact, in the shape of the Floor's interaction state."""
        queue = self.queues[contact.queue_id]
        agent = self.agents.get(contact.agent_id) if contact.agent_id else None
        return {
            "media": contact.media_type,
            "queue_id": contact.queue_id,
            "state": INTERACTION_STATES.get(contact.state, contact.state),
            "agent_id": contact.agent_id,
            "agent_name": agent.name if agent else None,
            "campaign": queue.campaign_name,
            "disposition": contact.disposition,
            "started_at": contact.start,
            "number": contact.number,
        }

    def truth(self) -> dict[str, Any]:
        """Return the whole ground truth (without channels, which the server adds)."""
        return {
            "paused": self.paused,
            "time": self.now,
            "queues": {queue_id: self.queue_truth(queue_id) for queue_id in self.queues},
            "agents": {user_id: self.agent_truth(user_id) for user_id in self.agents},
            "interactions": {c.id: self.contact_truth(c) for c in self.contacts.values()},
        }

    # -- events -------------------------------------------------------------

    def _handle(self, kind: str, target: Any, epoch: int) -> bool:
        """Run one due event; return False if it had gone stale."""
        t = self.now
        if kind == "arrival":
            if epoch != self._arrival_epoch:
                return False
            queue = self._pick_queue()
            if queue is not None:
                self._enter_queue(queue, t)
                self._dispatch(t, {queue.id})
            self._schedule_arrival(t)
            return True
        if kind == "presence":
            if epoch != target.presence_epoch:
                return False
            self._presence_timer(target, t)
            return True
        if kind == "recover":
            if epoch != target.epoch or target.routing_status != NOT_RESPONDING:
                return False
            self._set_routing(target, IDLE if target.presence == "on_queue" else OFF_QUEUE, t)
            self._dispatch(t, set(target.queue_ids))
            return True
        contact: Contact = target
        if kind == "abandon":
            # Patience runs from arrival and survives offers and take-backs: no epoch to check.
            if contact.state not in ("waiting", "alerting"):
                return False
            self._abandon(contact, t)
            return True
        if epoch != contact.epoch:
            return False
        handler = {
            "answer": self._answer,
            "alert_timeout": self._alert_timeout,
            "hangup": self._hangup,
            "acw_end": self._acw_end,
        }[kind]
        handler(contact, t)
        return True

    def _pick_queue(self) -> SimQueue | None:
        queues = list(self.queues.values())
        if not queues:
            return None
        return self.rng.choices(queues, weights=[q.weight for q in queues])[0]

    def _schedule_arrival(self, t: float) -> None:
        # A new epoch makes any arrival already in the heap stale (the rate changed).
        self._arrival_epoch += 1
        if self.config.rate > 0:
            self._schedule(t + self.rng.expovariate(self.config.rate), "arrival", None, self._arrival_epoch)

    def _schedule_presence(self, agent: SimAgent, t: float, delay: float | None = None) -> None:
        agent.presence_epoch += 1
        if delay is None:
            delay = self.rng.expovariate(1.0 / self.config.presence_change_mean)
        self._schedule(t + delay, "presence", agent, agent.presence_epoch)

    def _enter_queue(self, queue: SimQueue, t: float) -> Contact:
        rng = self.rng
        self._contact_order += 1
        contact = Contact(
            id=self.new_id(),
            queue_id=queue.id,
            media_type=queue.media_type,
            start=t,
            participant_name=rng.choice(names.FIRST_NAMES) + " " + rng.choice(names.LAST_NAMES),
            ani=f"tel:+1555{rng.randrange(10**7):07d}",
            dnis=f"tel:+1800{rng.randrange(10**7):07d}",
            session_id=self.new_id(),
            customer_participant_id=self.new_id(),
            acd_participant_id=self.new_id(),
            agent_participant_id=self.new_id(),
            order=self._contact_order,
            number=700_000 + self._contact_order,
        )
        self.contacts[contact.id] = contact
        queue.offered += 1
        self._insert_waiting(queue, contact)
        contact.abandon_at = ms(t + rng.expovariate(1.0 / self.config.patience_mean))
        self._schedule(contact.abandon_at, "abandon", contact)
        self._queue_changed(queue.id, interval=True)
        self._conversation(contact, "customer.start", t)
        self._conversation(contact, "acd.start", t)
        return contact

    def _insert_waiting(self, queue: SimQueue, contact: Contact) -> None:
        keys = [(c.start, c.order) for c in queue.waiting]
        queue.waiting.insert(bisect.bisect(keys, (contact.start, contact.order)), contact)

    def _dispatch(self, t: float, dirty: set[str]) -> None:
        """Offer waiting contacts to idle members, oldest contact first, longest-idle agent first."""
        dirty = {q for q in dirty if q in self.queues}
        while dirty:
            candidates = [self.queues[q] for q in dirty if self.queues[q].waiting]
            if not candidates:
                return
            queue = min(candidates, key=lambda q: (q.waiting[0].start, q.waiting[0].order))
            idle = [self.agents[a] for a in queue.member_ids if self.agents[a].idle]
            if not idle:
                dirty.discard(queue.id)
                continue
            agent = min(idle, key=lambda a: (a.routing_since, a.id))
            self._offer(queue, queue.waiting[0], agent, t)

    def _offer(self, queue: SimQueue, contact: Contact, agent: SimAgent, t: float) -> None:
        queue.waiting.remove(contact)
        queue.alerting[contact.id] = contact
        contact.state, contact.agent_id, contact.offered_at = "alerting", agent.id, t
        contact.epoch += 1
        agent.phase, agent.contact = "alerting", contact
        agent.epoch += 1
        self._set_routing(agent, INTERACTING, t)
        self._queue_changed(queue.id)
        if self.rng.random() < self.config.not_responding_probability:
            self._schedule(t + self.config.alert_timeout, "alert_timeout", contact, contact.epoch)
        else:
            self._schedule(t + self.rng.uniform(*self.config.alert_range), "answer", contact, contact.epoch)
        self._conversation(contact, "user.start", t)

    def _answer(self, contact: Contact, t: float) -> None:
        queue = self.queues[contact.queue_id]
        agent = self.agents[contact.agent_id]
        del queue.alerting[contact.id]
        queue.interacting[contact.id] = contact
        contact.state, contact.connected_at = "interacting", t
        contact.epoch += 1
        agent.phase = "interacting"
        wait_ms = round((t - contact.start) * 1000)
        queue.answered += 1
        queue.answered_wait_ms = [queue.answered_wait_ms[0] + wait_ms, max(queue.answered_wait_ms[1], wait_ms)]
        queue.sl_denominator += 1
        if t - contact.start <= queue.sl_threshold:
            queue.sl_numerator += 1
        handle = max(3.0, self.rng.gammavariate(2.0, self.config.handle_mean / 2.0))
        self._schedule(t + handle, "hangup", contact, contact.epoch)
        self._queue_changed(queue.id, interval=True)
        self._conversation(contact, "acd.end", t)

    def _alert_timeout(self, contact: Contact, t: float) -> None:
        queue = self.queues[contact.queue_id]
        agent = self.agents[contact.agent_id]
        self._take_back(queue, contact)
        agent.phase, agent.contact = None, None
        agent.epoch += 1
        self._set_routing(agent, NOT_RESPONDING, t)
        self._schedule(t + self.rng.uniform(*self.config.not_responding_range), "recover", agent, agent.epoch)
        self._conversation(contact, "user.end", t)
        self._dispatch(t, {queue.id})

    def _take_back(self, queue: SimQueue, contact: Contact) -> None:
        """Return an alerting contact to the queue at its original place (it keeps its start time)."""
        queue.alerting.pop(contact.id, None)
        contact.state, contact.agent_id, contact.offered_at = "waiting", None, None
        contact.epoch += 1
        self._insert_waiting(queue, contact)
        self._queue_changed(queue.id)

    def _abandon(self, contact: Contact, t: float) -> None:
        queue = self.queues[contact.queue_id]
        if contact.state == "waiting":
            queue.waiting.remove(contact)
        elif contact.state == "alerting":
            queue.alerting.pop(contact.id, None)
            agent = self.agents[contact.agent_id]
            agent.phase, agent.contact = None, None
            agent.epoch += 1
            self._set_routing(agent, IDLE if agent.presence == "on_queue" else OFF_QUEUE, t)
            self._conversation(contact, "user.end", t)
        else:
            return
        contact.state, contact.ended_at, contact.abandoned = "ended", t, True
        contact.epoch += 1
        wait_ms = round((t - contact.start) * 1000)
        queue.abandoned += 1
        queue.abandon_wait_ms = [queue.abandon_wait_ms[0] + wait_ms, max(queue.abandon_wait_ms[1], wait_ms)]
        queue.sl_denominator += 1
        self.contacts.pop(contact.id, None)
        self._queue_changed(queue.id, interval=True)
        self._conversation(contact, "acd.end", t)
        self._conversation(contact, "customer.end", t)
        if contact.agent_id is None:
            return
        self._dispatch(t, set(self.agents[contact.agent_id].queue_ids))

    def _hangup(self, contact: Contact, t: float) -> None:
        queue = self.queues[contact.queue_id]
        agent = self.agents[contact.agent_id]
        queue.interacting.pop(contact.id, None)
        contact.state, contact.ended_at = "acw", t
        contact.disposition = self.labels_rng.choice(DISPOSITIONS)
        contact.epoch += 1
        agent.phase = "acw"
        self._schedule(t + self.rng.uniform(*self.config.acw_range), "acw_end", contact, contact.epoch)
        self._queue_changed(queue.id)
        self._conversation(contact, "customer.end", t)
        self._conversation(contact, "acw", t)

    def _acw_end(self, contact: Contact, t: float) -> None:
        agent = self.agents[contact.agent_id]
        contact.state = "ended"
        contact.epoch += 1
        self.contacts.pop(contact.id, None)
        agent.phase, agent.contact = None, None
        agent.epoch += 1
        self._set_routing(agent, IDLE if agent.presence == "on_queue" else OFF_QUEUE, t)
        self._conversation(contact, "wrapup", t)
        self._conversation(contact, "user.end", t)
        self._dispatch(t, set(agent.queue_ids))

    def _presence_timer(self, agent: SimAgent, t: float) -> None:
        if agent.phase is not None:
            # Agents finish the contact in hand before going on break: try again shortly.
            self._schedule_presence(agent, t, self.rng.uniform(5.0, 20.0))
            return
        table = _LEAVE_QUEUE if agent.presence == "on_queue" else _RETURN
        choices, weights = zip(*table, strict=True)
        self._set_presence(agent, self.rng.choices(choices, weights=weights)[0], t)
        self._dispatch(t, set(agent.queue_ids))
        self._schedule_presence(agent, t)

    def _set_presence(self, agent: SimAgent, presence: str, t: float) -> None:
        if presence not in SYSTEM_PRESENCES:
            raise ValueError(f"not a system presence: {presence!r}")
        if presence == agent.presence:
            return
        agent.presence, agent.presence_since = presence, t
        self._changes.append(AgentChange(agent.id, presence=True, routing=False))
        self._touch_queues(agent)
        if presence == "on_queue":
            if agent.routing_status == OFF_QUEUE:
                self._set_routing(agent, IDLE, t)
            return
        if agent.phase == "alerting":
            # Leaving the queue while a contact rings: the offer is taken back and the contact waits again.
            contact = agent.contact
            self._take_back(self.queues[contact.queue_id], contact)
            self._conversation(contact, "user.end", t)
            agent.phase, agent.contact = None, None
            agent.epoch += 1
        if agent.phase is None:
            self._set_routing(agent, OFF_QUEUE, t)
        # Mid-call or in wrap-up the agent stays INTERACTING; ACW's end takes it off queue.

    def _set_routing(self, agent: SimAgent, status: str, t: float) -> None:
        if agent.routing_status == status:
            return
        agent.routing_status, agent.routing_since = status, t
        self._changes.append(AgentChange(agent.id, presence=False, routing=True))
        self._touch_queues(agent)

    # -- change reporting ---------------------------------------------------

    def _touch_queues(self, agent: SimAgent) -> None:
        for queue_id in agent.queue_ids:
            self._queue_changed(queue_id)

    def _queue_changed(self, queue_id: str, observations: bool = True, interval: bool = False) -> None:
        flags = self._queue_changes.setdefault(queue_id, [False, False])
        flags[0] = flags[0] or observations
        flags[1] = flags[1] or interval

    def _conversation(self, contact: Contact, event: str, t: float) -> None:
        contact.updated_at = t
        self._changes.append(ConversationChange(contact, event, t))

    def _flush(self) -> None:
        if not self._changes and not self._queue_changes:
            return
        changes = self._changes + [
            QueueChange(queue_id, observations=flags[0], interval=flags[1])
            for queue_id, flags in self._queue_changes.items()
        ]
        self._changes, self._queue_changes = [], {}
        for listener in list(self.listeners):
            try:
                listener(changes)
            except Exception:
                # A broken listener must not stop the model (or the other listeners).
                log.exception("a simulator listener failed")
