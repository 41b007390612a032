"""Board snapshots read from the store for viewers, one read shared by those who ask together."""

from __future__ import annotations

import asyncio

from streams.snapshots import BoardSnapshot, get_snapshot_store


class SharedSnapshotReads:
    """Share one store read among the viewers of a board who ask at the same moment.

    A thousand browsers reconnecting together then cost one read per board
    per process rather than a thousand.
    """

    def __init__(self) -> None:
        self._inflight: dict[int, asyncio.Task] = {}

    async def read(self, board_id: int, *, newer_than: tuple[str, int] | None = None) -> BoardSnapshot | None:
        """Return the board's snapshot; with NEWER_THAN (epoch, seq), one at least that recent."""
        loop = asyncio.get_running_loop()
        task = self._inflight.get(board_id)
        if task is None or task.get_loop() is not loop:
            task = loop.create_task(get_snapshot_store().read(board_id))
            self._inflight[board_id] = task
            task.add_done_callback(lambda done: self._forget(board_id, done))
        # Shielded: one viewer leaving must not cancel the read the others wait for.
        snapshot = await asyncio.shield(task)
        if newer_than and snapshot is not None and snapshot.epoch == newer_than[0] and snapshot.seq < newer_than[1]:
            # The shared read started before the delta this viewer saw was stored.
            snapshot = await get_snapshot_store().read(board_id)
        return snapshot

    def _forget(self, board_id: int, task: asyncio.Task) -> None:
        if self._inflight.get(board_id) is task:
            del self._inflight[board_id]
        if not task.cancelled():
            # Retrieve the exception so an unawaited failure is not reported twice.
            task.exception()


snapshot_reads = SharedSnapshotReads()
