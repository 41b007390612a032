"""Vendor-neutral events: what connectors produce and the Floor consumes.

The queue, agent and interaction events are made from their row kinds in
``streams.schema`` (each field declared there once). Every event names its ``source`` (the connection's key, see
``Connection.source_key``) so several vendors can share one Floor. Fields left
at ``UNSET`` were not reported by this event and leave the Floor untouched;
``None`` is a real value ("nobody is waiting").
"""

from __future__ import annotations

from dataclasses import dataclass, field, make_dataclass
from typing import Any, Final

from streams import states
from streams.schema import AGENT, INTERACTION, QUEUE, RowSchema


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

# Routing statuses (Genesys' vocabulary; other vendors map onto it): see streams.states.
ROUTING_STATUSES = states.ROUTING_STATUSES


_new = object.__new__


def reported(event: Any) -> dict[str, Any]:
    """Return the fields of EVENT that carry a value (not UNSET), minus the identity.

    An event keeps what it was given in its ``__dict__`` (a field left out reads the class's UNSET),
    so this is one pass over what was reported, however many fields the kind has.
    """
    identity = type(event).IDENTITY
    return {name: value for name, value in event.__dict__.items() if value is not UNSET and name not in identity}


def assemble(cls: type, values: dict[str, Any]) -> Any:
    """Return an instance of the frozen dataclass CLS holding VALUES, without running its ``__init__``.

    For hot paths whose values are already checked: VALUES must name fields of
    CLS only, and every field left out must have a plain default (CLS has no
    slots, so it reads the class's default). A frozen dataclass's ``__init__``
    sets every field through ``object.__setattr__``: about 2 µs for a
    ``QueueStats``, five times this.
    """
    instance = _new(cls)
    instance.__dict__.update(values)
    return instance


def _built(cls: type, source: str, ident: str, values: dict[str, Any]) -> Any:
    """Return the event of CLS for SOURCE and IDENT reporting VALUES (checked field names, no UNSET)."""
    event = assemble(cls, values)
    event.__dict__["source"] = source
    event.__dict__[cls.IDENTITY[1]] = ident
    return event


def _event_class(name: str, schema: RowSchema, doc: str) -> type:
    """Return the frozen event class of a row kind: its identity, then every field it may report, UNSET by default.

    No slots: a field left out then reads the class's UNSET, so ``of`` builds an
    event from the fields it reports only (events are short-lived; the Floor's
    rows, which are many and long-lived, keep their slots).
    """
    specs: list[Any] = [("source", str), (schema.identity, str)]
    specs += [(f.name, Any, field(default=UNSET)) for f in schema.event_fields]
    namespace = {
        "__doc__": doc,
        "IDENTITY": ("source", schema.identity),
        "SCHEMA": schema,
        "of": classmethod(_built),
    }
    return make_dataclass(name, specs, frozen=True, module=__name__, namespace=namespace)


QueueStats = _event_class(
    "QueueStats",
    QUEUE,
    "Live statistics of one queue; any subset of the fields (streams.schema.QUEUE) may be reported.",
)
AgentStatus = _event_class(
    "AgentStatus", AGENT, "The state of one agent; any subset of the fields (streams.schema.AGENT) may be reported."
)
InteractionUpdate = _event_class(
    "InteractionUpdate",
    INTERACTION,
    """One live interaction (a call, chat, email, ...) was seen or changed; any subset of fields may be reported.

    Updates with the same ``interaction_id`` fold into one row (an upsert). ``ended=True``
    removes it: the board lists live interactions only. The fields are streams.schema.INTERACTION's.
    """,
)


@dataclass(frozen=True, slots=True)
class QueueMembership:
    """An agent joined (or left) a queue."""

    source: str
    queue_id: str
    agent_id: str
    joined: bool


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
