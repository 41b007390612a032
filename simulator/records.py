"""Generic feed records from the contact-centre model (``docs/protocols/generic.md``).

A customer's middleware would re-publish vendor data as flat records; the
simulator's push, SSE and webhook feeds all send the same ones, made here.
Each batch of model changes yields one record per contact it touched, stating
the contact as it now stands (records upsert by ``interaction_id``):

    {"id": "r17", "type": "interaction.updated", "timestamp": 1767225600123,
     "campaign_id": "spring-offers", "disposition": null,
     "interaction_id": "<uuid>", "queue_id": "<uuid>", "agent_id": "<uuid>",
     "state": "connected",
     "payload": {"media": "voice", "started_at": 1767225590000,
                 "agent_name": "Ada Lovelace", "queue_name": "Sales",
                 "campaign_name": "Spring Offers"}}

``type`` is ``interaction.created`` at arrival, ``interaction.ended`` when the
contact is over (abandoned, or wrap-up finished) and ``interaction.updated``
otherwise. Records are numbered in order, and the last ``keep`` are kept so a
feed can replay what a client missed (SSE ``Last-Event-ID``).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from simulator.model import INTERACTION_STATES, Contact, ContactCentreModel, ConversationChange

log = logging.getLogger(__name__)

RecordListener = Callable[[int, dict[str, Any]], None]


def record_of(model: ContactCentreModel, contact: Contact, seq: int) -> dict[str, Any]:
    """Return the record stating CONTACT as it stands, numbered SEQ."""
    queue = model.queues[contact.queue_id]
    agent = model.agents.get(contact.agent_id) if contact.agent_id else None
    if contact.state == "ended":
        kind = "interaction.ended"
    elif contact.updated_at == contact.start and contact.state == "waiting":
        kind = "interaction.created"
    else:
        kind = "interaction.updated"
    return {
        "id": f"r{seq}",
        "type": kind,
        "timestamp": round(contact.updated_at * 1000),
        "campaign_id": queue.campaign_id,
        "disposition": contact.disposition,
        "interaction_id": contact.id,
        "queue_id": contact.queue_id,
        "agent_id": contact.agent_id,
        "state": INTERACTION_STATES.get(contact.state, contact.state),
        "payload": {
            "media": contact.media_type,
            "started_at": round(contact.start * 1000),
            "agent_name": agent.name if agent else None,
            "queue_name": queue.name,
            "campaign_name": queue.campaign_name,
        },
    }


class RecordLog:
    """Turn model changes into numbered records, keep the recent ones, and tell the listeners."""

    def __init__(self, model: ContactCentreModel, *, keep: int = 10_000) -> None:
        self.model = model
        self.seq = 0
        self.recent: deque[tuple[int, dict[str, Any]]] = deque(maxlen=keep)
        self.listeners: list[RecordListener] = []
        model.listeners.append(self._on_changes)

    def _on_changes(self, changes: list) -> None:
        touched: dict[str, Contact] = {}
        for change in changes:
            if isinstance(change, ConversationChange):
                touched[change.contact.id] = change.contact
        for contact in touched.values():
            self.seq += 1
            record = record_of(self.model, contact, self.seq)
            self.recent.append((self.seq, record))
            for listener in list(self.listeners):
                try:
                    listener(self.seq, record)
                except Exception:
                    # One feed's trouble must not stop the others.
                    log.exception("a record listener failed")

    def since(self, seq: int) -> list[tuple[int, dict[str, Any]]] | None:
        """Return the records after SEQ, oldest first; None when some of them are no longer kept."""
        if seq >= self.seq:
            return []
        if not self.recent or self.recent[0][0] > seq + 1:
            return None
        return [(n, record) for n, record in self.recent if n > seq]

    def current(self) -> list[dict[str, Any]]:
        """Return one record per live contact, stating it as it stands (a feed's first picture).

        Each has an id of its own (``r<seq>.<contact number>``): a consumer that deduplicates by id
        must not take them for one record.
        """
        records = []
        for contact in self.model.contacts.values():
            record = record_of(self.model, contact, self.seq)
            record["id"] = f"r{self.seq}.{contact.number}"
            records.append(record)
        return records
