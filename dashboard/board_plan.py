"""What the publisher knows of one board: the queues it shows, from which sources, and how often it flushes."""

from __future__ import annotations

from dataclasses import dataclass, field

from dashboard import protocol
from dashboard.rows import QueueConfig


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
