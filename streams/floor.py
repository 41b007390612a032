"""The Floor: the live, in-memory picture of queues, agents and interactions from every source.

``apply(event)`` returns the keys of the rows that really changed, so an event
that changes nothing causes no work downstream. ``replace(snapshot)`` diffs a
source's full picture against what the Floor holds and returns only the true
differences (a resync after a reconnect is usually quiet). Every operation
costs O(size of the event), never a scan of the whole Floor.

Interactions are bounded: an ended one is dropped at once, each source keeps
at most ``max_interactions`` (the least recently updated go first), and
``expire_interactions`` drops those not heard of for ``interaction_ttl``
seconds (a feed that lost an interaction's last event must not show it for
ever). Both walk the per-source order of last update, so they cost
O(rows dropped).

The row classes and the fold are made from ``streams.schema``: each kind's
fields, defaults and normalisers are declared there once, and ``_fold``
applies any event by them. Rolling figures ("abandoned in the last 15
minutes") are counted from the rises of interval totals; ``roll_windows``
takes counts off as they leave their window (``streams.rolling``).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import field, make_dataclass
from typing import Any, ClassVar

from streams import states
from streams.events import (
    UNSET,
    AgentStatus,
    Event,
    InteractionUpdate,
    QueueMembership,
    QueueStats,
    SourceSnapshot,
    reported,
)
from streams.rolling import RollingCounts, rise
from streams.schema import AGENT, INTERACTION, QUEUE, RowSchema

# A row key: ("queue" | "agent" | "interaction", source, vendor id).
RowKey = tuple[str, str, str]

MAX_INTERACTIONS = 50_000  # per source
INTERACTION_TTL = 4 * 3600.0  # seconds without news before an interaction is dropped


class _Row:
    """What every row the Floor holds can do: name its key and turn into plain data."""

    __slots__ = ()
    SCHEMA: ClassVar[RowSchema]
    source: str

    @property
    def ident(self) -> str:
        """Return the vendor's id of this row."""
        return getattr(self, self.SCHEMA.identity)

    @property
    def key(self) -> RowKey:
        """Return this row's key."""
        return (self.SCHEMA.kind, self.source, self.ident)

    def as_dict(self) -> dict[str, Any]:
        """Return the state as plain data (for JSON and tests)."""
        data = {}
        for f in self.SCHEMA.state_fields:
            value = getattr(self, f.name)
            data[f.name] = sorted(value) if isinstance(value, frozenset) else value
        return data | {"id": self.ident}


class _QueueRow(_Row):
    __slots__ = ()

    @property
    def service_level(self) -> float | None:
        """Return the share of contacts answered within target this interval (0..1), if any were."""
        if not self.sl_denominator:  # type: ignore[attr-defined]  # a schema field
            return None
        return self.sl_numerator / self.sl_denominator  # type: ignore[attr-defined]


class _AgentRow(_Row):
    __slots__ = ()

    @property
    def status(self) -> str:
        """Return the one status a supervisor reads (see ``streams.states.status``)."""
        return states.status(self.presence, self.routing_status)  # type: ignore[attr-defined]

    @property
    def status_since(self) -> float | None:
        """Return when the status shown by ``status`` began (epoch seconds)."""
        if states.on_queue(self.presence, self.routing_status):  # type: ignore[attr-defined]
            return self.routing_since  # type: ignore[attr-defined]
        return self.presence_since  # type: ignore[attr-defined]


def _state_class(name: str, schema: RowSchema, base: type, doc: str) -> type:
    """Return the mutable state class of a row kind: identity, then every field the Floor holds, at its default."""
    specs: list[Any] = [("source", str), (schema.identity, str)]
    specs += [(f.name, Any, field(default=f.default)) for f in schema.state_fields]
    namespace = {"__doc__": doc, "SCHEMA": schema}
    return make_dataclass(name, specs, bases=(base,), slots=True, module=__name__, namespace=namespace)


QueueState = _state_class("QueueState", QUEUE, _QueueRow, "What the Floor knows about one queue.")
AgentState = _state_class("AgentState", AGENT, _AgentRow, "What the Floor knows about one agent.")
InteractionState = _state_class(
    "InteractionState", INTERACTION, _Row, "What the Floor knows about one live interaction."
)

# What a full snapshot resets a field to when it leaves the field out (names are kept).
_QUEUE_RESET = {f.name: f.default for f in QUEUE.event_fields if not f.keep_on_snapshot}
_AGENT_RESET = {f.name: f.default for f in AGENT.event_fields if not f.keep_on_snapshot}
_INTERACTION_RESET = {f.name: f.default for f in INTERACTION.event_fields if f.name != "ended"}
_QUEUE_NORMALISERS = QUEUE.normalisers()
_AGENT_NORMALISERS = AGENT.normalisers()
_INTERACTION_NORMALISERS = INTERACTION.normalisers()
_QUEUE_ROLLING = QUEUE.rolling


def _fold(state: Any, values: dict[str, Any], normalisers: dict[str, Callable[[Any], Any]]) -> bool:
    """Set VALUES (normalised as the schema says) on STATE; return whether anything changed."""
    changed = False
    for name, value in values.items():
        # A queue's kind has no normaliser (its parsers checked every figure): no lookup per field then.
        if normalisers and (normalise := normalisers.get(name)) is not None:
            value = normalise(value)
        if getattr(state, name) != value:
            setattr(state, name, value)
            changed = True
    return changed


class Floor:
    """The in-memory model every publisher renders from."""

    def __init__(
        self,
        *,
        max_interactions: int = MAX_INTERACTIONS,
        interaction_ttl: float = INTERACTION_TTL,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.queues: dict[tuple[str, str], QueueState] = {}
        self.agents: dict[tuple[str, str], AgentState] = {}
        self.interactions: dict[tuple[str, str], InteractionState] = {}
        # Per source: the ids it holds, so a snapshot diff never scans other sources.
        self._queue_ids: dict[str, set[str]] = {}
        self._agent_ids: dict[str, set[str]] = {}
        # Per source: interaction id → last update (clock), least recently updated first.
        self._interaction_seen: dict[str, OrderedDict[str, float]] = {}
        self.max_interactions = max_interactions
        self.interaction_ttl = interaction_ttl
        self.clock = clock
        self.wall_clock = wall_clock
        self.events_applied = 0
        self.interactions_evicted = 0  # dropped for the cap or the TTL, not because they ended
        self.rolling = RollingCounts()

    # -- reading ------------------------------------------------------------

    def queue(self, source: str, queue_id: str) -> QueueState | None:
        """Return one queue, or None."""
        return self.queues.get((source, queue_id))

    def agent(self, source: str, agent_id: str) -> AgentState | None:
        """Return one agent, or None."""
        return self.agents.get((source, agent_id))

    def interaction(self, source: str, interaction_id: str) -> InteractionState | None:
        """Return one interaction, or None."""
        return self.interactions.get((source, interaction_id))

    def row(self, key: RowKey) -> QueueState | AgentState | InteractionState | None:
        """Return the state behind a row key, or None if it is gone."""
        kind, source, ident = key
        table = self.queues if kind == "queue" else self.agents if kind == "agent" else self.interactions
        return table.get((source, ident))

    def source_queue_ids(self, source: str) -> set[str]:
        """Return the queue ids SOURCE holds."""
        return set(self._queue_ids.get(source, ()))

    def source_agent_ids(self, source: str) -> set[str]:
        """Return the agent ids SOURCE holds."""
        return set(self._agent_ids.get(source, ()))

    def source_interaction_ids(self, source: str) -> set[str]:
        """Return the interaction ids SOURCE holds."""
        return set(self._interaction_seen.get(source, ()))

    # -- writing ------------------------------------------------------------

    def apply(self, event: Event) -> set[RowKey]:
        """Fold EVENT into the Floor; return the keys of rows that changed."""
        self.events_applied += 1
        if isinstance(event, QueueStats):
            return self._apply_queue(event)
        if isinstance(event, AgentStatus):
            return self._apply_agent(event)
        if isinstance(event, QueueMembership):
            return self._apply_membership(event)
        if isinstance(event, InteractionUpdate):
            return self._apply_interaction(event)
        if isinstance(event, SourceSnapshot):
            return self.replace(event)
        raise TypeError(f"not a Floor event: {event!r}")

    def replace(self, snapshot: SourceSnapshot) -> set[RowKey]:
        """Make SNAPSHOT the whole truth for its source; return the rows that differ."""
        source = snapshot.source
        changed: set[RowKey] = set()
        for queue_id in self.source_queue_ids(source) - snapshot.queues.keys():
            changed.add(self._remove_queue(source, queue_id))
        for agent_id in self.source_agent_ids(source) - snapshot.agents.keys():
            changed.add(self._remove_agent(source, agent_id))
        for stats in snapshot.queues.values():
            changed |= self._apply_queue(stats, complete=True)
        for status in snapshot.agents.values():
            changed |= self._apply_agent(status, complete=True)
        if snapshot.interactions is not None:
            live = {i: u for i, u in snapshot.interactions.items() if u.ended is not True}
            for interaction_id in self.source_interaction_ids(source) - live.keys():
                changed.add(self._remove_interaction(source, interaction_id))
            for update in live.values():
                changed |= self._apply_interaction(update, complete=True)
        return changed

    def drop_source(self, source: str) -> set[RowKey]:
        """Forget everything from SOURCE (its connection was removed or disabled)."""
        return self.replace(SourceSnapshot(source=source, interactions={}))

    def expire_interactions(self) -> set[RowKey]:
        """Drop interactions not heard of for ``interaction_ttl`` seconds; return their keys."""
        cutoff = self.clock() - self.interaction_ttl
        gone: set[RowKey] = set()
        for source, seen in self._interaction_seen.items():
            while seen:
                interaction_id, at = next(iter(seen.items()))
                if at > cutoff:
                    break
                gone.add(self._remove_interaction(source, interaction_id))
                self.interactions_evicted += 1
        return gone

    def roll_windows(self) -> set[RowKey]:
        """Take counts that left their window off the rolling figures (see ``streams.rolling``); return the rows."""
        changed: set[RowKey] = set()
        for state in self.rolling.expire(self.clock()):
            key = state.key
            # A row removed meanwhile is not shown any more: its count is nobody's news.
            if self.queues.get(key[1:]) is state:
                changed.add(key)
        return changed

    def _apply_queue(self, event: QueueStats, complete: bool = False) -> set[RowKey]:
        key = (event.source, event.queue_id)
        state = self.queues.get(key)
        created = state is None
        if state is None:
            state = self.queues[key] = QueueState(source=event.source, queue_id=event.queue_id)
            self._queue_ids.setdefault(event.source, set()).add(event.queue_id)
        values = reported(event)
        if complete:
            # A snapshot states every field: anything it leaves out is reset.
            values = _QUEUE_RESET | values
        if values.get("waiting") == 0:
            values["longest_waiting_since"] = None
        changed = created
        for spec in _QUEUE_ROLLING:
            if spec.rise_of in values:
                amount = rise(
                    getattr(state, spec.rise_of),
                    state.interval_start,
                    values[spec.rise_of],
                    values.get("interval_start", state.interval_start),
                )
                if amount:
                    self.rolling.add(state, spec, amount, self.clock())
                    changed = True
        if _fold(state, values, _QUEUE_NORMALISERS):
            changed = True
        return {state.key} if changed else set()

    def _apply_agent(self, event: AgentStatus, complete: bool = False) -> set[RowKey]:
        key = (event.source, event.agent_id)
        state = self.agents.get(key)
        created = state is None
        if state is None:
            state = self.agents[key] = AgentState(source=event.source, agent_id=event.agent_id)
            self._agent_ids.setdefault(event.source, set()).add(event.agent_id)
        values = reported(event)
        if complete:
            values = _AGENT_RESET | values
        changed = _fold(state, values, _AGENT_NORMALISERS)
        return {state.key} if changed or created else set()

    def _apply_membership(self, event: QueueMembership) -> set[RowKey]:
        state = self.agents.get((event.source, event.agent_id))
        current = state.queue_ids if state else frozenset()
        wanted = current | {event.queue_id} if event.joined else current - {event.queue_id}
        if state is not None and wanted == current:
            return set()
        return self._apply_agent(AgentStatus(source=event.source, agent_id=event.agent_id, queue_ids=wanted))

    def _apply_interaction(self, event: InteractionUpdate, complete: bool = False) -> set[RowKey]:
        source, interaction_id = event.source, event.interaction_id
        key = (source, interaction_id)
        state = self.interactions.get(key)
        if event.ended is True:
            if state is None:
                return set()
            return {self._remove_interaction(source, interaction_id)}
        seen = self._interaction_seen.setdefault(source, OrderedDict())
        changed: set[RowKey] = set()
        created = state is None
        if state is None:
            state = self.interactions[key] = InteractionState(source=source, interaction_id=interaction_id)
            seen[interaction_id] = self.clock()
            if len(seen) > self.max_interactions:
                # The least recently updated goes: a runaway feed must not grow the worker without bound.
                oldest = next(iter(seen))
                changed.add(self._remove_interaction(source, oldest))
                self.interactions_evicted += 1
        else:
            seen[interaction_id] = self.clock()
            seen.move_to_end(interaction_id)
        values = reported(event)
        values.pop("ended", None)
        if complete:
            # A snapshot states every field: anything it leaves out is cleared.
            values = _INTERACTION_RESET | values
        before = state.state
        moved = _fold(state, values, _INTERACTION_NORMALISERS) or created
        if state.state != before or (created and state.state_since is None):
            state.state_since = self.wall_clock()
        if moved:
            changed.add(state.key)
        return changed

    def _remove_interaction(self, source: str, interaction_id: str) -> RowKey:
        self.interactions.pop((source, interaction_id), None)
        seen = self._interaction_seen.get(source)
        if seen is not None:
            seen.pop(interaction_id, None)
        return ("interaction", source, interaction_id)

    def _remove_queue(self, source: str, queue_id: str) -> RowKey:
        self.queues.pop((source, queue_id), None)
        self._queue_ids.get(source, set()).discard(queue_id)
        return ("queue", source, queue_id)

    def _remove_agent(self, source: str, agent_id: str) -> RowKey:
        self.agents.pop((source, agent_id), None)
        self._agent_ids.get(source, set()).discard(agent_id)
        return ("agent", source, agent_id)


__all__ = ["UNSET", "AgentState", "Floor", "InteractionState", "QueueState", "RowKey"]
