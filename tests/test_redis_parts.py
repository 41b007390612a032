"""The snapshot store and the channel layer on the real Redis server."""

import asyncio

import pytest
from channels_redis.core import RedisChannelLayer

from dashboard_project.settings import redis_channel_layer
from streams.snapshots import MemorySnapshotStore, RedisSnapshotStore
from tests.redis_util import REDIS_TEST_URL, delete_prefix, unique_prefix
from tests.timing import scaled

pytestmark = pytest.mark.redis


@pytest.fixture
async def prefix():
    value = unique_prefix()
    yield value
    await delete_prefix(value)


@pytest.fixture(params=["redis", "memory"])
async def store(request, prefix):
    if request.param == "memory":
        yield MemorySnapshotStore()
        return
    store = RedisSnapshotStore(REDIS_TEST_URL, prefix=prefix)
    yield store
    await store.close()


def _row(key, html="<tr></tr>"):
    return {"key": key, "kind": "queue", "attrs": {"queue": key[2:]}, "data": {"waiting": 1}, "html": html}


async def write(store, board, seq, upserts=(), removed=(), reset=False, live_at=99.5, epoch="e1"):
    return await store.write(
        board,
        epoch=epoch,
        seq=seq,
        upserts={row["key"]: row for row in upserts},
        removed=removed,
        server_time=100.25,
        live_at=live_at,
        health={"state": "live"},
        reset=reset,
    )


async def test_an_unknown_board_has_no_snapshot(store):
    assert await store.read(404) is None


async def test_it_keeps_rows_and_meta_together(store):
    await write(store, 1, 1, upserts=[_row("q-1"), _row("q-2")], reset=True)
    await write(store, 1, 2, upserts=[_row("q-2", "<tr>new</tr>")], removed=["q-1"])
    snap = await store.read(1)
    assert (snap.epoch, snap.seq, snap.server_time, snap.live_at) == ("e1", 2, 100.25, 99.5)
    assert set(snap.rows) == {"q-2"}
    assert snap.rows["q-2"]["html"] == "<tr>new</tr>"
    assert snap.rows["q-2"]["attrs"] == {"queue": "2"}
    assert snap.health == {"state": "live"}


async def test_a_reset_drops_rows_of_the_old_epoch(store):
    await write(store, 1, 5, upserts=[_row("q-1")], reset=True)
    await write(store, 1, 1, upserts=[_row("q-9")], reset=True, live_at=None, epoch="e2")
    snap = await store.read(1)
    assert set(snap.rows) == {"q-9"}
    assert snap.live_at is None


async def test_boards_do_not_share_rows(store):
    await write(store, 1, 1, upserts=[_row("q-1")], reset=True)
    await write(store, 2, 1, upserts=[_row("q-2")], reset=True)
    assert set((await store.read(1)).rows) == {"q-1"}
    await store.delete(1)
    assert await store.read(1) is None
    assert set((await store.read(2)).rows) == {"q-2"}


async def test_a_delta_on_top_of_nothing_is_refused_so_the_board_is_written_again(store):
    # Redis restarted empty: a delta alone would leave a board holding only the rows that changed since.
    assert await write(store, 1, 7, upserts=[_row("q-1")]) is False
    assert await store.read(1) is None
    assert await write(store, 1, 8, upserts=[_row("q-1"), _row("q-2")], reset=True) is True
    assert await write(store, 1, 9, upserts=[_row("q-2", "<tr>9</tr>")]) is True
    assert (await store.read(1)).seq == 9


async def test_a_delta_of_another_epoch_is_refused(store):
    await write(store, 1, 3, upserts=[_row("q-1")], reset=True, epoch="new")
    assert await write(store, 1, 4, upserts=[_row("q-2")], epoch="old") is False
    snap = await store.read(1)
    assert (snap.epoch, snap.seq, set(snap.rows)) == ("new", 3, {"q-1"})


async def test_a_big_board_is_written_and_read_whole(store):
    # More rows than one Lua unpack() may take at once, in both the upserts and the removals.
    rows = [_row(f"a-{i}", f"<tr>{i}</tr>") for i in range(6000)]
    assert await write(store, 1, 1, upserts=rows, reset=True)
    assert await write(store, 1, 2, upserts=[_row("a-x")], removed=[f"a-{i}" for i in range(5000)])
    snap = await store.read(1)
    assert set(snap.rows) == {f"a-{i}" for i in range(5000, 6000)} | {"a-x"}
    assert snap.rows["a-5999"]["html"] == "<tr>5999</tr>"


async def test_a_reader_never_sees_rows_of_another_seq(prefix):
    """Writes are transactions: a concurrent reader sees whole seqs only."""
    writer = RedisSnapshotStore(REDIS_TEST_URL, prefix=prefix)
    reader = RedisSnapshotStore(REDIS_TEST_URL, prefix=prefix)
    try:
        await write(writer, 1, 0, upserts=[_row(f"q-{i}", "<tr>0</tr>") for i in range(20)], reset=True)

        async def keep_writing():
            for seq in range(1, 60):
                await write(writer, 1, seq, upserts=[_row(f"q-{i}", f"<tr>{seq}</tr>") for i in range(20)])

        task = asyncio.create_task(keep_writing())
        while not task.done():
            snap = await reader.read(1)
            assert {row["html"] for row in snap.rows.values()} == {f"<tr>{snap.seq}</tr>"}
        await task
    finally:
        await writer.close()
        await reader.close()


def _production_layer(prefix: str) -> RedisChannelLayer:
    return RedisChannelLayer(**redis_channel_layer(REDIS_TEST_URL, prefix)["CONFIG"])


async def test_the_channel_layer_delivers_group_messages_over_redis(prefix):
    layer = _production_layer(prefix)
    try:
        first = await layer.new_channel()
        second = await layer.new_channel()
        await layer.group_add("board.1", first)
        await layer.group_add("board.1", second)
        await layer.group_add("board.2", second)
        await layer.group_send("board.1", {"type": "board.delta", "seq": 1, "rows": [_row("q-1")]})
        for channel in (first, second):
            message = await asyncio.wait_for(layer.receive(channel), scaled(5))
            assert message["seq"] == 1
            assert message["rows"][0]["key"] == "q-1"
        await layer.group_discard("board.1", first)
        await layer.group_send("board.1", {"type": "board.delta", "seq": 2})
        assert (await asyncio.wait_for(layer.receive(second), scaled(5)))["seq"] == 2
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(layer.receive(first), scaled(0.3))
    finally:
        await layer.flush()
        await layer.close_pools()


async def test_an_idle_viewer_outlives_the_layers_blocking_read(prefix):
    # channels_redis blocks 5 s per BZPOPMIN; with redis-py's default 5 s read timeout a quiet
    # viewer's receive loop died. The wait is the behaviour under test: no event marks "still idle".
    layer = _production_layer(prefix)
    try:
        channel = await layer.new_channel()
        await layer.group_add("board.1", channel)
        receiving = asyncio.ensure_future(layer.receive(channel))
        await asyncio.sleep(6.5)
        assert not receiving.done(), receiving.exception() if receiving.done() else None
        await layer.group_send("board.1", {"type": "board.tick", "seq": 7})
        assert (await asyncio.wait_for(receiving, scaled(5)))["seq"] == 7
    finally:
        await layer.flush()
        await layer.close_pools()
