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
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from dashboard import access, consumers, fanout, shutdown
from dashboard.routing import websocket_urlpatterns
from dashboard.viewer_limits import TokenBucket, UnreadFrames
from streams import snapshots
from tests.personas import Personas
from tests.socket_util import Feed, open_socket, parse, receive
from tests.timing import FakeClock, eventually, scaled

pytestmark = [pytest.mark.django_db(transaction=True)]


async def big_board(p: Personas) -> Feed:
    feed = Feed(p)
    agents = [feed.agent(f"u{n}", "q-sales", name=f"Agent {n:03}") for n in range(60)]
    await feed.push([feed.queue("q-sales"), *agents], reset=True)
    return feed


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
    for _ in range(1000):
        await ws.send_to(text_data='{"type": "resync"}')
    out = await drain(ws)
    assert out[-1] == {"type": "websocket.close", "code": 4008}
    frames = [m for m in out if m["type"] == "websocket.send"]
    # The connect snapshot, and at most one snapshot per message the bucket let through.
    assert len(frames) <= 1 + consumers.MESSAGE_BURST + 1
    assert consumers.dropped_messages["rate"] >= consumers.FLOOD_BURST


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


async def test_a_reader_that_acknowledges_stays_open_however_much_it_reads(p, settings):
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
    for _ in range(10):
        await ws.send_to(text_data='{"type": "resync"}')
    await asyncio.wait_for(reading.wait(), scaled(3))
    assert await ws.receive_nothing(timeout=scaled(0.2))  # The ten messages are all handled by now.
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
    tracked_before = set(shutdown._open)
    ws = WebsocketCommunicator(failing_sends(URLRouter(websocket_urlpatterns), {"on": True}), "/ws/boards/sales/")
    ws.scope["user"] = p.supervisor
    assert (await ws.connect(timeout=scaled(3)))[0]
    await eventually(lambda: not fanout.feeds.active(), within=3, what="the feed to end with its only viewer")
    assert access.watches.current() is None
    assert set(shutdown._open) <= tracked_before
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            await feed.push([feed.queue("q-sales", waiting=feed.seq)])
        await asyncio.sleep(0)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    await ws.wait(timeout=scaled(3))


async def test_a_viewer_whose_delta_send_fails_is_dropped_not_logged_for_ever(p, caplog):
    feed = Feed(p)
    await feed.push([feed.queue("q-sales")], reset=True)
    failing = {"on": False}
    gone = WebsocketCommunicator(failing_sends(URLRouter(websocket_urlpatterns), failing), "/ws/boards/sales/")
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
    (board_feed,) = fanout.feeds.active()
    assert len(board_feed.viewers) == 1
    await staying.disconnect()
