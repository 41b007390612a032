"""A board's rows made from the Floor: which rows a board shows, one row rendered for one board, and its DOM key.

The row itself is made in dashboard.rows; here is what a board adds to it:
the board's own queue settings, the queue names of each source for agents
and interactions, and the rule that a row none of the board's queues
concern is not shown (rendered as None, so the publisher removes it).
"""

from __future__ import annotations

from dashboard.board_plan import BoardPlan, BoardState
from dashboard.rows import agent_row, interaction_key, interaction_row, queue_row
from streams.floor import AgentState, Floor, InteractionState, QueueState, RowKey


def row_key_of(key: RowKey, plan: BoardPlan) -> str | None:
    """Return the DOM key of a Floor row on a board, or None if the board cannot show it."""
    kind, source, ident = key
    if kind == "queue":
        config = plan.queues.get((source, ident))
        return f"q-{config.pk}" if config else None
    if kind == "interaction":
        return interaction_key(source, ident)
    return f"a-{source}-{ident}"


def render_row(floor: Floor, key: RowKey, state: BoardState) -> dict | None:
    """Return the rendered row for KEY on a board, or None if the board does not show it."""
    plan = state.plan
    kind, source, ident = key
    row = floor.row(key)
    if row is None:
        return None
    if kind == "queue":
        config = plan.queues.get((source, ident))
        if config is None:
            return None
        assert isinstance(row, QueueState)
        return queue_row(row, config)
    if kind == "interaction":
        assert isinstance(row, InteractionState)
        queues = state.queues_by_source.get(source)
        if queues is None or (row.queue_id is not None and row.queue_id not in queues):
            return None
        agent = floor.agents.get((source, row.agent_id)) if row.agent_id else None
        return interaction_row(row, queues, agent.name if agent else None)
    assert isinstance(row, AgentState)
    queues = state.queues_by_source.get(source, {})
    if not any(qid in queues for qid in row.queue_ids):
        return None
    return agent_row(row, queues)


def board_rows(floor: Floor, plan: BoardPlan) -> set[RowKey]:
    """Return the keys of every Floor row that may show on the board PLAN describes."""
    keys: set[RowKey] = {("queue", source, vid) for source, vid in plan.queues}
    for source in plan.sources:
        keys.update(("agent", source, aid) for aid in floor.source_agent_ids(source))
        keys.update(("interaction", source, iid) for iid in floor.source_interaction_ids(source))
    return keys
