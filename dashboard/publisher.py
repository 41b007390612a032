"""The publisher: coalesces Floor changes per board and pushes rendered rows.

At most once per board window it renders each changed row once (with the
same template partials the page uses), writes the rows to the snapshot store,
and sends one ``board.delta`` to the board's group. Rendering cost grows with
boards and changed rows, never with viewers. Between deltas a ``board.tick``
tells viewers how fresh the data is, so a silent worker shows up as stale.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Iterable

import redis.exceptions

from dashboard import protocol
from dashboard.board_health import board_status
from dashboard.board_plan import BoardPlan
from dashboard.rows import agent_row, interaction_key, interaction_row, queue_row
from streams.floor import AgentState, Floor, InteractionState, QueueState, RowKey
from streams.health import LinkHealth
from streams.snapshots import SnapshotStore

log = logging.getLogger(__name__)

# Failures that pass (Redis restarting, a network blip): logged briefly, retried, never fatal.
TRANSIENT = (OSError, TimeoutError, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def row_key_of(key: RowKey, plan: BoardPlan) -> str | None:
    """Return the DOM key of a Floor row on a board, or None if the board cannot show it."""
    kind, source, ident = key
    if kind == "queue":
        config = plan.queues.get((source, ident))
        return f"q-{config.pk}" if config else None
    if kind == "interaction":
        return interaction_key(source, ident)
    return f"a-{source}-{ident}"


def _rehome(index: dict[RowKey, set[int]], key: RowKey, now_on: set[int]) -> set[int]:
    """Record that KEY's row now shows on the boards NOW_ON; return those and the boards it left (to remove it)."""
    before = index.get(key, set())
    if now_on:
        index[key] = now_on
    else:
        index.pop(key, None)
    return now_on | before


class _BoardState:
    """The publisher's bookkeeping for one board."""

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


class Publisher:
    """Turns Floor changes into coalesced, rendered board updates."""

    def __init__(
        self,
        floor: Floor,
        *,
        layer,
        store: SnapshotStore,
        health_of: Callable[[str], LinkHealth | None] = lambda source: None,
        liveness_period: float = 1.0,
        clock: Callable[[], float] = time.time,
        epoch: str | None = None,
    ) -> None:
        self.floor = floor
        self.layer = layer
        self.store = store
        self.health_of = health_of
        self.liveness_period = liveness_period
        self.clock = clock
        self.epoch = epoch or secrets.token_hex(4)
        self.boards: dict[int, _BoardState] = {}
        # Floor row → boards showing it; agents' boards follow their queue memberships.
        self._queue_boards: dict[tuple[str, str], set[int]] = {}
        self._agent_boards: dict[RowKey, set[int]] = {}
        # Interactions follow their queue; one without a queue shows on every board of its source.
        self._source_boards: dict[str, set[int]] = {}
        self._interaction_boards: dict[RowKey, set[int]] = {}
        self.rows_rendered = 0
        self.deltas_sent = 0
        self.store_rewrites = 0
        self._closing = False

    # -- configuration --------------------------------------------------------

    def set_boards(self, plans: Iterable[BoardPlan]) -> None:
        """Adopt a new set of boards; boards whose plan changed are re-rendered in full."""
        plans = {plan.board_id: plan for plan in plans}
        for board_id in list(self.boards):
            if board_id not in plans:
                state = self.boards.pop(board_id)
                if state.timer:
                    state.timer.cancel()
        for board_id, plan in plans.items():
            state = self.boards.get(board_id)
            if state is None:
                state = self.boards[board_id] = _BoardState(plan)
            elif state.plan == plan:
                continue
            else:
                state.plan = plan
                state.queues_by_source = {src: plan.queues_of(src) for src in plan.sources}
                state.full = True
            self._schedule(state)
        self._queue_boards = {}
        self._source_boards = {}
        for board_id, state in self.boards.items():
            for qkey in state.plan.queues:
                self._queue_boards.setdefault(qkey, set()).add(board_id)
                self._source_boards.setdefault(qkey[0], set()).add(board_id)
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

    def _boards_for_agent(self, agent: AgentState) -> set[int]:
        boards: set[int] = set()
        for queue_id in agent.queue_ids:
            boards |= self._queue_boards.get((agent.source, queue_id), set())
        return boards

    def _boards_for_interaction(self, interaction: InteractionState) -> set[int]:
        if interaction.queue_id is None:
            return self._source_boards.get(interaction.source, set())
        return self._queue_boards.get((interaction.source, interaction.queue_id), set())

    # -- changes ---------------------------------------------------------------

    def mark(self, keys: Iterable[RowKey]) -> None:
        """Note rows that changed on the Floor; their boards flush within their window."""
        touched: set[int] = set()
        for key in keys:
            kind, source, ident = key
            if kind == "queue":
                boards = self._queue_boards.get((source, ident), set())
            elif kind == "interaction":
                interaction = self.floor.interactions.get((source, ident))
                now_on = self._boards_for_interaction(interaction) if interaction else set()
                boards = _rehome(self._interaction_boards, key, now_on)
            else:
                agent = self.floor.agents.get((source, ident))
                now_on = self._boards_for_agent(agent) if agent else set()
                boards = _rehome(self._agent_boards, key, now_on)
            for board_id in boards:
                self.boards[board_id].dirty.add(key)
                touched.add(board_id)
        for board_id in touched:
            self._schedule(self.boards[board_id])

    def _schedule(self, state: _BoardState) -> None:
        if state.timer is not None or state.flushing is not None or self._closing:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # No loop yet: the first flush_all() picks the rows up.
        # Leading edge: a change after a quiet spell goes out at once; a busy board once per window.
        delay = max(0.0, state.last_flush + state.plan.window - self.clock())
        state.timer = loop.call_later(delay, self._start_flush, state)

    def _start_flush(self, state: _BoardState) -> None:
        state.timer = None
        if self.boards.get(state.plan.board_id) is not state:
            return
        state.flushing = asyncio.create_task(self._flush_task(state))

    async def _flush_task(self, state: _BoardState) -> None:
        try:
            await self.flush(state.plan.board_id)
        except asyncio.CancelledError:
            raise
        except TRANSIENT as exc:
            # Keep the rows dirty and try again next window: a Redis blip must not lose updates.
            log.warning("flushing board %s failed (%s); retrying", state.plan.board_id, exc)
        except Exception:
            log.exception("flushing board %s failed", state.plan.board_id)
        finally:
            state.flushing = None
            if state.dirty or state.full:
                self._schedule(state)

    # -- output ------------------------------------------------------------------

    def board_status(self, plan: BoardPlan) -> tuple[float | None, dict]:
        """Return when the board's data was last confirmed live, and its upstream health (dashboard.board_health)."""
        return board_status(plan.sources, plan.disabled_sources, self.health_of, self.clock())

    def render(self, key: RowKey, state: _BoardState) -> dict | None:
        """Return the rendered row for KEY on a board, or None if the board no longer shows it."""
        plan = state.plan
        kind, source, ident = key
        row = self.floor.row(key)
        if row is None:
            return None
        if kind == "queue":
            config = plan.queues.get((source, ident))
            if config is None:
                return None
            assert isinstance(row, QueueState)
            self.rows_rendered += 1
            return queue_row(row, config)
        if kind == "interaction":
            assert isinstance(row, InteractionState)
            queues = state.queues_by_source.get(source)
            if queues is None or (row.queue_id is not None and row.queue_id not in queues):
                return None
            agent = self.floor.agents.get((source, row.agent_id)) if row.agent_id else None
            self.rows_rendered += 1
            return interaction_row(row, queues, agent.name if agent else None)
        assert isinstance(row, AgentState)
        queues = state.queues_by_source.get(source, {})
        if not any(qid in queues for qid in row.queue_ids):
            return None
        self.rows_rendered += 1
        return agent_row(row, queues)

    def _all_rows(self, plan: BoardPlan) -> set[RowKey]:
        keys: set[RowKey] = {("queue", source, vid) for source, vid in plan.queues}
        for source in plan.sources:
            keys.update(("agent", source, aid) for aid in self.floor.source_agent_ids(source))
            keys.update(("interaction", source, iid) for iid in self.floor.source_interaction_ids(source))
        return keys

    async def flush(self, board_id: int) -> bool:
        """Render and push the board's pending changes; return whether anything was sent."""
        state = self.boards.get(board_id)
        if state is None or not (state.dirty or state.full):
            return False
        dirty, state.dirty = state.dirty, set()
        full, state.full = state.full, False
        state.last_flush = self.clock()
        upserts: dict[str, dict] = {}
        removed: list[str] = []
        if full:
            dirty = self._all_rows(state.plan)
        for key in dirty:
            row = self.render(key, state)
            if row is not None:
                upserts[row["key"]] = row
                continue
            dom_key = row_key_of(key, state.plan)
            if dom_key and dom_key in state.shown:
                removed.append(dom_key)
        if full:
            removed = sorted(state.shown - upserts.keys())
        if not upserts and not removed and not full:
            return False
        state.seq += 1
        state.shown |= upserts.keys()
        state.shown -= set(removed)
        live_at, health = self.board_status(state.plan)
        now = self.clock()
        written = await self.store.write(
            board_id,
            epoch=self.epoch,
            seq=state.seq,
            upserts=upserts,
            removed=removed,
            server_time=now,
            live_at=live_at,
            health=health,
            reset=full,
        )
        if not written:
            # Under a new seq, so viewers see a gap and read the whole picture back.
            self._store_lost(state)
            return await self.flush(board_id)
        await self.layer.group_send(
            state.plan.group,
            protocol.delta_message(
                board_id,
                epoch=self.epoch,
                seq=state.seq,
                server_time=now,
                live_at=live_at,
                health=health,
                rows=list(upserts.values()),
                removed=removed,
            ),
        )
        self.deltas_sent += 1
        state.last_sent = now
        return True

    def _store_lost(self, state: _BoardState) -> None:
        # The store refused a delta: it no longer holds this epoch's picture (Redis restarted empty).
        log.warning("the snapshot store lost board %s; writing it again in full", state.plan.board_id)
        self.store_rewrites += 1
        state.full = True

    async def flush_all(self) -> None:
        """Flush every board now (startup and shutdown)."""
        for board_id in list(self.boards):
            await self.flush(board_id)

    async def tick(self) -> None:
        """Tell every board's viewers how fresh their data is, unless a delta just did."""
        now = self.clock()
        for board_id, state in list(self.boards.items()):
            if now - state.last_sent < self.liveness_period:
                # A delta carries the same times and health: a busy board needs no tick, and its
                # viewers are spared a second fan-out every period.
                continue
            live_at, health = self.board_status(state.plan)
            written = await self.store.write(
                board_id,
                epoch=self.epoch,
                seq=state.seq,
                upserts={},
                removed=(),
                server_time=now,
                live_at=live_at,
                health=health,
                reset=state.seq == 0,
            )
            if not written:
                self._store_lost(state)
                self._schedule(state)
                continue
            await self.layer.group_send(
                state.plan.group,
                protocol.tick_message(
                    board_id, epoch=self.epoch, seq=state.seq, server_time=now, live_at=live_at, health=health
                ),
            )

    async def run(self) -> None:
        """Send liveness ticks until cancelled; deltas flow from ``mark()``."""
        await self.flush_all()
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except TRANSIENT as exc:
                log.warning("board tick failed (%s); retrying", exc)
            except Exception:
                log.exception("board tick failed; retrying")
            await asyncio.sleep(self.liveness_period)

    async def close(self) -> None:
        """Flush what is pending and stop scheduling (SIGTERM)."""
        self._closing = True
        for state in self.boards.values():
            if state.timer:
                state.timer.cancel()
                state.timer = None
        pending = [s.flushing for s in self.boards.values() if s.flushing]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        await self.flush_all()
