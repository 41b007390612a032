"""Vendor-neutral events: what connectors produce and the Floor consumes.

Every event names its ``source`` (the connection's key, see
``Connection.source_key``) so several vendors can share one Floor. Fields left
at ``UNSET`` were not reported by this event and leave the Floor untouched;
``None`` is a real value ("nobody is waiting").
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Final


class _Unset:
    """The type of ``UNSET``: a field the event does not report."""

    _instance: _Unset | None = None

    def __new__(cls) -> _Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset()

# Routing statuses (Genesys' vocabulary; other vendors map onto it).
ROUTING_STATUSES = ("OFF_QUEUE", "IDLE", "INTERACTING", "NOT_RESPONDING", "COMMUNICATING")


_VALUE_FIELDS: dict[type, tuple[str, ...]] = {}


def reported(event: Any) -> dict[str, Any]:
    """Return the fields of EVENT that carry a value (not UNSET), minus the identity."""
    names = _VALUE_FIELDS.get(type(event))
    if names is None:
        # Once per class: dataclasses.fields() on every event was a good share of the hot path.
        identity = getattr(type(event), "IDENTITY", ("source", "queue_id", "agent_id"))
        names = _VALUE_FIELDS[type(event)] = tuple(f.name for f in fields(event) if f.name not in identity)
    return {name: value for name in names if (value := getattr(event, name)) is not UNSET}


@dataclass(frozen=True, slots=True)
class QueueStats:
    """Live statistics of one queue; any subset of the fields may be reported."""

    source: str
    queue_id: str
    name: Any = UNSET
    waiting: Any = UNSET
    interacting: Any = UNSET
    alerting: Any = UNSET
    # Epoch seconds at which the longest-waiting contact started waiting; None if nobody waits.
    longest_waiting_since: Any = UNSET
    on_queue_agents: Any = UNSET
    idle_agents: Any = UNSET
    # Aggregates of the current interval (Genesys: 30 minutes).
    interval_start: Any = UNSET
    offered: Any = UNSET
    answered: Any = UNSET
    abandoned: Any = UNSET
    sl_numerator: Any = UNSET
    sl_denominator: Any = UNSET


@dataclass(frozen=True, slots=True)
class AgentStatus:
    """The state of one agent; any subset of the fields may be reported."""

    source: str
    agent_id: str
    name: Any = UNSET
    # Presence as a case-folded system presence ("available", "on_queue", "break", ...).
    presence: Any = UNSET
    presence_since: Any = UNSET  # epoch seconds
    routing_status: Any = UNSET  # one of ROUTING_STATUSES
    routing_since: Any = UNSET  # epoch seconds
    queue_ids: Any = UNSET  # frozenset of queue ids the agent is a member of


@dataclass(frozen=True, slots=True)
class QueueMembership:
    """An agent joined (or left) a queue."""

    source: str
    queue_id: str
    agent_id: str
    joined: bool


@dataclass(frozen=True, slots=True)
class InteractionUpdate:
    """One live interaction (a call, chat, email, ...) was seen or changed; any subset of fields may be reported.

    Updates with the same ``interaction_id`` fold into one row (an upsert). ``ended=True``
    removes it: the board lists live interactions only.
    """

    IDENTITY: ClassVar[tuple[str, ...]] = ("source", "interaction_id")

    source: str
    interaction_id: str
    media: Any = UNSET  # "voice", "chat", "email", "message", ...
    queue_id: Any = UNSET  # the vendor's queue (CXone: skill) id, or None
    state: Any = UNSET  # waiting, alerting, connected, held, wrapup or dialing (dashboard.rows names them)
    agent_id: Any = UNSET
    agent_name: Any = UNSET
    campaign: Any = UNSET
    disposition: Any = UNSET
    started_at: Any = UNSET  # epoch seconds
    ended: Any = UNSET  # True: the interaction is over and its row goes


@dataclass(frozen=True, slots=True)
class SourceSnapshot:
    """A full picture from one source, taken over REST after every (re)connect.

    Queues and agents absent from the snapshot are removed from the Floor, so
    a resync emits exactly the differences. ``interactions`` is None when the
    source's snapshot says nothing about interactions (they are left alone);
    a dict replaces the source's interactions like queues and agents.
    """

    source: str
    queues: dict[str, QueueStats] = field(default_factory=dict)
    agents: dict[str, AgentStatus] = field(default_factory=dict)
    interactions: dict[str, InteractionUpdate] | None = None


Event = QueueStats | AgentStatus | QueueMembership | InteractionUpdate | SourceSnapshot
