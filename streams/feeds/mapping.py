"""Field mappings: how a generic feed's records become Floorview interaction updates.

A customer's middleware names things its own way. A ``FieldMapping`` (edited
in the admin as JSON) says, for each Floorview field, the dotted path that
holds it in a record, e.g. ``{"queue_id": "payload.queue.id"}``; fields left
out use the standard names of ``docs/protocols/generic.md``. ``terminal_types`` lists
the record types that end an interaction, and ``states`` renames the feed's
states onto Floorview's (``{"ACW": "wrapup"}``).

``RecordFolder`` turns records into events: records with the same interaction
id update one row, a record older than one already applied is dropped (replays
after a reconnect are harmless), and a terminal type ends the row. Times go
through ``streams.sanity``: a record stamped far ahead of our clock is ordered
as if stamped now but moves no "last applied" mark (it must not make the row's
real updates look stale, nor those stamped before it was processed); only a
record that folded moves the mark; and a start time outside the sane window is
left out (counted), not the record.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from streams import sanity
from streams.events import UNSET, InteractionUpdate

# Floorview field → default dotted path in a record.
DEFAULT_PATHS: dict[str, str] = {
    "id": "id",
    "type": "type",
    "timestamp": "timestamp",
    "interaction_id": "interaction_id",
    "queue_id": "queue_id",
    "agent_id": "agent_id",
    "agent_name": "payload.agent_name",
    "state": "state",
    "campaign": "campaign_id",
    "disposition": "disposition",
    "media": "payload.media",
    "started_at": "payload.started_at",
}
DEFAULT_TERMINAL_TYPES = ("interaction.ended",)
MAX_PATH_DEPTH = 8
MAX_TRACKED = 100_000  # interactions whose last timestamp is remembered, per feed


class MappingError(ValueError):
    """A field mapping that cannot be used (unknown field, bad path, wrong type)."""


class RecordError(ValueError):
    """A record that cannot be mapped (not an object, no interaction id)."""


def _path(value: Any, name: str) -> tuple[str, ...]:
    if not isinstance(value, str) or not value.strip():
        raise MappingError(f"{name}: a path must be a non-empty string such as payload.queue.id")
    parts = tuple(value.strip().split("."))
    if len(parts) > MAX_PATH_DEPTH or any(not p for p in parts):
        raise MappingError(f"{name}: {value!r} is not a dotted path of at most {MAX_PATH_DEPTH} parts")
    return parts


@dataclass(frozen=True)
class FieldMapping:
    """Where each Floorview field sits in a feed's records."""

    paths: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: {name: tuple(path.split(".")) for name, path in DEFAULT_PATHS.items()}
    )
    terminal_types: frozenset[str] = frozenset(DEFAULT_TERMINAL_TYPES)
    states: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: Any) -> FieldMapping:
        """Return the mapping RAW (the admin's JSON) describes; raise MappingError when it is unusable."""
        if raw in (None, "", {}):
            return cls()
        if not isinstance(raw, dict):
            raise MappingError("the mapping must be a JSON object")
        paths = {name: tuple(path.split(".")) for name, path in DEFAULT_PATHS.items()}
        terminal = frozenset(DEFAULT_TERMINAL_TYPES)
        states: dict[str, str] = {}
        for name, value in raw.items():
            if name == "terminal_types":
                if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                    raise MappingError("terminal_types must be a list of record types")
                terminal = frozenset(value)
            elif name == "states":
                if not isinstance(value, dict) or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in value.items()
                ):
                    raise MappingError("states must map the feed's states to Floorview's, as strings")
                states = {k: v.lower() for k, v in value.items()}
            elif name in DEFAULT_PATHS:
                paths[name] = _path(value, name)
            else:
                known = ", ".join([*DEFAULT_PATHS, "terminal_types", "states"])
                raise MappingError(f"unknown field {name!r} (known: {known})")
        return cls(paths=paths, terminal_types=terminal, states=states)

    def get(self, record: dict, name: str) -> Any:
        """Return the value at NAME's path in RECORD, or UNSET when the record does not carry it."""
        value: Any = record
        for part in self.paths[name]:
            if not isinstance(value, dict) or part not in value:
                return UNSET
            value = value[part]
        return value


def _text(value: Any, limit: int = 200) -> Any:
    """Return VALUE as a short string (None and UNSET pass through); objects and lists are not text."""
    if value is UNSET or value is None:
        return value
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise RecordError("a text field holds an object or a list")
    if isinstance(value, float) and not math.isfinite(value):
        # 1e400 decodes as infinity: "inf" names no queue, agent or campaign.
        raise RecordError("a text field holds a number that is not finite")
    return str(value)[:limit]


def epoch_seconds(value: Any) -> Any:
    """Return VALUE (epoch milliseconds or an ISO-8601 string) as epoch seconds; UNSET and None pass through."""
    if value is UNSET or value is None:
        return value
    if isinstance(value, bool):
        raise RecordError("a time is a boolean")
    if isinstance(value, int | float):
        if not 0 <= value < 1e14:
            raise RecordError("a time is out of range")
        return value / 1000.0
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except (ValueError, OverflowError, OSError):
            raise RecordError("a time is not ISO-8601") from None
    raise RecordError("a time is neither a number nor a string")


@dataclass
class Folded:
    """What one record became: an event to emit, or why it was dropped."""

    event: InteractionUpdate | None
    dropped: str | None = None  # "stale" (older than what was applied) or None


class RecordFolder:
    """Map records to interaction updates, dropping any older than the last applied per interaction."""

    def __init__(
        self,
        source: str,
        mapping: FieldMapping,
        *,
        max_tracked: int = MAX_TRACKED,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.source = source
        self.mapping = mapping
        self.max_tracked = max_tracked
        self._clock = clock  # what "now" is to the ordering rule of ``streams.sanity``
        self._last: OrderedDict[str, float] = OrderedDict()

    def fold(self, record: Any) -> Folded:
        """Return the event RECORD means; raise RecordError when it cannot be mapped."""
        if not isinstance(record, dict):
            raise RecordError("a record must be an object")
        m = self.mapping
        interaction_id = m.get(record, "interaction_id")
        if interaction_id is UNSET or interaction_id is None or interaction_id == "":
            raise RecordError("the record has no interaction id")
        interaction_id = _text(interaction_id, 100)
        stamp = epoch_seconds(m.get(record, "timestamp"))
        applied: float | None = None  # the stamp to remember once the record has folded
        if isinstance(stamp, float):
            ordered = sanity.ordering(stamp, now=self._clock())
            last = self._last.get(interaction_id)
            if ordered is not None and last is not None and ordered < last:
                return Folded(None, "stale")
            # A stamp far ahead is ordered as now but remembered as nothing: remembering *now* would drop
            # every real record stamped before this one was processed (a backlog, plain latency).
            applied = stamp if ordered == stamp else None
        event = self._event(interaction_id, record)
        if applied is not None:
            # Only a record that folded moves its interaction's cursor.
            self._last[interaction_id] = applied
            self._last.move_to_end(interaction_id)
            if len(self._last) > self.max_tracked:
                self._last.popitem(last=False)
        return Folded(event)

    def _event(self, interaction_id: str, record: dict[str, Any]) -> InteractionUpdate:
        m = self.mapping
        record_type = m.get(record, "type")
        state = _text(m.get(record, "state"), 40)
        if isinstance(state, str):
            state = m.states.get(state, state.lower())
        if isinstance(record_type, str) and record_type in m.terminal_types:
            return InteractionUpdate(source=self.source, interaction_id=interaction_id, ended=True)
        return InteractionUpdate(
            source=self.source,
            interaction_id=interaction_id,
            media=_text(m.get(record, "media"), 40),
            queue_id=_text(m.get(record, "queue_id"), 100),
            state=state,
            agent_id=_text(m.get(record, "agent_id"), 100),
            agent_name=_text(m.get(record, "agent_name")),
            campaign=_text(m.get(record, "campaign")),
            disposition=_text(m.get(record, "disposition")),
            started_at=_moment(m.get(record, "started_at")),
        )


def _moment(value: Any) -> Any:
    """Return a time field as epoch seconds; UNSET (counted ``bad_time``) when unreadable or outside the sane window.

    None and UNSET pass through. A bad time costs its field, not the record.
    """
    try:
        seconds = epoch_seconds(value)
    except RecordError:
        sanity.refuse(sanity.BAD_TIME)
        return UNSET
    if seconds is UNSET or seconds is None:
        return seconds
    checked = sanity.moment(seconds)
    return UNSET if checked is None else checked
