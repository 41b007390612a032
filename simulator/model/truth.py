"""The model's ground truth, in the shapes of the Floor's states (what ``/simulator/truth`` shows)."""

from __future__ import annotations

from typing import Any

from simulator.model.entities import IDLE, INTERACTION_STATES, OFF_QUEUE, Contact


class GroundTruth:
    """Read the model's queues, agents and live contacts as the Floor should come to show them.

    A part of ``ContactCentreModel``.
    """

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
