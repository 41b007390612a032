"""A contact's life: it enters a queue, is offered to the longest-idle member, answered, wrapped up, or abandoned."""

from __future__ import annotations

import bisect

from simulator import names
from simulator.model.entities import (
    DISPOSITIONS,
    IDLE,
    INTERACTING,
    NOT_RESPONDING,
    OFF_QUEUE,
    Contact,
    SimAgent,
    SimQueue,
)
from simulator.timefmt import ms


class ContactRouting:
    """Queue contacts, offer them to idle members, and carry each through answer, hang-up and wrap-up.

    A part of ``ContactCentreModel``: it reads and changes the model's queues,
    agents and contacts, schedules on its clock and reports through its changes.
    """

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
