"""Which boards show each Floor row, so that a change is flushed on exactly the boards it concerns.

A queue row shows on the boards whose plans list the queue. An agent row
follows its queue memberships, and an interaction its queue; an interaction
without a queue shows on every board of its source. Agents and interactions
move between boards as they change, so a change is also flushed on the
boards a row just left, where it is removed.
"""

from __future__ import annotations

from collections.abc import Iterable

from dashboard.board_plan import BoardPlan
from streams.floor import AgentState, Floor, InteractionState, RowKey


def _rehome(index: dict[RowKey, set[int]], key: RowKey, now_on: set[int]) -> set[int]:
    """Record that KEY's row now shows on the boards NOW_ON; return those and the boards it left (to remove it)."""
    before = index.get(key, set())
    if now_on:
        index[key] = now_on
    else:
        index.pop(key, None)
    return now_on | before


class BoardIndex:
    """Floor row → the boards showing it, kept up to date as plans and rows change."""

    def __init__(self, floor: Floor) -> None:
        self.floor = floor
        self._queue_boards: dict[tuple[str, str], set[int]] = {}
        self._agent_boards: dict[RowKey, set[int]] = {}
        # Interactions follow their queue; one without a queue shows on every board of its source.
        self._source_boards: dict[str, set[int]] = {}
        self._interaction_boards: dict[RowKey, set[int]] = {}

    def rebuild(self, plans: Iterable[BoardPlan]) -> None:
        """Index the rows of the Floor on the boards PLANS describe (all of them, replacing what was)."""
        self._queue_boards = {}
        self._source_boards = {}
        for plan in plans:
            for qkey in plan.queues:
                self._queue_boards.setdefault(qkey, set()).add(plan.board_id)
                self._source_boards.setdefault(qkey[0], set()).add(plan.board_id)
        self._agent_boards = {}
        for agent in self.floor.agents.values():
            boards = self._boards_for_agent(agent)
            if boards:
                self._agent_boards[agent.key] = boards
        self._interaction_boards = {}
        for interaction in self.floor.interactions.values():
            boards = self._boards_for_interaction(interaction)
            if boards:
                self._interaction_boards[interaction.key] = boards

    def boards_of(self, key: RowKey) -> set[int]:
        """Return the boards a change to KEY's row concerns: those showing it now and those it just left."""
        kind, source, ident = key
        if kind == "queue":
            return self._queue_boards.get((source, ident), set())
        if kind == "interaction":
            interaction = self.floor.interactions.get((source, ident))
            now_on = self._boards_for_interaction(interaction) if interaction else set()
            return _rehome(self._interaction_boards, key, now_on)
        agent = self.floor.agents.get((source, ident))
        now_on = self._boards_for_agent(agent) if agent else set()
        return _rehome(self._agent_boards, key, now_on)

    def _boards_for_agent(self, agent: AgentState) -> set[int]:
        boards: set[int] = set()
        for queue_id in agent.queue_ids:
            boards |= self._queue_boards.get((agent.source, queue_id), set())
        return boards

    def _boards_for_interaction(self, interaction: InteractionState) -> set[int]:
        if interaction.queue_id is None:
            return self._source_boards.get(interaction.source, set())
        return self._queue_boards.get((interaction.source, interaction.queue_id), set())
