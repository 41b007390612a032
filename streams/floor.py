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
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

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

# A row key: ("queue" | "agent" | "interaction", source, vendor id).
RowKey = tuple[str, str, str]

QUEUE_FIELDS = tuple(k for k in QueueStats.__dataclass_fields__ if k not in ("source", "queue_id"))
AGENT_FIELDS = tuple(k for k in AgentStatus.__dataclass_fields__ if k not in ("source", "agent_id"))
INTERACTION_FIELDS = tuple(
    f.name for f in fields(InteractionUpdate) if f.name not in ("source", "interaction_id", "ended")
)

_NO_INTERACTION_FIELDS = dict.fromkeys(INTERACTION_FIELDS)

MAX_INTERACTIONS = 50_000  # per source
INTERACTION_TTL = 4 * 3600.0  # seconds without news before an interaction is dropped


@dataclass(slots=True)
class QueueState:
    """What the Floor knows about one queue."""

    source: str
    queue_id: str
    name: str | None = None
    waiting: int = 0
    interacting: int = 0
    alerting: int = 0
    longest_waiting_since: float | None = None
    on_queue_agents: int = 0
    idle_agents: int = 0
    interval_start: float | None = None
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    sl_numerator: int = 0
    sl_denominator: int = 0

    @property
    def key(self) -> RowKey:
        """Return this queue's row key."""
        return ("queue", self.source, self.queue_id)

    @property
    def service_level(self) -> float | None:
        """Return the share of contacts answered within target this interval (0..1), if any were."""
        if not self.sl_denominator:
            return None
        return self.sl_numerator / self.sl_denominator

    def as_dict(self) -> dict[str, Any]:
        """Return the state as plain data (for JSON and tests)."""
        return {name: getattr(self, name) for name in QUEUE_FIELDS} | {"id": self.queue_id}


@dataclass(slots=True)
class AgentState:
    """What the Floor knows about one agent."""

    source: str
    agent_id: str
    name: str | None = None
    presence: str | None = None
    presence_since: float | None = None
    routing_status: str | None = None
    routing_since: float | None = None
    queue_ids: frozenset[str] = field(default_factory=frozenset)

    @property
    def key(self) -> RowKey:
        """Return this agent's row key."""
        return ("agent", self.source, self.agent_id)

    @property
    def status(self) -> str:
        """Return the one status a supervisor reads: routing status when on queue, else presence."""
        if self.presence in (None, "on_queue") and self.routing_status:
            return self.routing_status.lower()
        return self.presence or "unknown"

    @property
    def status_since(self) -> float | None:
        """Return when the status shown by ``status`` began (epoch seconds)."""
        if self.presence in (None, "on_queue") and self.routing_status:
            return self.routing_since
        return self.presence_since

    def as_dict(self) -> dict[str, Any]:
        """Return the state as plain data (for JSON and tests)."""
        data = {name: getattr(self, name) for name in AGENT_FIELDS}
        data["queue_ids"] = sorted(self.queue_ids)
        return data | {"id": self.agent_id}


@dataclass(slots=True)
class InteractionState:
    """What the Floor knows about one live interaction."""

    source: str
    interaction_id: str
    media: str | None = None
    queue_id: str | None = None
    state: str | None = None
    agent_id: str | None = None
    agent_name: str | None = None
    campaign: str | None = None
    disposition: str | None = None
    started_at: float | None = None
    state_since: float | None = None  # when ``state`` last changed, by the Floor's wall clock

    @property
    def key(self) -> RowKey:
        """Return this interaction's row key."""
        return ("interaction", self.source, self.interaction_id)

    def as_dict(self) -> dict[str, Any]:
        """Return the state as plain data (for JSON and tests)."""
        data = {name: getattr(self, name) for name in INTERACTION_FIELDS}
        return data | {"state_since": self.state_since, "id": self.interaction_id}


def _normalise(name: str, value: Any) -> Any:
    if name == "queue_ids":
        return frozenset(value)
    if name in ("presence",) and value is not None:
        return str(value).lower()
    if name == "routing_status" and value is not None:
        return str(value).upper()
    return value


def _interaction_value(name: str, value: Any) -> Any:
    """Return VALUE as the Floor keeps it: text fields as short strings, times as floats."""
    if value is None:
        return None
    if name == "started_at":
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
    text = str(value)[:200]
    if name in ("state", "media"):
        text = text.lower()
    return text or None


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
            template = QueueState(source=event.source, queue_id=event.queue_id, name=state.name)
            values = {name: getattr(template, name) for name in QUEUE_FIELDS} | values
        if values.get("waiting") == 0:
            values["longest_waiting_since"] = None
        changed = created
        # Queue fields are names, counts and times that need no normalising (see _normalise): compare as they are.
        for name, value in values.items():
            if getattr(state, name) != value:
                setattr(state, name, value)
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
            template = AgentState(source=event.source, agent_id=event.agent_id, name=state.name)
            values = {name: getattr(template, name) for name in AGENT_FIELDS} | values
        changed = created
        for name, value in values.items():
            value = _normalise(name, value)
            if getattr(state, name) != value:
                setattr(state, name, value)
                changed = True
        return {state.key} if changed else set()

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
            # A snapshot states every field: anything it leaves out is cleared (every default is None).
            values = _NO_INTERACTION_FIELDS | values
        moved = created
        for name, value in values.items():
            value = _interaction_value(name, value)
            if getattr(state, name) != value:
                setattr(state, name, value)
                moved = True
                if name == "state":
                    state.state_since = self.wall_clock()
        if created and state.state_since is None:
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
