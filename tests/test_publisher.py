"""The publisher: coalesced deltas, ticks only for quiet boards, and a board written again when the store lost it."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from dashboard.board_plan import BoardPlan
from dashboard.publisher import Publisher
from dashboard.rows import QueueConfig
from streams.events import AgentStatus, QueueStats
from streams.floor import Floor
from streams.health import LinkHealth
from streams.snapshots import MemorySnapshotStore
from tests.timing import scaled

SOURCE = "genesys:1"


class RecordingLayer:
    """Keeps what the publisher sends to groups."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.arrived = asyncio.Event()

    async def group_send(self, group: str, message: dict) -> None:
        self.sent.append({**message, "group": group})
        self.arrived.set()

    def of(self, kind: str) -> list[dict]:
        return [message for message in self.sent if message["type"] == kind]

    async def next_delta(self) -> dict:
        while True:
            deltas = self.of("board.delta")
            if deltas:
                self.sent.remove(deltas[0])
                return deltas[0]
            self.arrived.clear()
            await asyncio.wait_for(self.arrived.wait(), scaled(3))


def plan(window: float = 0.2) -> BoardPlan:
    queues = {
        (SOURCE, "q-sales"): QueueConfig(pk=1, vendor_id="q-sales", name="Sales"),
        (SOURCE, "q-support"): QueueConfig(pk=2, vendor_id="q-support", name="Support"),
    }
    return BoardPlan(board_id=7, slug="floor", window=window, queues=queues)


@pytest.fixture
def parts():
    floor = Floor()
    layer = RecordingLayer()
    store = MemorySnapshotStore()
    publisher = Publisher(floor, layer=layer, store=store, liveness_period=1.0, epoch="ep")
    publisher.set_boards([plan()])
    return floor, layer, store, publisher


def waiting(queue: str, count: int) -> QueueStats:
    return QueueStats(source=SOURCE, queue_id=queue, waiting=count)


async def test_changes_within_the_window_leave_as_one_delta_with_each_row_rendered_once(parts):
    floor, layer, store, publisher = parts
    assert await publisher.flush(7)  # the first, full picture
    layer.sent.clear()
    rendered = publisher.rows_rendered
    # Leading edge: the first change after a quiet spell would go at once; these come inside the window.
    for count in range(1, 6):
        publisher.mark(floor.apply(waiting("q-sales", count)))
    publisher.mark(floor.apply(waiting("q-support", 9)))
    delta = await layer.next_delta()
    assert delta["seq"] == 2
    assert sorted(row["key"] for row in delta["rows"]) == ["q-1", "q-2"]
    assert publisher.rows_rendered - rendered == 2
    assert {row["key"]: row["data"]["waiting"] for row in delta["rows"]} == {"q-1": 5, "q-2": 9}
    assert (await store.read(7)).rows["q-1"]["data"]["waiting"] == 5


async def test_a_tick_goes_only_to_boards_no_delta_told_within_the_period(parts):
    _, layer, store, publisher = parts
    clock = [1000.0]
    publisher.clock = lambda: clock[0]
    assert await publisher.flush(7)
    await publisher.tick()
    assert layer.of("board.tick") == []  # the delta just told viewers the same
    clock[0] += 1.0
    await publisher.tick()
    (tick,) = layer.of("board.tick")
    assert (tick["epoch"], tick["seq"], tick["server_time"]) == ("ep", 1, 1001.0)
    assert (await store.read(7)).server_time == 1001.0


async def test_a_board_the_store_lost_is_written_again_in_full(parts):
    floor, layer, store, publisher = parts
    publisher.mark(floor.apply(waiting("q-sales", 3)))
    publisher.mark(floor.apply(waiting("q-support", 1)))
    publisher.mark(
        floor.apply(
            AgentStatus(
                source=SOURCE, agent_id="ann", name="Ann", presence="on_queue", queue_ids=frozenset({"q-sales"})
            )
        )
    )
    assert await publisher.flush(7)
    await store.delete(7)  # Redis restarted empty
    publisher.mark(floor.apply(waiting("q-sales", 4)))
    assert await publisher.flush(7)
    snapshot = await store.read(7)
    # Not just the changed row: the whole board, under a seq that tells viewers to read it all again.
    assert set(snapshot.rows) == {"q-1", "q-2", f"a-{SOURCE}-ann"}
    assert snapshot.rows["q-1"]["data"]["waiting"] == 4
    assert snapshot.seq == 3
    assert publisher.store_rewrites == 1
    assert [message["seq"] for message in layer.of("board.delta")] == [1, 3]


async def test_a_tick_that_finds_the_board_gone_has_it_written_again(parts):
    floor, layer, store, publisher = parts
    publisher.clock = lambda: 1000.0
    publisher.mark(floor.apply(waiting("q-support", 2)))
    assert await publisher.flush(7)
    layer.sent.clear()
    await store.delete(7)
    publisher.clock = lambda: 1002.0
    await publisher.tick()
    # No tick claims fresh data for a board the store does not hold; the full write is on its way.
    assert layer.of("board.tick") == []
    delta = await layer.next_delta()
    assert delta["seq"] == 2
    assert (await store.read(7)).rows["q-2"]["data"]["waiting"] == 2


def test_the_board_health_names_the_worst_sources_trouble_without_addresses(parts):
    *_, publisher = parts
    sick, fine = LinkHealth(), LinkHealth()
    fine.set_state("live")
    sick.set_state(
        "reconnecting", "link lost (socket closed by https://api.example.com/v2/x?token=abc); retrying in 4 s"
    )
    links = {SOURCE: sick, "genesys:2": fine}
    publisher.health_of = links.get
    two_sources = replace(plan(), queues={**plan().queues, ("genesys:2", "q-x"): QueueConfig(3, "q-x", "X")})
    _, health = publisher.board_status(two_sources)
    assert health["state"] == "reconnecting"
    assert health["sources"] == {SOURCE: "reconnecting", "genesys:2": "live"}
    assert health["detail"].startswith("1 of 2 sources affected; link lost")
    assert "retrying in 4 s" in health["detail"]
    assert "/v2/x" not in health["detail"] and "abc" not in health["detail"]
    sick.set_state("live")
    assert publisher.board_status(two_sources)[1]["detail"] == ""


def test_a_board_whose_connection_is_disabled_says_so_instead_of_looking_live(parts):
    *_, publisher = parts
    board = replace(plan(), queues={}, disabled_sources=frozenset({SOURCE}))
    live_at, health = publisher.board_status(board)
    assert health["state"] == "disabled"
    assert "disabled in the admin" in health["detail"]
    assert live_at is None  # nothing streams: the page shows the data as stale, never as live
