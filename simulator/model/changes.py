"""What the model tells its listeners: one ``Change`` value per thing that changed, and how they are gathered.

Changes pile up while one call into the model runs and go to the listeners
together at its end (``_flush``), queue changes folded to one per queue.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from simulator.model.entities import Contact, SimAgent

log = logging.getLogger(__name__)


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


Listener = Callable[[list[Change]], None]


class ChangeReporting:
    """Gather the changes of one call into the model and hand them to the listeners at its end.

    A part of ``ContactCentreModel``: it uses the model's ``listeners``,
    ``_changes`` and ``_queue_changes``.
    """

    listeners: list[Listener]
    _changes: list[Change]
    _queue_changes: dict[str, list[bool]]

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
