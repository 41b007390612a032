"""Queue totals from Genesys' media-type groups.

Genesys reports a queue's contact counts and interval aggregates per media
type (a voice group, a message group, ...) and its agent counts in a group
of their own. Each socket message carries one group, so taking a message as
the whole queue would let the last media type overwrite the others. This
keeps the last figures of every group and hands out the queue's totals.

A group without a media type states the whole queue for the fields it
reports, so it replaces whatever the media groups said about those fields
(and a media group replaces what a whole-queue group said): the totals are
right whichever way a tenant's messages are grouped.
"""

from __future__ import annotations

from typing import Any

from streams.events import QueueStats, reported
from streams.schema import EARLIEST, INTERVAL, LIVE, QUEUE, SUM
from streams.vendors.genesys.queue_metrics import QueuePart

# From the schema: live counts summed over the groups, interval aggregates summed over the groups in the
# current interval, and the longest wait (the earliest start of any group).
SUMMED = QUEUE.per_media(SUM, LIVE)
AGGREGATES = QUEUE.per_media(SUM, INTERVAL)
EARLIEST_OF = QUEUE.per_media(EARLIEST)
BY_MEDIA = frozenset((*SUMMED, *AGGREGATES, *EARLIEST_OF))
# The fields that decide the interval totals: which interval is current, and each group's figures in it.
_INTERVAL_INPUTS = frozenset(("interval_start", *AGGREGATES))


class MediaTotals:
    """The latest figures of each media group per queue, and the queue's totals over them.

    The totals are kept per queue and brought up to date field by field: a
    message changes its group's figures only for the fields it reports, so
    only the totals that depend on those fields are worked out again (over the
    queue's few groups). Everything else is handed on as it stands.
    """

    def __init__(self) -> None:
        # queue id → media type ("" = the whole queue) → the latest fields of that group
        self._parts: dict[str, dict[str, dict[str, Any]]] = {}
        # queue id → the totals over its groups; always equal to _totals_of(self._parts[queue id])
        self._totals: dict[str, dict[str, Any]] = {}

    def add(self, part: QueuePart) -> QueueStats:
        """Fold one group's figures in; return the queue's stats with totals for every media-split field."""
        stats = part.stats
        queue_id = stats.queue_id
        values = reported(stats)
        groups = self._parts.get(queue_id)
        if groups is None:
            groups = self._parts[queue_id] = {}
            self._totals[queue_id] = {}
        totals = self._totals[queue_id]
        split = [name for name in values if name in BY_MEDIA]
        if split:
            for media, fields in groups.items():
                if media != part.media_type and "" in (media, part.media_type):
                    for name in split:
                        fields.pop(name, None)
        groups.setdefault(part.media_type, {}).update(values)
        _refresh(totals, groups, values)
        passthrough = {name: value for name, value in values.items() if name not in BY_MEDIA}
        # Every field here comes from an event or from sums of them: the event is built without its __init__.
        return QueueStats.of(stats.source, queue_id, passthrough | totals)

    def replace(self, queue_id: str, parts: list[QueuePart]) -> dict[str, Any]:
        """Make PARTS (a REST snapshot's groups of one queue) the whole picture; return the queue's fields."""
        groups: dict[str, dict[str, Any]] = {}
        for part in parts:
            groups.setdefault(part.media_type, {}).update(reported(part.stats))
        self._parts[queue_id] = groups
        totals = self._totals[queue_id] = _totals_of(groups)
        passthrough: dict[str, Any] = {}
        for fields in groups.values():
            passthrough |= {name: value for name, value in fields.items() if name not in BY_MEDIA}
        return passthrough | totals

    def keep_only(self, queue_ids: set[str] | tuple[str, ...]) -> None:
        """Forget queues no longer watched."""
        for queue_id in set(self._parts) - set(queue_ids):
            del self._parts[queue_id]
            del self._totals[queue_id]


def _totals_of(groups: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Return the totals of every media-split field over GROUPS, worked out afresh."""
    totals: dict[str, Any] = {}
    for name in SUMMED:
        _sum_into(totals, groups, name)
    for name in EARLIEST_OF:
        _earliest_into(totals, groups, name)
    _interval_into(totals, groups)
    return totals


def _refresh(totals: dict[str, Any], groups: dict[str, dict[str, Any]], changed: dict[str, Any]) -> None:
    """Bring TOTALS up to date after the groups' fields named in CHANGED (and only those) changed."""
    for name in SUMMED:
        if name in changed:
            _sum_into(totals, groups, name)
    for name in EARLIEST_OF:
        if name in changed:
            _earliest_into(totals, groups, name)
    if not _INTERVAL_INPUTS.isdisjoint(changed):
        _interval_into(totals, groups)


def _sum_into(totals: dict[str, Any], groups: dict[str, dict[str, Any]], name: str) -> None:
    """Set totals[NAME] to the sum over the groups that report it (absent if none does)."""
    reporting = [fields[name] for fields in groups.values() if name in fields]
    if reporting:
        totals[name] = sum(reporting)
    else:
        totals.pop(name, None)


def _earliest_into(totals: dict[str, Any], groups: dict[str, dict[str, Any]], name: str) -> None:
    """Set totals[NAME] to the earliest time any group reports (the longest wait; None if every group says none)."""
    times = [fields[name] for fields in groups.values() if name in fields]
    if times:
        known = [since for since in times if since is not None]
        totals[name] = min(known) if known else None
    else:
        totals.pop(name, None)


def _interval_into(totals: dict[str, Any], groups: dict[str, dict[str, Any]]) -> None:
    """Set the current interval's start and its aggregates, summed over the groups already in it."""
    starts = [fields["interval_start"] for fields in groups.values() if fields.get("interval_start") is not None]
    if not starts:
        for name in ("interval_start", *AGGREGATES):
            totals.pop(name, None)
        return
    # A group still on the previous interval has nothing in the current one yet.
    current = max(starts)
    totals["interval_start"] = current
    in_current = [fields for fields in groups.values() if fields.get("interval_start") == current]
    for name in AGGREGATES:
        totals[name] = sum(fields.get(name, 0) for fields in in_current)
