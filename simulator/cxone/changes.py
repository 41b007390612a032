"""When each CXone entity last changed, for ``updatedSince``, and the contacts that ended lately.

CXone's real-time calls return only what changed after ``updatedSince``.
The model reports its changes to listeners; this log stamps the agents,
skills and contacts each change touched with the server clock at that
moment (the same clock ``lastPollTime`` is read from). A stamp that turns out
to change nothing visible is harmless: the entity is merely reported again.

A contact that ends leaves the model at once, but a poller that last asked
before the end must still hear of it: its ``EndContact`` record is kept for
``keep_ended`` seconds (bounded by ``max_ended`` as well).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from simulator.cxone.payloads import active_contact
from simulator.model import (
    AgentChange,
    Change,
    ContactCentreModel,
    ConversationChange,
    MembershipChange,
    QueueChange,
)


class ChangeLog:
    """Stamp every agent, skill and contact the model changes; keep ended contacts a while."""

    def __init__(
        self,
        model: ContactCentreModel,
        *,
        clock: Callable[[], float] = time.time,
        keep_ended: float = 300.0,
        max_ended: int = 50_000,
    ) -> None:
        self.model = model
        self.clock = clock
        self.keep_ended = keep_ended
        self.max_ended = max_ended
        # Entities never stamped count as changed when the log started.
        self.started = clock()
        self.agents: dict[str, float] = {}
        self.skills: dict[str, float] = {}
        self.contacts: dict[str, float] = {}
        # Contact id → (ended at, its EndContact record), oldest first.
        self.ended: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()
        model.listeners.append(self.on_changes)

    def agent(self, agent_id: str) -> float:
        """Return when AGENT_ID last changed."""
        return self.agents.get(agent_id, self.started)

    def skill(self, queue_id: str) -> float:
        """Return when the skill of QUEUE_ID last changed."""
        return self.skills.get(queue_id, self.started)

    def contact(self, contact_id: str) -> float:
        """Return when CONTACT_ID last changed."""
        return self.contacts.get(contact_id, self.started)

    def on_changes(self, changes: list[Change]) -> None:
        """Stamp what CHANGES touched (a model listener)."""
        now = self.clock()
        for change in changes:
            if isinstance(change, AgentChange):
                self.agents[change.user_id] = now
            elif isinstance(change, QueueChange | MembershipChange):
                self.skills[change.queue_id] = now
            elif isinstance(change, ConversationChange):
                contact = change.contact
                if contact.agent_id:
                    # The agent's CXone state follows its contact (ringing, talking, ACW) without a
                    # routing change in the model.
                    self.agents[contact.agent_id] = now
                self.skills[contact.queue_id] = now
                if contact.state == "ended":
                    self.contacts.pop(contact.id, None)
                    self.ended[contact.id] = (now, active_contact(self.model, contact, now, "ended"))
                    self.ended.move_to_end(contact.id)
                else:
                    self.contacts[contact.id] = now
        self.forget_old(now)

    def forget_old(self, now: float | None = None) -> None:
        """Drop ended contacts older than ``keep_ended`` (or past ``max_ended``)."""
        cutoff = (self.clock() if now is None else now) - self.keep_ended
        while self.ended:
            contact_id, (ended_at, _) = next(iter(self.ended.items()))
            if ended_at >= cutoff and len(self.ended) <= self.max_ended:
                return
            del self.ended[contact_id]

    def ended_since(self, since: float) -> list[dict[str, Any]]:
        """Return the EndContact records of contacts that ended at or after SINCE."""
        self.forget_old()
        return [record for ended_at, record in self.ended.values() if ended_at >= since]
