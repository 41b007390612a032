"""Figures over a sliding window ("abandoned in the last 15 minutes"), counted from the rises of interval figures.

Vendors report interval totals (Genesys: abandoned since the half hour began);
a supervisor also wants the last 15 minutes, which no interval gives. The
Floor sees every change of a total, so it counts each rise as it happens:

- a rise within the same interval counts its difference;
- a new interval counts its whole total (those contacts came since it began,
  which the vendor announces as it begins);
- a first sighting, or a total after a snapshot reset the interval, counts
  nothing: it is the base later rises are measured from, not news. After a
  worker starts, the window fills over its first ``window`` seconds.

Each rise is stamped with the Floor's clock and taken away again when it
leaves the window. Rises are added in time order, so one queue of
``(expiry, row, field, amount)`` per window length, for all rows, keeps
expiry at O(rises expired), never a scan of the rows.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from streams.schema import Field


def rise(old_total: Any, old_interval: Any, new_total: Any, new_interval: Any) -> int:
    """Return how much of NEW_TOTAL is news since OLD_TOTAL (see the module's rules)."""
    if old_interval is None or new_interval is None or not isinstance(new_total, int):
        return 0
    if new_interval == old_interval:
        return max(new_total - old_total, 0) if isinstance(old_total, int) else 0
    return new_total if new_interval > old_interval else 0


class RollingCounts:
    """The rises counted into every row's rolling fields, in time order, so each leaves its window in turn."""

    def __init__(self) -> None:
        # Window length → its rises, oldest first (a queue is in expiry order only for one length).
        self._rises: dict[float, deque[tuple[float, Any, str, int]]] = {}

    def __len__(self) -> int:
        return sum(len(rises) for rises in self._rises.values())

    def add(self, state: Any, spec: Field, amount: int, now: float) -> None:
        """Count AMOUNT into STATE's rolling field SPEC now; it leaves the window ``spec.window`` seconds on."""
        setattr(state, spec.name, getattr(state, spec.name) + amount)
        rises = self._rises.get(spec.window)
        if rises is None:
            rises = self._rises[spec.window] = deque()
        rises.append((now + spec.window, state, spec.name, amount))

    def expire(self, now: float) -> list[Any]:
        """Take every rise that has left its window off its row; return the rows changed (maybe repeated)."""
        changed = []
        for rises in self._rises.values():
            while rises and rises[0][0] <= now:
                _, state, name, amount = rises.popleft()
                setattr(state, name, max(getattr(state, name) - amount, 0))
                changed.append(state)
        return changed
