"""The board socket: snapshot then deltas in order, gaps, epochs, filters, refusals, bad input.

Runs the real consumer with the in-memory channel layer and the in-process
snapshot store; the "worker" here writes the store and then sends to the
group, in that order, exactly as the publisher does.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from asgiref.sync import sync_to_async
from channels.layers import InMemoryChannelLayer, channel_layers, get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.test import Client

from dashboard import consumers, fanout, group_subscription, page_messages, protocol, snapshot_reads
from dashboard.board_plan import BoardPlan
from dashboard.publisher import Publisher
from dashboard.routing import websocket_urlpatterns
from dashboard.rows import interaction_row
from dashboard_project.asgi import application
from streams import snapshots
from streams.events import AgentStatus, QueueStats
from streams.floor import Floor, InteractionState
from tests.socket_util import ANNOUNCE, Feed, nothing_more, open_socket, parse, receive
from tests.timing import scaled

pytestmark = [pytest.mark.django_db(transaction=True)]


async def test_it_sends_the_snapshot_first_then_deltas_in_seq_order(p):
    feed = Feed(p)
    await feed.push([feed.queue("q-support", waiting=1), feed.queue("q-sales", waiting=2)], reset=True)
    ws = await open_socket(p.supervisor)
    snapshot = await receive(ws)
    assert (snapshot.kind, snapshot.epoch, snapshot.seq) == ("snapshot", "e1", 1)
    assert snapshot.swaps == [
        ("tbody", "queue-rows", "innerHTML"),
        ("tbody", "agent-rows", "innerHTML"),
        ("tbody", "interaction-rows", "innerHTML"),
    ]
    assert snapshot.row_ids == [f"q-{p.sales.pk}", f"q-{p.support.pk}"]  # Name order.

    await feed.push([feed.queue("q-sales", waiting=9)])
    await feed.push([feed.agent("u1", "q-sales")])
    changed = await receive(ws)
    assert (changed.kind, changed.seq) == ("delta", 2)
    assert changed.swaps == [("tr", f"q-{p.sales.pk}", "true")]
    added = await receive(ws)
    assert added.seq == 3
    assert added.swaps == [("tbody", "", "beforeend:#agent-rows")]
    assert added.row_ids == [f"a-{p.source}-u1"]
    assert await nothing_more(ws)
    await ws.disconnect()


async def test_it_deletes_removed_rows_the_viewer_has(p):
    feed = Feed(p)
    await feed.push([feed.queue("q-sales"), feed.agent("u1", "q-sales")], reset=True)
    ws = await open_socket(p.supervisor)
    await receive(ws)
    await feed.push(removed=[f"a-{p.source}-u1", "a-c99-never-shown"])
    frame = await receive(ws)
    assert frame.swaps == [("tr", f"a-{p.source}-u1", "delete")]
    await ws.disconnect()


async def test_it_drops_stale_and_duplicate_deltas(p):
    feed = Feed(p)
    for waiting in range(3):
        duplicate = await feed.push([feed.queue("q-sales", waiting=waiting)])
    ws = await open_socket(p.supervisor)
    assert (await receive(ws)).seq == 3
    await feed.send(duplicate)
    await feed.send({**duplicate, "seq": 1})
    assert await nothing_more(ws)
    await feed.push([feed.queue("q-sales", waiting=7)])
    assert (await receive(ws)).seq == 4
    await ws.disconnect()


async def test_it_resends_the_full_snapshot_after_a_gap(p):
    feed = Feed(p)
    await feed.push([feed.queue("q-sales", waiting=1)], reset=True)
    ws = await open_socket(p.supervisor)
    await receive(ws)
    # Seq 2 never reaches the group (a full channel drops it); seq 3 does.
    await feed.store_only([feed.agent("u1", "q-sales")])
    await feed.push([feed.queue("q-sales", waiting=5)])
    frame = await receive(ws)
    assert (frame.kind, frame.seq) == ("snapshot", 3)
    assert set(frame.row_ids) == {f"q-{p.sales.pk}", f"a-{p.source}-u1"}
    await feed.push([feed.queue("q-sales", waiting=6)])
    assert ((await receive(ws)).kind, feed.seq) == ("delta", 4)
    await ws.disconnect()


async def test_it_starts_over_when_the_worker_restarts_with_a_new_epoch(p):
    feed = Feed(p)
    for _ in range(5):
        await feed.push([feed.queue("q-sales")])
    ws = await open_socket(p.supervisor)
    assert (await receive(ws)).seq == 5
    # The old worker stores its last flush, but its message is still on the way when the new one starts.
    late = await feed.store_only([feed.queue("q-sales", waiting=8)])
    restarted = Feed(p, epoch="e2")
    await restarted.push([restarted.queue("q-support")], reset=True)
    frame = await receive(ws)
    assert (frame.kind, frame.epoch, frame.seq) == ("snapshot", "e2", 1)
    assert frame.row_ids == [f"q-{p.support.pk}"]
    # The old epoch's stragglers are ignored, not answered with snapshot after snapshot.
    await feed.send(late)
    await feed.tick()
    assert await nothing_more(ws)
    await restarted.push([restarted.queue("q-support", waiting=1)])
    assert ((await receive(ws)).kind, restarted.seq) == ("delta", 2)
    await ws.disconnect()


async def test_it_sends_an_empty_snapshot_until_the_worker_writes(p):
    ws = await open_socket(p.supervisor)
    empty = await receive(ws)
    assert (empty.kind, empty.epoch, empty.seq, empty.row_ids) == ("snapshot", "", 0, [])
    feed = Feed(p)
    await feed.push([feed.queue("q-sales")], reset=True)
    first = await receive(ws)
    assert (first.kind, first.seq, first.row_ids) == ("snapshot", 1, [f"q-{p.sales.pk}"])
    await ws.disconnect()


async def test_it_holds_deltas_that_arrive_while_the_snapshot_is_read(p, monkeypatch):
    feed = Feed(p)
    await feed.push([feed.queue("q-sales", waiting=1)], reset=True)
    store = feed.store
    reading, release = asyncio.Event(), asyncio.Event()

    class SlowStore(snapshots.MemorySnapshotStore):
        """Takes the picture at once but hands it over only when released."""

        async def read(self, board_id):
            picture = await store.read(board_id)
            reading.set()
            await release.wait()
            return picture

    monkeypatch.setattr(snapshots, "_store", SlowStore())
    connecting = asyncio.ensure_future(open_socket(p.supervisor))
    await asyncio.wait_for(reading.wait(), scaled(3))
    monkeypatch.setattr(snapshots, "_store", store)
    await feed.push([feed.queue("q-sales", waiting=2)])
    await feed.push([feed.queue("q-sales", waiting=3)])
    release.set()
    ws = await connecting
    assert [(f.kind, f.seq) for f in [await receive(ws) for _ in range(3)]] == [
        ("snapshot", 1),
        ("delta", 2),
        ("delta", 3),
    ]
    await ws.disconnect()


async def test_it_shares_one_store_read_among_viewers_arriving_together(p, monkeypatch):
    feed = Feed(p)
    await feed.push([feed.queue("q-sales")], reset=True)
    store = feed.store
    release, all_waiting = asyncio.Event(), asyncio.Event()
    store_reads = []

    class GatedStore(snapshots.MemorySnapshotStore):
        async def read(self, board_id):
            store_reads.append(board_id)
            await release.wait()
            return await store.read(board_id)

    class CountingReads(snapshot_reads.SharedSnapshotReads):
        asked = 0

        async def read(self, board_id, *, newer_than=None):
            CountingReads.asked += 1
            if CountingReads.asked == 5:
                all_waiting.set()
            return await super().read(board_id, newer_than=newer_than)

    monkeypatch.setattr(snapshots, "_store", GatedStore())
    monkeypatch.setattr(consumers, "snapshot_reads", CountingReads())
    viewers = [asyncio.ensure_future(open_socket(p.supervisor)) for _ in range(5)]
    await asyncio.wait_for(all_waiting.wait(), scaled(5))
    release.set()
    sockets = await asyncio.gather(*viewers)
    for ws in sockets:
        assert (await receive(ws)).row_ids == [f"q-{p.sales.pk}"]
    assert store_reads == [p.board.pk]
    for ws in sockets:
        await ws.disconnect()


# -- ticks -------------------------------------------------------------------------------


async def test_it_turns_a_tick_into_a_meta_only_frame(p):
    feed = Feed(p)
    await feed.push([feed.queue("q-sales")], reset=True)
    ws = await open_socket(p.supervisor)
    await receive(ws)
    await feed.tick()
    frame = await receive(ws)
    assert (frame.kind, frame.seq, frame.swaps, frame.head["health"]["state"]) == ("tick", 1, [], "live")
    assert frame.head["live_at"] > 0
    await ws.disconnect()


async def test_it_resyncs_when_a_tick_shows_a_lost_delta(p):
    feed = Feed(p)
    await feed.push([feed.queue("q-sales")], reset=True)
    ws = await open_socket(p.supervisor)
    await receive(ws)
    await feed.store_only([feed.queue("q-support")])
    await feed.tick()
    frame = await receive(ws)
    assert (frame.kind, frame.seq) == ("snapshot", 2)
    assert f"q-{p.support.pk}" in frame.row_ids
    await ws.disconnect()


# -- filters -----------------------------------------------------------------------------


async def test_it_filters_by_queue_from_the_address(p):
    feed = Feed(p)
    await feed.push(
        [
            feed.queue("q-sales"),
            feed.queue("q-support"),
            feed.agent("u1", "q-sales"),
            feed.agent("u2", "q-support"),
        ],
        reset=True,
    )
    ws = await open_socket(p.supervisor, query=f"queue={p.support.pk}")
    snapshot = await receive(ws)
    assert snapshot.row_ids == [f"q-{p.support.pk}", f"a-{p.source}-u2"]
    await feed.push([feed.queue("q-sales", waiting=3)])
    hidden = await receive(ws)
    assert (hidden.kind, hidden.seq, hidden.swaps) == ("delta", 2, [])  # Seq moves on, nothing to swap.
    # Ann joins Support: she enters the filter and is added.
    await feed.push([feed.agent("u1", "q-sales", "q-support")])
    entered = await receive(ws)
    assert entered.swaps == [("tbody", "", "beforeend:#agent-rows")]
    assert entered.row_ids == [f"a-{p.source}-u1"]
    # Bob leaves Support: he leaves the filter and is deleted.
    await feed.push([feed.agent("u2")])
    left = await receive(ws)
    assert left.swaps == [("tr", f"a-{p.source}-u2", "delete")]
    await ws.disconnect()


async def test_it_filters_agents_by_status_as_they_change(p):
    feed = Feed(p)
    await feed.push([feed.queue("q-sales"), feed.agent("u1", "q-sales"), feed.agent("u2", "q-sales")], reset=True)
    ws = await open_socket(p.supervisor, query="status=idle")
    assert (await receive(ws)).row_ids == [f"q-{p.sales.pk}", f"a-{p.source}-u1", f"a-{p.source}-u2"]
    await feed.push([feed.agent("u1", "q-sales", routing="INTERACTING")])
    assert (await receive(ws)).swaps == [("tr", f"a-{p.source}-u1", "delete")]
    await feed.push([feed.agent("u2", "q-sales", name="Bea")])
    assert (await receive(ws)).swaps == [("tr", f"a-{p.source}-u2", "true")]
    await feed.push([feed.agent("u1", "q-sales", routing="IDLE")])
    assert (await receive(ws)).swaps == [("tbody", "", "beforeend:#agent-rows")]
    await ws.disconnect()


async def test_it_applies_a_filter_sent_by_the_page_with_a_fresh_snapshot(p):
    feed = Feed(p)
    await feed.push(
        [feed.queue("q-sales"), feed.queue("q-support"), feed.agent("u1", "q-sales"), feed.agent("u2", "q-support")],
        reset=True,
    )
    ws = await open_socket(p.supervisor)
    assert len((await receive(ws)).row_ids) == 4
    # As htmx's ws-send would send it: single values as strings, plus its HEADERS.
    await ws.send_to(
        json.dumps({"type": "filter", "queue": str(p.sales.pk), "status": "idle", "HEADERS": {"HX-Request": "true"}})
    )
    frame = await receive(ws)
    assert (frame.kind, frame.row_ids) == ("snapshot", [f"q-{p.sales.pk}", f"a-{p.source}-u1"])
    await ws.send_to(json.dumps({"type": "filter", "queue": [], "status": []}))
    assert len((await receive(ws)).row_ids) == 4
    await ws.disconnect()


async def test_it_filters_interactions_by_campaign_and_disposition(p):
    feed = Feed(p)

    def call(ident: str, campaign: str, disposition: str | None = None) -> dict:
        state = InteractionState(
            source=p.source, interaction_id=ident, queue_id="q-sales", state="connected", campaign=campaign,
            disposition=disposition, started_at=time.time(),
        )  # fmt: skip
        return interaction_row(state, feed.configs)

    await feed.push([call("i1", "Loyalty", "Sale"), call("i2", "Loyalty"), call("i3", "Renewals, EU")], reset=True)
    ws = await open_socket(p.supervisor)
    assert len((await receive(ws)).row_ids) == 3
    await ws.send_to(json.dumps({"type": "filter", "campaign": ["Loyalty"], "disposition": ["(none)"]}))
    frame = await receive(ws)
    assert (frame.kind, frame.row_ids) == ("snapshot", [f"i-{p.source}-i2"])
    # A campaign name may hold a comma: it is one value, not two.
    await ws.send_to(json.dumps({"type": "filter", "campaign": "Renewals, EU"}))
    assert (await receive(ws)).row_ids == [f"i-{p.source}-i3"]
    await ws.disconnect()


async def test_it_answers_a_resync_request_with_a_snapshot(p):
    feed = Feed(p)
    await feed.push([feed.queue("q-sales")], reset=True)
    ws = await open_socket(p.supervisor)
    await receive(ws)
    await ws.send_to(json.dumps({"type": "resync"}))
    frame = await receive(ws)
    assert (frame.kind, frame.seq, frame.row_ids) == ("snapshot", 1, [f"q-{p.sales.pk}"])
    await ws.disconnect()


async def test_a_page_that_does_not_say_its_protocol_is_first_told_to_reload(p):
    # A page loaded before frames had a JSON head reads only a leading #board-meta element: this one
    # carries the current version, so that page reloads to fetch the current script.
    feed = Feed(p)
    await feed.push([feed.queue("q-sales")], reset=True)
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/boards/sales/")
    communicator.scope["user"] = p.supervisor
    assert (await communicator.connect(timeout=scaled(3)))[0]
    legacy = await communicator.receive_from(timeout=scaled(3))
    assert legacy.startswith('<div id="board-meta" hx-swap-oob="true" data-kind="snapshot" data-epoch="" data-seq="')
    assert f'data-protocol="{protocol.PROTOCOL_VERSION}"' in legacy
    frame = await receive(communicator)  # Then the board as usual, for a script that can read it.
    assert (frame.kind, frame.seq, frame.row_ids) == ("snapshot", 1, [f"q-{p.sales.pk}"])
    await communicator.disconnect()


async def test_it_leaves_out_panels_the_board_does_not_show(p):
    p.board.panels = ["queues"]
    await sync_to_async(p.board.save)()
    feed = Feed(p)
    await feed.push([feed.queue("q-sales"), feed.agent("u1", "q-sales")], reset=True)
    ws = await open_socket(p.supervisor)
    frame = await receive(ws)
    assert frame.swaps == [("tbody", "queue-rows", "innerHTML")]
    assert frame.row_ids == [f"q-{p.sales.pk}"]
    await feed.push([feed.agent("u2", "q-sales")])
    assert (await receive(ws)).swaps == []
    await ws.disconnect()


# -- refusals ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "slug", "code"),
    [
        ("anonymous", "sales", 4401),
        # A board the viewer may not see answers like one that does not exist: no slug is confirmed.
        ("other_supervisor", "sales", 4404),
        ("outsider", "sales", 4404),
        ("supervisor", "nope", 4404),
    ],
)
async def test_it_refuses_signed_out_viewers_and_boards_they_may_not_see(p, who, slug, code):
    user = AnonymousUser() if who == "anonymous" else getattr(p, who)
    feed = Feed(p)
    await feed.push([feed.queue("q-sales")], reset=True)
    ws = await open_socket(user, slug=slug)
    assert await ws.receive_output(timeout=scaled(3)) == {"type": "websocket.close", "code": code}
    # Refused viewers never joined the group: a delta reaches nobody.
    await feed.push([feed.queue("q-sales", waiting=3)])
    assert await ws.receive_nothing(timeout=scaled(0.2))


# -- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        "not json",
        "[1, 2]",
        '"resync"',
        '{"type": "filter", "queue": {"1": true}}',
        '{"type": "filter", "queue": ["1 or 1=1"]}',
        '{"type": "filter", "status": [["idle"]]}',
        '{"type": "filter", "campaign": [{"$ne": null}]}',
        '{"type": "filter", "disposition": ["bad\\u0000label"]}',
        '{"type": "shutdown"}',
        '{"no": "type"}',
        json.dumps({"type": "filter", "queue": ["1"], "pad": "x" * 8200}),
    ],
)
async def test_it_drops_bad_client_messages_and_stays_up(p, message):
    feed = Feed(p)
    await feed.push([feed.queue("q-sales"), feed.queue("q-support")], reset=True)
    ws = await open_socket(p.supervisor)
    await receive(ws)
    before = sum(page_messages.dropped_messages.values())
    await ws.send_to(text_data=message)
    await ws.send_to(bytes_data=b"\x00\x01")
    assert await nothing_more(ws)
    assert sum(page_messages.dropped_messages.values()) == before + 2
    # Still up, and the filter is untouched.
    await feed.push([feed.queue("q-support", waiting=2)])
    assert (await receive(ws)).swaps == [("tr", f"q-{p.support.pk}", "true")]
    await ws.disconnect()


# -- with the real publisher and the real application --------------------------------------


async def test_it_carries_the_publishers_rendered_rows_to_the_page(p):
    floor = Floor()
    layer = get_channel_layer()
    publisher = Publisher(floor, layer=layer, store=snapshots.get_snapshot_store(), epoch="pub1")
    plan = BoardPlan(
        board_id=p.board.pk,
        slug="sales",
        window=0.02,
        queues={(p.source, "q-sales"): p.config(p.sales), (p.source, "q-support"): p.config(p.support)},
    )
    publisher.set_boards([plan])
    publisher.mark(floor.apply(QueueStats(source=p.source, queue_id="q-sales", waiting=4)))
    assert await publisher.flush(p.board.pk)
    ws = await open_socket(p.supervisor, query=f"queue={p.sales.pk}")
    snapshot = await receive(ws)
    assert (snapshot.epoch, snapshot.row_ids) == ("pub1", [f"q-{p.sales.pk}"])
    publisher.mark(floor.apply(QueueStats(source=p.source, queue_id="q-sales", waiting=12)))
    publisher.mark(
        floor.apply(
            AgentStatus(
                source=p.source,
                agent_id="u9",
                name="Ann",
                presence="on_queue",
                routing_status="IDLE",
                queue_ids=frozenset({"q-sales"}),
            )
        )
    )
    assert await publisher.flush(p.board.pk)
    frame = await receive(ws)
    assert frame.kind == "delta"
    assert frame.swap_of(f"q-{p.sales.pk}") == "true"
    assert f"a-{p.source}-u9" in frame.row_ids
    await ws.disconnect()


async def test_it_authenticates_sockets_from_the_session_and_checks_the_origin(p):
    client = Client()
    await sync_to_async(client.force_login)(p.supervisor)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    headers = [(b"host", b"testserver"), (b"cookie", cookie)]
    ws = WebsocketCommunicator(
        application, f"/ws/boards/sales/?{ANNOUNCE}", headers=[*headers, (b"origin", b"http://testserver")]
    )
    assert (await ws.connect(timeout=scaled(3)))[0]
    assert (await receive(ws)).kind == "snapshot"
    await ws.disconnect()

    foreign = WebsocketCommunicator(
        application, f"/ws/boards/sales/?{ANNOUNCE}", headers=[*headers, (b"origin", b"http://evil.example")]
    )
    connected, _ = await foreign.connect(timeout=scaled(3))
    assert not connected

    anonymous = WebsocketCommunicator(
        application,
        f"/ws/boards/sales/?{ANNOUNCE}",
        headers=[(b"host", b"testserver"), (b"origin", b"http://testserver")],
    )
    assert (await anonymous.connect(timeout=scaled(3)))[0]
    assert await anonymous.receive_output(timeout=scaled(3)) == {"type": "websocket.close", "code": 4401}


# -- the process's board feed --------------------------------------------------------------


async def test_a_process_joins_a_boards_group_once_for_all_its_viewers(p):
    feed = Feed(p)
    await feed.push([feed.queue("q-sales", waiting=1)])
    sockets = [await open_socket(p.supervisor) for _ in range(3)]
    for ws in sockets:
        assert (await receive(ws)).seq == 1
    # One member per process, however many viewers: the layer copies a message once, not per viewer.
    assert len(feed.layer.groups[p.board.group_name]) == 1
    await feed.push([feed.queue("q-sales", waiting=2)])
    for ws in sockets:
        frame = await receive(ws)
        assert (frame.kind, frame.seq) == ("delta", 2)
        assert await nothing_more(ws)
    for ws in sockets:
        await ws.disconnect()
    # The last viewer out takes the process out of the group.
    await wait_for(lambda: not feed.layer.groups.get(p.board.group_name), "the feed to leave the group")


async def wait_for(predicate, what: str) -> None:
    deadline = time.monotonic() + scaled(3)
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


class FlakyLayer(InMemoryChannelLayer):
    """An in-memory layer that can go away like a restarting Redis: receives fail and memberships vanish."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.joins = 0
        self.gone = asyncio.Event()

    def restart(self) -> None:
        self.down = True
        self.groups.clear()
        # Wake the blocked receiver, as a closed connection would.
        for queue in self.channels.values():
            queue.put_nowait((0, {"type": "__restart__"}))

    async def receive(self, channel):
        message = await super().receive(channel)
        if message.get("type") == "__restart__" or self.down:
            self.gone.set()
            raise ConnectionError("Connection closed by server.")
        return message

    async def group_add(self, group, channel):
        if self.down:
            raise ConnectionError("Connection refused")
        if group.startswith("board."):
            self.joins += 1  # The board feed's joins; the process's access watch joins a group of its own.
        await super().group_add(group, channel)


async def test_viewers_resync_after_the_channel_layer_comes_back(p, settings):
    layer = FlakyLayer()
    old = channel_layers.set("default", layer)
    try:
        feed = Feed(p)
        feed.layer = layer
        await feed.push([feed.queue("q-sales", waiting=1)])
        ws = await open_socket(p.supervisor)
        assert (await receive(ws)).seq == 1
        layer.restart()
        await asyncio.wait_for(layer.gone.wait(), scaled(3))
        # While the layer is away the worker goes on writing the store; its messages are lost.
        await feed.push([feed.queue("q-sales", waiting=7)])
        layer.down = False
        # The feed joins again and the viewer reads what it missed, without the socket ever closing.
        back = await asyncio.wait_for(ws.receive_from(), scaled(10))
        frame = parse(back)
        assert (frame.kind, frame.seq) == ("snapshot", 2)
        assert '<span class="value">7</span>' in back
        assert layer.joins == 2
        await feed.push([feed.queue("q-sales", waiting=8)])
        assert ((await receive(ws)).kind, feed.seq) == ("delta", 3)
        await ws.disconnect()
    finally:
        channel_layers.set("default", old)


async def test_a_new_viewer_is_closed_when_the_channel_layer_is_unreachable(p, monkeypatch):
    layer = FlakyLayer()
    layer.down = True
    old = channel_layers.set("default", layer)
    monkeypatch.setattr(fanout, "JOIN_TIMEOUT", scaled(0.3))
    try:
        ws = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/boards/sales/?{ANNOUNCE}")
        ws.scope["user"] = p.supervisor
        assert (await ws.connect(timeout=scaled(3)))[0]
        # 4011 (Daphne cannot send 1011) tells the page to come back later, with its backoff.
        assert await ws.receive_output(timeout=scaled(3)) == {"type": "websocket.close", "code": 4011}
        await wait_for(lambda: not fanout.board_feeds.active(), "the idle feed to end")
    finally:
        channel_layers.set("default", old)


async def test_the_feed_renews_its_membership_before_the_layer_forgets_it(p, monkeypatch):
    monkeypatch.setattr(group_subscription, "RENEW_EVERY", 0.05)
    layer = FlakyLayer()
    old = channel_layers.set("default", layer)
    try:
        feed = Feed(p)
        feed.layer = layer
        await feed.push([feed.queue("q-sales")])
        ws = await open_socket(p.supervisor)
        await receive(ws)
        # Quiet board, no messages at all: the renewal is by the clock.
        await wait_for(lambda: layer.joins >= 3, "the membership to be renewed")
        await ws.disconnect()
    finally:
        channel_layers.set("default", old)
