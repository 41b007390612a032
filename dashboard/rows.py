"""Board rows: the one place a queue's or an agent's row is made.

A row is plain data (so the worker can store it and send it over the channel
layer): its DOM ``key``, its ``kind``, the ``attrs`` viewers filter on, the
``data`` the JSON API returns, and the ``html`` the page shows. The HTML comes
from the partials of ``dashboard/board.html``, so the page and live pushes
share one source of truth. Nothing here touches the database: the publisher
renders rows inside the worker's event loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.template.loader import render_to_string

from streams.floor import AgentState, QueueState

QUEUE_ROW_TEMPLATE = "dashboard/board.html#queue-row"
AGENT_ROW_TEMPLATE = "dashboard/board.html#agent-row"

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

    @classmethod
    def from_queue(cls, queue: Any) -> QueueConfig:
        """Return the config of a streams.models.Queue (read once, so rendering needs no database)."""
        return cls(
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
    data = {
        "key": f"q-{config.pk}",
        "queue": config.pk,
        "vendor_id": config.vendor_id,
        "name": config.name or state.name or config.vendor_id,
        "waiting": state.waiting,
        "waiting_level": waiting_level,
        "waiting_warning": config.waiting_warning,
        "waiting_alert": config.waiting_alert,
        "longest_waiting_since": state.longest_waiting_since,
        "longest_waiting_since_ms": _epoch_ms(state.longest_waiting_since),
        "longest_wait_warning": config.longest_wait_warning,
        "longest_wait_alert": config.longest_wait_alert,
        "interacting": state.interacting,
        "alerting": state.alerting,
        "on_queue_agents": state.on_queue_agents,
        "idle_agents": state.idle_agents,
        "interval_start": state.interval_start,
        "offered": state.offered,
        "answered": state.answered,
        "abandoned": state.abandoned,
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
