"""Board rows: the one place a queue's, an agent's or an interaction's row is made.

A row is plain data (so the worker can store it and send it over the channel
layer): its DOM ``key``, its ``kind``, the ``attrs`` viewers filter on, the
``data`` the JSON API returns, and the ``html`` the page shows. The HTML comes
from the partials of ``dashboard/board.html``, so the page and live pushes
share one source of truth. Nothing here touches the database: the publisher
renders rows inside the worker's event loop.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.template.loader import render_to_string

from streams.floor import AgentState, InteractionState, QueueState
from streams.schema import QUEUE

QUEUE_ROW_TEMPLATE = "dashboard/board.html#queue-row"
AGENT_ROW_TEMPLATE = "dashboard/board.html#agent-row"
INTERACTION_ROW_TEMPLATE = "dashboard/board.html#interaction-row"

# Ids that may go into a DOM id as they are; anything else (a feed's free-form id) is hashed.
_SAFE_ID = re.compile(r"[A-Za-z0-9_.:-]{1,100}")

INTERACTION_STATE_LABELS = {
    "waiting": "Waiting",
    "alerting": "Alerting",
    "connected": "Connected",
    "held": "On hold",
    "wrapup": "Wrap-up",
    "dialing": "Dialling",
}
# Colour family of each interaction state, shared with agent statuses' families.
INTERACTION_STATE_CATEGORIES = {
    "waiting": "alert",
    "alerting": "away",
    "connected": "busy",
    "held": "away",
    "wrapup": "off",
    "dialing": "busy",
}
MEDIA_LABELS = {"voice": "Voice", "call": "Voice", "chat": "Chat", "message": "Message", "email": "Email"}

# Human words for the statuses AgentState.status returns (routing statuses and presences).
STATUS_LABELS = {
    "idle": "Idle",
    "interacting": "Interacting",
    "communicating": "Communicating",
    "not_responding": "Not responding",
    "off_queue": "Off queue",
    "on_queue": "On queue",
    "available": "Available",
    "away": "Away",
    "busy": "Busy",
    "break": "Break",
    "meal": "Meal",
    "meeting": "Meeting",
    "training": "Training",
    "offline": "Offline",
    "unknown": "Unknown",
}

# The colour family of each status; anything not listed counts as "away".
STATUS_CATEGORIES = {
    "idle": "ready",
    "available": "ready",
    "on_queue": "ready",
    "interacting": "busy",
    "communicating": "busy",
    "not_responding": "alert",
    "off_queue": "off",
    "offline": "off",
    "unknown": "off",
}

# The queue figures a row carries (its name is the config's, or the vendor's when the config has none).
_QUEUE_FIGURES = tuple(f.name for f in QUEUE.state_fields if f.name != "name")

LEVEL_LABELS = {"ok": "", "warning": "Warning", "alert": "Alert"}


@dataclass(frozen=True)
class QueueConfig:
    """What a board knows about one of its queues: identity, name and thresholds."""

    pk: int
    vendor_id: str
    name: str
    sl_target_percent: int = 80
    sl_target_seconds: int = 20
    waiting_warning: int = 5
    waiting_alert: int = 10
    longest_wait_warning: int = 60
    longest_wait_alert: int = 180
    # Figures the queue's vendor never reports (see Vendor.unreported_queue_fields): shown as "–".
    unreported: frozenset[str] = frozenset()

    @classmethod
    def from_queue(cls, queue: Any, unreported: frozenset[str] = frozenset()) -> QueueConfig:
        """Return the config of a streams.models.Queue (read once, so rendering needs no database)."""
        return cls(
            unreported=unreported,
            pk=queue.pk,
            vendor_id=queue.vendor_id,
            name=queue.name,
            sl_target_percent=queue.sl_target_percent,
            sl_target_seconds=queue.sl_target_seconds,
            waiting_warning=queue.waiting_warning,
            waiting_alert=queue.waiting_alert,
            longest_wait_warning=queue.longest_wait_warning,
            longest_wait_alert=queue.longest_wait_alert,
        )

    @property
    def sl_target_text(self) -> str:
        """Return the target in the words supervisors use: "80% in 20 s"."""
        return f"{self.sl_target_percent}% in {self.sl_target_seconds} s"


def threshold_level(value: float, warning: int, alert: int) -> str:
    """Return "alert", "warning" or "ok" for VALUE; a threshold of 0 is switched off."""
    if alert and value >= alert:
        return "alert"
    if warning and value >= warning:
        return "warning"
    return "ok"


def status_label(status: str) -> str:
    """Return the human words for an agent status, inventing readable ones for unknown codes."""
    return STATUS_LABELS.get(status) or status.replace("_", " ").strip().capitalize() or "Unknown"


def status_category(status: str) -> str:
    """Return the colour family of an agent status: ready, busy, alert, away or off."""
    return STATUS_CATEGORIES.get(status, "away")


def _epoch_ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)


def queue_row(state: QueueState, config: QueueConfig) -> dict:
    """Return the row of one queue on a board (key "q-<pk>", filterable by queue pk)."""
    service_level = state.service_level
    sl_percent = None if service_level is None else round(service_level * 100)
    if service_level is None:
        sl_state = "none"
    elif service_level * 100 >= config.sl_target_percent:
        sl_state = "met"
    else:
        sl_state = "missed"
    waiting_level = threshold_level(state.waiting, config.waiting_warning, config.waiting_alert)
    sl_value = "–" if sl_percent is None else f"{sl_percent}%"
    data: dict[str, Any] = {
        "key": f"q-{config.pk}",
        "queue": config.pk,
        "vendor_id": config.vendor_id,
        "name": config.name or state.name or config.vendor_id,
    }
    # Every figure the schema holds, "–" (None) where the queue's vendor never reports it.
    unreported = config.unreported
    for name in _QUEUE_FIGURES:
        data[name] = None if name in unreported else getattr(state, name)
    data |= {
        "waiting_level": waiting_level,
        "waiting_warning": config.waiting_warning,
        "waiting_alert": config.waiting_alert,
        "longest_waiting_since_ms": _epoch_ms(state.longest_waiting_since),
        "longest_wait_warning": config.longest_wait_warning,
        "longest_wait_alert": config.longest_wait_alert,
        "service_level": service_level,
        "service_level_percent": sl_percent,
        "service_level_state": sl_state,
        "sl_target_percent": config.sl_target_percent,
        "sl_target_seconds": config.sl_target_seconds,
        "service_level_text": f"{sl_value} ({config.sl_target_text})",
    }
    context = {
        "q": data,
        "waiting_label": LEVEL_LABELS[waiting_level],
        "sl_value": sl_value,
        "sl_target": config.sl_target_text,
        "sort": data["name"].casefold(),
    }
    html = render_to_string(QUEUE_ROW_TEMPLATE, context).strip()
    return {"key": data["key"], "kind": "queue", "attrs": {"queue": str(config.pk)}, "data": data, "html": html}


def agent_row(state: AgentState, queues: Mapping[str, QueueConfig]) -> dict:
    """Return the row of one agent on a board; QUEUES maps vendor queue id to this board's configs."""
    key = f"a-{state.source}-{state.agent_id}"
    member_of = sorted((queues[qid] for qid in state.queue_ids if qid in queues), key=lambda c: c.name.casefold())
    status = state.status
    data = {
        "key": key,
        "source": state.source,
        "agent_id": state.agent_id,
        "name": state.name or state.agent_id,
        "status": status,
        "status_label": status_label(status),
        "status_category": status_category(status),
        "status_since": state.status_since,
        "status_since_ms": _epoch_ms(state.status_since),
        "presence": state.presence,
        "routing_status": state.routing_status,
        "queues": [config.name for config in member_of],
        "queue_pks": [config.pk for config in member_of],
    }
    html = render_to_string(AGENT_ROW_TEMPLATE, {"a": data, "sort": data["name"].casefold()}).strip()
    return {
        "key": key,
        "kind": "agent",
        "attrs": {"queues": [str(config.pk) for config in member_of], "status": status},
        "data": data,
        "html": html,
    }


def dom_id(ident: str) -> str:
    """Return IDENT if it can sit in a DOM id as it is, else a short stable hash of it."""
    if _SAFE_ID.fullmatch(ident):
        return ident
    return "h" + hashlib.blake2s(ident.encode(), digest_size=8).hexdigest()


def interaction_key(source: str, interaction_id: str) -> str:
    """Return the DOM key of an interaction's row."""
    return f"i-{source}-{dom_id(interaction_id)}"


def interaction_row(state: InteractionState, queues: Mapping[str, QueueConfig], agent_name: str | None = None) -> dict:
    """Return the row of one live interaction on a board; QUEUES maps vendor queue id to this board's configs.

    AGENT_NAME is the Floor's name for the agent, used when the interaction does not name them itself.
    """
    key = interaction_key(state.source, state.interaction_id)
    queue = queues.get(state.queue_id) if state.queue_id else None
    state_code = state.state or "unknown"
    media = state.media or ""
    data = {
        "key": key,
        "source": state.source,
        "interaction_id": state.interaction_id,
        "media": media,
        "media_label": MEDIA_LABELS.get(media, media.capitalize() or "–"),
        "queue": queue.pk if queue else None,
        "queue_name": queue.name if queue else (state.queue_id or ""),
        "state": state_code,
        "state_label": INTERACTION_STATE_LABELS.get(state_code, state_code.replace("_", " ").capitalize()),
        "state_category": INTERACTION_STATE_CATEGORIES.get(state_code, "away"),
        "state_since": state.state_since,
        "agent_id": state.agent_id,
        "agent_name": state.agent_name or agent_name or state.agent_id or "",
        "campaign": state.campaign or "",
        "disposition": state.disposition or "",
        "started_at": state.started_at,
        "started_at_ms": _epoch_ms(state.started_at),
    }
    sort = f"{state.started_at or 0:020.3f}"
    html = render_to_string(INTERACTION_ROW_TEMPLATE, {"i": data, "sort": sort}).strip()
    return {
        "key": key,
        "kind": "interaction",
        "attrs": {
            "queue": str(queue.pk) if queue else "",
            "campaign": data["campaign"],
            "disposition": data["disposition"],
            "state": state_code,
        },
        "data": data,
        "html": html,
    }
