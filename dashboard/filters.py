"""Per-viewer row filters: which queues, agent statuses, campaigns and dispositions a viewer wants to see.

A filter works on a row's ``attrs`` only (see dashboard/rows.py), so the
consumer can apply it to pushed rows without rendering or touching the
database. An empty part means "everything".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from dashboard.rows import STATUS_LABELS

# The statuses offered as filter choices, in the order a supervisor scans them.
FILTER_STATUSES = (
    "idle",
    "interacting",
    "communicating",
    "not_responding",
    "off_queue",
    "available",
    "busy",
    "away",
    "break",
    "meal",
    "meeting",
    "training",
    "offline",
)
STATUS_CHOICES = tuple((status, STATUS_LABELS[status]) for status in FILTER_STATUSES)

MAX_VALUES = 500
_QUEUE_VALUE = re.compile(r"\d{1,18}")
_STATUS_VALUE = re.compile(r"[a-z][a-z0-9_]{0,39}")
# Campaigns and dispositions are the vendor's own words: any printable text of a sensible length.
_LABEL_VALUE = re.compile(r"[^\x00-\x1f\x7f]{1,200}")
# The value a filter uses for "no disposition yet" (a live interaction usually has none).
NO_DISPOSITION = "(none)"


def _values(raw: Any) -> list[str]:
    """Return RAW (a string, a number or a list of them) as a list of strings; raise ValueError on anything else."""
    if raw is None:
        return []
    if isinstance(raw, str | int) and not isinstance(raw, bool):
        raw = [raw]
    if not isinstance(raw, list | tuple) or len(raw) > MAX_VALUES:
        raise ValueError("expected a list of values")
    values = []
    for item in raw:
        if isinstance(item, bool) or not isinstance(item, str | int):
            raise ValueError("filter values must be strings")
        # Query strings and forms may pack several values into one, comma-separated.
        values.extend(part.strip() for part in str(item).split(",") if part.strip())
    if len(values) > MAX_VALUES:
        raise ValueError("too many filter values")
    return values


def _labels(raw: Any, what: str) -> list[str]:
    """Return campaign or disposition values; commas are part of a label, so they are not split."""
    if raw is None:
        return []
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list | tuple) or len(raw) > MAX_VALUES:
        raise ValueError(f"{what} filter values must be a list")
    values = []
    for item in raw:
        if not isinstance(item, str) or not _LABEL_VALUE.fullmatch(item.strip()):
            raise ValueError(f"{what} filter values must be short text")
        values.append(item.strip())
    return values


@dataclass(frozen=True)
class RowFilter:
    """A viewer's filter; every empty part means "everything".

    Queue pks apply to queue, agent and interaction rows; statuses to agent rows;
    campaigns and dispositions to interaction rows.
    """

    queues: frozenset[str] = frozenset()
    statuses: frozenset[str] = frozenset()
    campaigns: frozenset[str] = frozenset()
    dispositions: frozenset[str] = frozenset()

    @classmethod
    def parse(
        cls, queues: Any = None, statuses: Any = None, campaigns: Any = None, dispositions: Any = None
    ) -> RowFilter:
        """Return the filter for client-supplied values; raise ValueError if any value is malformed."""
        queue_values = _values(queues)
        status_values = [value.lower() for value in _values(statuses)]
        if not all(_QUEUE_VALUE.fullmatch(value) for value in queue_values):
            raise ValueError("queue filter values must be queue numbers")
        if not all(_STATUS_VALUE.fullmatch(value) for value in status_values):
            raise ValueError("status filter values must be status codes")
        return cls(
            queues=frozenset(queue_values),
            statuses=frozenset(status_values),
            campaigns=frozenset(_labels(campaigns, "campaign")),
            dispositions=frozenset(_labels(dispositions, "disposition")),
        )

    @classmethod
    def from_query(cls, params: Mapping[str, Iterable[str]]) -> RowFilter:
        """Return the filter in a query string (``queue``, ``status``, ``campaign``, ``disposition``), ignoring junk."""

        def raw(name: str) -> list[str]:
            return list(params.getlist(name) if hasattr(params, "getlist") else params.get(name, []))

        queues: list[str] = []
        statuses: list[str] = []
        for name, bucket, pattern in (("queue", queues, _QUEUE_VALUE), ("status", statuses, _STATUS_VALUE)):
            try:
                values = _values(raw(name))
            except ValueError:
                continue
            bucket.extend(v.lower() for v in values if pattern.fullmatch(v.lower()))
        labels = {}
        for name in ("campaign", "disposition"):
            values = [v.strip() for v in raw(name)[:MAX_VALUES] if isinstance(v, str)]
            labels[name] = frozenset(v for v in values if _LABEL_VALUE.fullmatch(v))
        return cls(
            queues=frozenset(queues),
            statuses=frozenset(statuses),
            campaigns=labels["campaign"],
            dispositions=labels["disposition"],
        )

    def __bool__(self) -> bool:
        return bool(self.queues or self.statuses or self.campaigns or self.dispositions)

    def matches(self, row: Mapping[str, Any]) -> bool:
        """Return whether ROW passes: queue rows by their queue, agent rows by queues and status,
        interaction rows by queue, campaign and disposition."""
        attrs = row.get("attrs") or {}
        kind = row.get("kind")
        if kind == "queue":
            return not self.queues or attrs.get("queue") in self.queues
        if kind == "interaction":
            if self.queues and attrs.get("queue") not in self.queues:
                return False
            if self.campaigns and attrs.get("campaign") not in self.campaigns:
                return False
            return not self.dispositions or (attrs.get("disposition") or NO_DISPOSITION) in self.dispositions
        if self.queues and not self.queues.intersection(attrs.get("queues") or ()):
            return False
        return not self.statuses or attrs.get("status") in self.statuses


def sort_key(row: Mapping[str, Any]) -> tuple[str, str]:
    """Return where ROW sits in its table: by name (interactions: oldest first), then key, so every viewer
    sees one order."""
    data = row.get("data") or {}
    if row.get("kind") == "interaction":
        return (f"{data.get('started_at') or 0:020.3f}", str(row.get("key") or ""))
    return (str(data.get("name") or "").casefold(), str(row.get("key") or ""))


def select_rows(rows: Iterable[Mapping[str, Any]], kind: str, row_filter: RowFilter) -> list[Mapping[str, Any]]:
    """Return the rows of KIND that pass ROW_FILTER, in display order."""
    return sorted((row for row in rows if row.get("kind") == kind and row_filter.matches(row)), key=sort_key)
