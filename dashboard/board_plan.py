"""What the publisher knows of one board: the queues it shows, from which sources, how often it flushes.

``BoardPlan`` is the board as configured (read by dashboard.work_plan);
``BoardState`` is the publisher's bookkeeping for it between flushes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from dashboard import protocol
from dashboard.rows import QueueConfig
from streams.floor import RowKey


@dataclass(frozen=True)
class BoardPlan:
    """What one board shows: its queues (by source and vendor id) and its window."""

    board_id: int
    slug: str
    window: float
    queues: dict[tuple[str, str], QueueConfig] = field(default_factory=dict)
    # Sources of the board's queues whose connection an admin disabled: not streamed, but the
    # board must say so rather than look live with nothing on it.
    disabled_sources: frozenset[str] = frozenset()

    @property
    def group(self) -> str:
        """Return the board's Channels group."""
        return protocol.group_name(self.board_id)

    @property
    def sources(self) -> set[str]:
        """Return the sources the board's queues come from."""
        return {source for source, _ in self.queues}

    def queues_of(self, source: str) -> dict[str, QueueConfig]:
        """Return vendor id → config for the board's queues from SOURCE."""
        return {vid: cfg for (src, vid), cfg in self.queues.items() if src == source}


class BoardState:
    """The publisher's bookkeeping for one board: its plan, its seq, what changed and what the board shows."""

    def __init__(self, plan: BoardPlan) -> None:
        self.plan = plan
        self.seq = 0
        self.dirty: set[RowKey] = set()
        # A new or changed plan re-renders every row and removes what the board no longer shows.
        self.full = True
        self.shown: set[str] = set()
        self.last_flush = 0.0
        self.last_sent = float("-inf")  # when the last delta went out (it tells viewers what a tick would)
        self.timer: asyncio.TimerHandle | None = None
        self.flushing: asyncio.Task | None = None
        # Rows keyed per source, for the queue-names lookup when rendering agents.
        self.queues_by_source = {src: plan.queues_of(src) for src in plan.sources}

    def adopt(self, plan: BoardPlan) -> None:
        """Take PLAN over from the board's old one: every row is rendered again at the next flush."""
        self.plan = plan
        self.queues_by_source = {src: plan.queues_of(src) for src in plan.sources}
        self.full = True
