"""The Floor: the live, in-memory picture of queues and agents from every source.

``apply(event)`` returns the keys of the rows that really changed, so an event
that changes nothing causes no work downstream. ``replace(snapshot)`` diffs a
source's full picture against what the Floor holds and returns only the true
differences (a resync after a reconnect is usually quiet). Every operation
costs O(size of the event), never a scan of the whole Floor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streams.events import (
    UNSET,
    AgentStatus,
    Event,
    QueueMembership,
    QueueStats,
    SourceSnapshot,
    reported,
)

# A row key: ("queue" | "agent", source, vendor id).
RowKey = tuple[str, str, str]

QUEUE_FIELDS = tuple(k for k in QueueStats.__dataclass_fields__ if k not in ("source", "queue_id"))
AGENT_FIELDS = tuple(k for k in AgentStatus.__dataclass_fields__ if k not in ("source", "agent_id"))


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


def _normalise(name: str, value: Any) -> Any:
    if name == "queue_ids":
        return frozenset(value)
    if name in ("presence",) and value is not None:
        return str(value).lower()
    if name == "routing_status" and value is not None:
        return str(value).upper()
    return value


class Floor:
    """The in-memory model every publisher renders from."""

    def __init__(self) -> None:
        self.queues: dict[tuple[str, str], QueueState] = {}
        self.agents: dict[tuple[str, str], AgentState] = {}
        # Per source: the ids it holds, so a snapshot diff never scans other sources.
        self._queue_ids: dict[str, set[str]] = {}
        self._agent_ids: dict[str, set[str]] = {}
        self.events_applied = 0

    # -- reading ------------------------------------------------------------

    def queue(self, source: str, queue_id: str) -> QueueState | None:
        """Return one queue, or None."""
        return self.queues.get((source, queue_id))

    def agent(self, source: str, agent_id: str) -> AgentState | None:
        """Return one agent, or None."""
        return self.agents.get((source, agent_id))

    def row(self, key: RowKey) -> QueueState | AgentState | None:
        """Return the state behind a row key, or None if it is gone."""
        kind, source, ident = key
        return (self.queues if kind == "queue" else self.agents).get((source, ident))

    def source_queue_ids(self, source: str) -> set[str]:
        """Return the queue ids SOURCE holds."""
        return set(self._queue_ids.get(source, ()))

    def source_agent_ids(self, source: str) -> set[str]:
        """Return the agent ids SOURCE holds."""
        return set(self._agent_ids.get(source, ()))

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
        return changed

    def drop_source(self, source: str) -> set[RowKey]:
        """Forget everything from SOURCE (its connection was removed or disabled)."""
        return self.replace(SourceSnapshot(source=source))

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

    def _remove_queue(self, source: str, queue_id: str) -> RowKey:
        self.queues.pop((source, queue_id), None)
        self._queue_ids.get(source, set()).discard(queue_id)
        return ("queue", source, queue_id)

    def _remove_agent(self, source: str, agent_id: str) -> RowKey:
        self.agents.pop((source, agent_id), None)
        self._agent_ids.get(source, set()).discard(agent_id)
        return ("agent", source, agent_id)


__all__ = ["UNSET", "AgentState", "Floor", "QueueState", "RowKey"]
