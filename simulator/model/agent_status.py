"""An agent's presence (on queue, break, meal, ...) and the routing status it implies, changed by timers or by hand."""

from __future__ import annotations

from simulator.model.changes import AgentChange
from simulator.model.entities import IDLE, OFF_QUEUE, SimAgent
from simulator.presence import SYSTEM_PRESENCES

# Where an agent on queue goes when it leaves, and how likely each is.
_LEAVE_QUEUE = (("break", 40), ("meal", 15), ("away", 15), ("available", 15), ("meeting", 8), ("training", 7))
# Where an agent off queue goes next: mostly back on queue.
_RETURN = (("on_queue", 85), ("available", 10), ("away", 5))


class AgentStatus:
    """Move agents between presences now and then, and keep each routing status in step with its presence.

    A part of ``ContactCentreModel``: offers taken back when an agent leaves
    go through its routing part.
    """

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

    def _set_routing(self, agent: SimAgent, status: str, t: float) -> None:
        if agent.routing_status == status:
            return
        agent.routing_status, agent.routing_since = status, t
        self._changes.append(AgentChange(agent.id, presence=False, routing=True))
        self._touch_queues(agent)
