"""What one viewer can make the server queue, and viewers whose sends fail.

A client that floods resyncs and never reads must cost a bounded number of
snapshots and be closed; a slow reader is closed once its unread bytes pass
the cap; a viewer whose socket fails is dropped from every registry at once.
The communicator's output queue is what the server queued for the client.
"""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from asgiref.sync import SyncToAsync
from channels.layers import InMemoryChannelLayer, channel_layers
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from dashboard import access, fanout, page_messages, shutdown, viewer_limits
from dashboard.routing import websocket_urlpatterns
from dashboard.viewer_limits import TokenBucket, UnreadFrames
from streams import snapshots
from tests.personas import Personas
from tests.socket_util import ANNOUNCE, Feed, open_socket, parse, receive
from tests.timing import FakeClock, eventually, scaled

pytestmark = [pytest.mark.django_db(transaction=True)]


async def big_board(p: Personas) -> Feed:
    feed = Feed(p)
    agents = [feed.agent(f"u{n}", "q-sales", name=f"Agent {n:03}") for n in range(60)]
    await feed.push([feed.queue("q-sales"), *agents], reset=True)
    return feed


async def handled(ws: WebsocketCommunicator, *messages: str) -> None:
    """Send MESSAGES, then return once the consumer has handled them all.

    The consumer handles a socket's messages in order; a message of unknown type after them is
    dropped and counted, so once that count moves, everything sent before it was handled.
    """
    before = page_messages.dropped_messages["unknown type"]
    for message in messages:
        await ws.send_to(text_data=message)
    await ws.send_to(text_data='{"type": "marker"}')
    await eventually(lambda: page_messages.dropped_messages["unknown type"] > before, within=3, what="messages handled")


async def drain(ws: WebsocketCommunicator) -> list[dict]:
    """Return everything the server queued for WS, up to and with its close."""
    out = []
    while True:
        message = await ws.receive_output(timeout=scaled(3))
        out.append(message)
        if message["type"] == "websocket.close":
            return out


# -- flooding and slow readers -------------------------------------------------------------


async def test_a_client_flooding_resyncs_without_reading_gets_few_snapshots_then_a_close(p):
    await big_board(p)
    ws = await open_socket(p.supervisor)
    dropped_before = page_messages.dropped_messages["rate"]
    for _ in range(1000):
        await ws.send_to(text_data='{"type": "resync"}')
    out = await drain(ws)
    assert out[-1] == {"type": "websocket.close", "code": 4008}
    frames = [m for m in out if m["type"] == "websocket.send"]
    # The connect snapshot, and at most the snapshots the page may ask for at once (the rest wait their turn).
    assert len(frames) <= 1 + page_messages.SNAPSHOT_BURST
    assert page_messages.dropped_messages["rate"] - dropped_before >= page_messages.FLOOD_BURST


async def test_a_reader_that_never_acknowledges_is_closed_past_the_unread_cap(p, settings):
    feed = await big_board(p)
    ws = await open_socket(p.supervisor)
    snapshot_size = len((await ws.receive_output(timeout=scaled(3)))["text"].encode())
    cap = 3 * snapshot_size
    settings.FLOORVIEW = {**settings.FLOORVIEW, "SOCKET_UNREAD_CAP": cap}
    ws = await open_socket(p.supervisor)
    # Well within the message rate: only the unread bytes can end this socket.
    for _ in range(10):
        await ws.send_to(text_data='{"type": "resync"}')
        await feed.push([feed.queue("q-sales", waiting=feed.seq)])
    out = await drain(ws)
    assert out[-1] == {"type": "websocket.close", "code": 4008}
    queued = sum(len(m["text"].encode()) for m in out if m["type"] == "websocket.send")
    assert queued <= cap + 2 * snapshot_size


async def test_a_reader_that_acknowledges_stays_open_however_much_it_reads(p, settings, monkeypatch):
    monkeypatch.setattr(page_messages, "SNAPSHOT_BURST", 20)  # Ten resyncs at once, without waiting their turn.
    feed = await big_board(p)
    ws = await open_socket(p.supervisor)
    snapshot_size = len((await receive_text(ws)).encode())
    settings.FLOORVIEW = {**settings.FLOORVIEW, "SOCKET_UNREAD_CAP": 2 * snapshot_size}
    ws = await open_socket(p.supervisor)
    await receive_text(ws)
    frames = 1
    for _ in range(10):  # Ten snapshots: five times the cap in all.
        await ws.send_to(text_data='{"type": "resync"}')
        assert parse(await receive_text(ws)).kind == "snapshot"
        frames += 1
        await ws.send_to(text_data=json.dumps({"type": "ack", "frames": frames}))
    await feed.push([feed.queue("q-sales", waiting=99)])
    assert parse(await receive_text(ws)).kind == "delta"
    await ws.disconnect()


async def receive_text(ws: WebsocketCommunicator) -> str:
    return await ws.receive_from(timeout=scaled(3))


async def test_a_page_that_reads_a_snapshot_larger_than_the_cap_is_not_closed_before_it_acknowledges(p, settings):
    feed = await big_board(p)
    ws = await open_socket(p.supervisor)
    snapshot_size = len((await receive_text(ws)).encode())
    await ws.disconnect()
    settings.FLOORVIEW = {**settings.FLOORVIEW, "SOCKET_UNREAD_CAP": snapshot_size // 2}
    ws = await open_socket(p.supervisor)
    await receive_text(ws)
    # The page read the snapshot and acknowledges every 16 frames: the deltas before that must not count
    # the snapshot, larger than the cap, against it.
    frames = 1
    for waiting in range(5):
        await feed.push([feed.queue("q-sales", waiting=waiting)])
        assert parse(await receive_text(ws)).kind == "delta"
        frames += 1
    await ws.send_to(text_data=json.dumps({"type": "ack", "frames": frames}))
    await feed.push([feed.queue("q-sales", waiting=99)])
    assert parse(await receive_text(ws)).kind == "delta"
    await ws.disconnect()


async def test_client_messages_cost_no_trip_to_the_database_thread(p, monkeypatch):
    await big_board(p)
    ws = await open_socket(p.supervisor)
    await receive_text(ws)
    trips = 0
    original = SyncToAsync.thread_handler

    def counting(self, loop, *args, **kwargs):
        nonlocal trips
        trips += 1
        return original(self, loop, *args, **kwargs)

    monkeypatch.setattr(SyncToAsync, "thread_handler", counting)
    # Junk, acknowledgements and messages past the rate: none of them needs the database.
    await handled(ws, *["not json"] * 20, *['{"type": "ack", "frames": 1}'] * 5, *["{}"] * 60)
    assert trips == 0
    await ws.disconnect()


async def test_snapshots_a_page_asks_for_beyond_the_burst_wait_their_turn(p, monkeypatch):
    monkeypatch.setattr(page_messages, "SNAPSHOT_RATE", 0.001)  # After the burst, the next turn is far away.
    feed = await big_board(p)
    ws = await open_socket(p.supervisor)
    await receive_text(ws)
    for _ in range(page_messages.SNAPSHOT_BURST):  # One at a time, reading each: every one is answered.
        await ws.send_to(text_data='{"type": "resync"}')
        assert parse(await receive_text(ws)).kind == "snapshot"
    await handled(ws, '{"type": "resync"}', '{"type": "filter", "queue": "q-sales"}')
    # Both asks wait for the next turn; the board's deltas flow meanwhile.
    await feed.push([feed.queue("q-sales", waiting=7)])
    assert parse(await receive_text(ws)).kind == "delta"
    await ws.disconnect()


async def test_one_user_may_hold_only_so_many_sockets_in_a_process(p, settings):
    settings.FLOORVIEW = {**settings.FLOORVIEW, "SOCKETS_PER_USER": 2}
    await big_board(p)
    sockets = [await open_socket(p.supervisor) for _ in range(2)]
    for ws in sockets:
        await receive_text(ws)
    extra = await open_socket(p.supervisor)
    assert await extra.receive_output(timeout=scaled(3)) == {"type": "websocket.close", "code": 4008}
    other = await open_socket(p.other_supervisor, slug="billing")  # Another user is not held to sue's count.
    assert (await other.receive_output(timeout=scaled(3)))["type"] == "websocket.send"
    await sockets[0].disconnect()
    await eventually(lambda: viewer_limits.sockets_per_user()[p.supervisor.pk] == 1, within=3, what="the slot to free")
    again = await open_socket(p.supervisor)
    assert parse(await receive_text(again)).kind == "snapshot"
    for ws in (sockets[1], other, again):
        await ws.disconnect()


async def test_resyncs_asked_while_one_is_read_coalesce_into_one_more(p, monkeypatch):
    feed = Feed(p)
    await feed.push([feed.queue("q-sales")], reset=True)
    store = feed.store
    ws = await open_socket(p.supervisor)
    await receive(ws)
    release, reading = asyncio.Event(), asyncio.Event()
    reads = []

    class GatedStore(snapshots.MemorySnapshotStore):
        async def read(self, board_id):
            reads.append(board_id)
            reading.set()
            await release.wait()
            return await store.read(board_id)

    monkeypatch.setattr(snapshots, "_store", GatedStore())
    await handled(ws, *['{"type": "resync"}'] * 10)
    await asyncio.wait_for(reading.wait(), scaled(3))
    release.set()
    assert [(await receive(ws)).kind for _ in range(2)] == ["snapshot", "snapshot"]
    assert await ws.receive_nothing(timeout=scaled(0.2))
    assert len(reads) == 2
    await ws.disconnect()


def test_the_token_bucket_allows_bursts_then_the_rate():
    clock = FakeClock()
    bucket = TokenBucket(rate=2, burst=3, clock=clock)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    clock.now += 0.5
    assert [bucket.take(), bucket.take()] == [True, False]


def test_unread_frames_count_what_the_page_has_not_acknowledged():
    unread = UnreadFrames()
    for size in (100, 200, 300):
        unread.record(size)
    assert unread.unread == 600
    assert not unread.ack(4)  # More than were sent: refused.
    assert unread.ack(2) and unread.unread == 300
    assert not unread.over(0)  # The newest frame alone never counts.
    unread.record(50)
    assert unread.over(299) and not unread.over(300)


def test_the_newest_snapshot_counts_only_once_the_page_acknowledged_it():
    unread = UnreadFrames()
    unread.record(1000, snapshot=True)
    unread.record(10)
    unread.record(10)
    assert unread.unread == 1020 and not unread.over(10)  # The snapshot is being read: only a delta counts.
    assert unread.ack(1) and unread.unread == 20
    unread.record(1000, snapshot=True)
    unread.record(10)
    unread.ack(3)  # Acknowledged up to before the new snapshot: that one is still exempt.
    assert not unread.over(10)
    unread.ack(4)
    unread.record(500)
    assert unread.unread == 510 and unread.over(9)  # The snapshot read, a later frame counts again.


# -- sends that fail ---------------------------------------------------------------------------


def failing_sends(app, failing: dict):
    """Wrap APP so that its frame sends raise while FAILING["on"] is set, as a socket whose client left."""

    async def wrapped(scope, receive, send):
        async def send_or_fail(message):
            if failing["on"] and message["type"] == "websocket.send":
                raise ConnectionResetError("the client went away")
            await send(message)

        return await app(scope, receive, send_or_fail)

    return wrapped


async def test_a_viewer_whose_snapshot_send_fails_while_connecting_leaves_every_registry(p, caplog):
    feed = Feed(p)
    await feed.push([feed.queue("q-sales")], reset=True)
    # Another viewer keeps the board's feed running, so the deltas below are handed out: to the failed
    # viewer too, and logged, if it were still registered.
    staying = await open_socket(p.supervisor)
    await receive(staying)
    (board_feed,) = fanout.board_feeds.active()
    tracked_before = set(shutdown._open)
    ws = WebsocketCommunicator(
        failing_sends(URLRouter(websocket_urlpatterns), {"on": True}), f"/ws/boards/sales/?{ANNOUNCE}"
    )
    ws.scope["user"] = p.supervisor
    assert (await ws.connect(timeout=scaled(3)))[0]
    await ws.wait(timeout=scaled(3))
    assert len(board_feed.viewers) == 1
    assert len(access.watches.current().viewers) == 1
    assert set(shutdown._open) <= tracked_before
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            await feed.push([feed.queue("q-sales", waiting=feed.seq)])
            assert (await receive(staying)).kind == "delta"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    await staying.disconnect()
    await eventually(lambda: not fanout.board_feeds.active(), within=3, what="the feed to end with its last viewer")
    assert access.watches.current() is None


class _Viewer:
    async def take(self, message: dict) -> None:
        pass

    def resync(self) -> None:
        pass


async def test_a_viewer_whose_feed_join_is_cancelled_is_not_kept_in_the_feed(p):
    joining = asyncio.Event()

    class HangingJoin(InMemoryChannelLayer):
        async def group_add(self, group, channel):
            joining.set()
            await asyncio.Event().wait()  # The layer does not answer.

    old = channel_layers.set("default", HangingJoin())
    try:
        viewer = _Viewer()
        join = asyncio.ensure_future(fanout.board_feeds.join("board-test", viewer))
        await asyncio.wait_for(joining.wait(), scaled(3))
        (board_feed,) = fanout.board_feeds.active()
        assert viewer in board_feed.viewers
        join.cancel()  # The page left while its viewer was connecting.
        with pytest.raises(asyncio.CancelledError):
            await join
        assert viewer not in board_feed.viewers
        assert not fanout.board_feeds.active()
    finally:
        channel_layers.set("default", old)


async def test_a_viewer_whose_delta_send_fails_is_dropped_not_logged_for_ever(p, caplog):
    feed = Feed(p)
    await feed.push([feed.queue("q-sales")], reset=True)
    failing = {"on": False}
    gone = WebsocketCommunicator(
        failing_sends(URLRouter(websocket_urlpatterns), failing), f"/ws/boards/sales/?{ANNOUNCE}"
    )
    gone.scope["user"] = p.supervisor
    assert (await gone.connect(timeout=scaled(3)))[0]
    await receive(gone)
    staying = await open_socket(p.supervisor)
    await receive(staying)
    failing["on"] = True
    with caplog.at_level(logging.INFO):
        for waiting in range(5):
            await feed.push([feed.queue("q-sales", waiting=waiting)])
            assert (await receive(staying)).kind == "delta"
    failures = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert len(failures) == 1, [r.getMessage() for r in caplog.records]
    assert not [r for r in caplog.records if r.exc_info]
    (board_feed,) = fanout.board_feeds.active()
    assert len(board_feed.viewers) == 1
    await staying.disconnect()
