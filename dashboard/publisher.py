"""The publisher: coalesces Floor changes per board and pushes rendered rows.

At most once per board window it renders each changed row once (with the
same template partials the page uses), writes the rows to the snapshot store,
and sends one ``board.delta`` to the board's group. Rendering cost grows with
boards and changed rows, never with viewers. Between deltas a ``board.tick``
tells viewers how fresh the data is, so a silent worker shows up as stale.

The parts: which boards a Floor row shows on (dashboard.board_index), a
board's rows made from the Floor (dashboard.board_rows), when each board
flushes (dashboard.coalescing), what a board says of its sources
(dashboard.board_health), and each board's plan and bookkeeping
(dashboard.board_plan). Here: the flush itself, the ticks, and the epoch and
seq that viewers order messages by.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Iterable

from dashboard import protocol
from dashboard.board_health import board_status
from dashboard.board_index import BoardIndex
from dashboard.board_plan import BoardPlan, BoardState
from dashboard.board_rows import board_rows, render_row, row_key_of
from dashboard.coalescing import TRANSIENT, Coalescer
from streams.floor import Floor, RowKey
from streams.health import LinkHealth
from streams.snapshots import SnapshotStore

log = logging.getLogger(__name__)


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
        self.boards: dict[int, BoardState] = {}
        self.index = BoardIndex(floor)  # Floor row → the boards showing it
        self.rows_rendered = 0
        self.deltas_sent = 0
        self.store_rewrites = 0
        self.coalescer = Coalescer(self)  # when each board flushes

    # -- configuration --------------------------------------------------------

    def set_boards(self, plans: Iterable[BoardPlan]) -> None:
        """Adopt a new set of boards; boards whose plan changed are re-rendered in full."""
        plans = {plan.board_id: plan for plan in plans}
        for board_id in list(self.boards):
            if board_id not in plans:
                self.coalescer.cancel(self.boards.pop(board_id))
        for board_id, plan in plans.items():
            state = self.boards.get(board_id)
            if state is None:
                state = self.boards[board_id] = BoardState(plan)
            elif state.plan == plan:
                continue
            else:
                state.adopt(plan)
            self.coalescer.schedule(state)
        self.index.rebuild(state.plan for state in self.boards.values())

    # -- changes ---------------------------------------------------------------

    def mark(self, keys: Iterable[RowKey]) -> None:
        """Note rows that changed on the Floor; their boards flush within their window."""
        touched: set[int] = set()
        for key in keys:
            for board_id in self.index.boards_of(key):
                self.boards[board_id].dirty.add(key)
                touched.add(board_id)
        for board_id in touched:
            self.coalescer.schedule(self.boards[board_id])

    # -- output ------------------------------------------------------------------

    def board_status(self, plan: BoardPlan) -> tuple[float | None, dict]:
        """Return when the board's data was last confirmed live, and its upstream health (dashboard.board_health)."""
        return board_status(plan.sources, plan.disabled_sources, self.health_of, self.clock())

    def render(self, key: RowKey, state: BoardState) -> dict | None:
        """Return the rendered row for KEY on a board, or None if the board no longer shows it."""
        row = render_row(self.floor, key, state)
        if row is not None:
            self.rows_rendered += 1
        return row

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
            dirty = board_rows(self.floor, state.plan)
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

    def _store_lost(self, state: BoardState) -> None:
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
                self.coalescer.schedule(state)
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
        await self.coalescer.close()
        await self.flush_all()
