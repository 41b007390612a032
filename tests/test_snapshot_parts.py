"""A board's snapshot larger than the part bound goes out in parts: a first that replaces, then parts that add.

Runs the real consumer with the in-memory channel layer and the in-process
snapshot store, as tests/test_consumers.py does.
"""

from __future__ import annotations

import json

import pytest

from dashboard import consumers, protocol
from dashboard.filters import RowFilter
from dashboard.frames import snapshot_frames
from dashboard.viewer_limits import UnreadFrames
from tests.socket_util import Feed, Frame, nothing_more, open_socket, parse, receive
from tests.timing import eventually, scaled

pytestmark = [pytest.mark.django_db(transaction=True)]

PART_BYTES = 16 * 1024
AGENTS = 400


async def large_board(p, settings) -> tuple[Feed, list[dict]]:
    """Write a board whose snapshot is many times PART_BYTES, with PART_BYTES the socket's part bound."""
    settings.FLOORVIEW = {**settings.FLOORVIEW, "SNAPSHOT_PART_BYTES": PART_BYTES}
    feed = Feed(p)
    rows = [feed.queue("q-sales", waiting=4), feed.queue("q-support", waiting=1)]
    rows += [feed.agent(f"u{n:04}", "q-sales" if n % 3 else "q-support", name=f"Agent {n:04}") for n in range(AGENTS)]
    await feed.push(rows, reset=True)
    return feed, rows


async def snapshot_parts(ws) -> list[tuple[str, Frame]]:
    """Read one snapshot's frames, first to last: (text, frame taken apart) each."""
    out = []
    while True:
        text = await ws.receive_from(timeout=scaled(3))
        frame = parse(text)
        assert frame.kind in (protocol.SNAPSHOT_FRAME, protocol.SNAPSHOT_PART_FRAME), frame.head
        out.append((text, frame))
        if frame.head["part"] == frame.head["parts"]:
            return out


async def test_a_large_snapshot_arrives_in_bounded_parts_and_a_delta_sent_meanwhile_follows_it(
    p, settings, monkeypatch
):
    feed, rows = await large_board(p, settings)
    whole = await feed.store.read(p.board.pk)
    (frame,), _ = snapshot_frames(whole, RowFilter(), ("queue", "agent", "interaction"), part_bytes=None)
    total = len(frame)
    assert total > 8 * PART_BYTES  # Several times the bound: many parts.

    # A delta reaches the viewer while its snapshot's parts are going out: right after the first part.
    send_frame = consumers.BoardConsumer._send_frame
    held = []

    async def send_and_push_once(self, text, **kinds):
        await send_frame(self, text, **kinds)
        if kinds.get("snapshot") and not held:
            held.append(await feed.push([feed.queue("q-sales", waiting=99)]))
            await eventually(lambda: self.catch_up.waiting, within=3, what="the delta to wait for the snapshot")

    monkeypatch.setattr(consumers.BoardConsumer, "_send_frame", send_and_push_once)
    ws = await open_socket(p.supervisor)
    parts = await snapshot_parts(ws)
    assert held, "the delta was not sent while the snapshot went out"

    count = len(parts)
    assert count > 8
    for number, (text, frame) in enumerate(parts, start=1):
        assert len(text.encode()) <= PART_BYTES, f"part {number} is {len(text.encode())} bytes"
        assert (frame.epoch, frame.seq, frame.head["part"], frame.head["parts"]) == ("e1", 1, number, count)
        if number == 1:
            # The first part starts the snapshot: it replaces every body (the page's old rows all go).
            assert frame.kind == "snapshot" and frame.head["protocol"] == protocol.PROTOCOL_VERSION
            assert frame.swaps[:3] == [
                ("tbody", "queue-rows", "innerHTML"),
                ("tbody", "agent-rows", "innerHTML"),
                ("tbody", "interaction-rows", "innerHTML"),
            ]
        else:
            assert frame.kind == "snapshot-part" and "protocol" not in frame.head
            assert {oob for _, _, oob in frame.swaps} <= {"beforeend:#queue-rows", "beforeend:#agent-rows"}
    # Their union is exactly the board's rows, each once, in display order.
    shown = [row_id for _, frame in parts for row_id in frame.row_ids]
    assert len(shown) == len(set(shown)) == len(rows)
    assert set(shown) == {row["key"] for row in rows}
    agents = [row_id for row_id in shown if row_id.startswith("a-")]
    assert agents == [f"a-{p.source}-u{n:04}" for n in range(AGENTS)]  # Name order, across parts.

    # The delta comes after the last part, following the snapshot's seq.
    delta = await receive(ws)
    assert (delta.kind, delta.seq, delta.swaps) == ("delta", 2, [("tr", f"q-{p.sales.pk}", "true")])
    assert await nothing_more(ws)
    await ws.disconnect()


async def test_each_viewers_parts_hold_only_the_rows_its_filter_shows(p, settings):
    feed, rows = await large_board(p, settings)
    ws = await open_socket(p.supervisor, query=f"queue={p.support.pk}")
    parts = await snapshot_parts(ws)
    shown = {row_id for _, frame in parts for row_id in frame.row_ids}
    # Agents u0000, u0003, ... are on support; the others on sales.
    assert f"a-{p.source}-u0000" in shown and f"a-{p.source}-u0001" not in shown
    assert shown == {row["key"] for row in rows if RowFilter.parse([str(p.support.pk)]).matches(row)}
    assert len(shown) == 1 + len(range(0, AGENTS, 3))
    assert len(parts) > 1 and all(len(text.encode()) <= PART_BYTES for text, _ in parts)
    # The filter's view of a changed row follows the snapshot as always: a sales agent is not sent.
    await feed.push([feed.agent("u0001", "q-sales", name="Agent 0001", presence="away")])
    await feed.push([feed.agent("u0000", "q-support", name="Agent 0000", presence="away")])
    assert ((await receive(ws)).seq, (await receive(ws)).swaps) == (2, [("tr", f"a-{p.source}-u0000", "true")])
    await ws.disconnect()


async def test_snapshots_read_at_once_never_interleave_their_parts(p, settings, monkeypatch):
    await large_board(p, settings)
    send_frame = consumers.BoardConsumer._send_frame
    started = []

    async def send_and_resync(self, text, **kinds):
        await send_frame(self, text, **kinds)
        if kinds.get("snapshot"):
            started.append(text)
            if len(started) == 2:
                # While the snapshot the page asked for goes out, its feed loses the channel layer and starts
                # a snapshot of its own (dashboard.fanout): two reads at once for one viewer.
                self.resync()

    monkeypatch.setattr(consumers.BoardConsumer, "_send_frame", send_and_resync)
    ws = await open_socket(p.supervisor)
    count = len(await snapshot_parts(ws))
    await ws.send_to(text_data='{"type": "resync"}')
    # Each snapshot's parts come together, first to last.
    for _ in range(2):
        assert [frame.head["part"] for _, frame in await snapshot_parts(ws)] == list(range(1, count + 1))
    assert len(started) == 3 and await nothing_more(ws)
    await ws.disconnect()


async def test_a_page_that_reads_a_snapshot_in_parts_larger_than_the_unread_cap_is_not_closed(p, settings):
    feed, _ = await large_board(p, settings)
    settings.FLOORVIEW = {**settings.FLOORVIEW, "SOCKET_UNREAD_CAP": 2 * PART_BYTES}
    ws = await open_socket(p.supervisor)
    parts = await snapshot_parts(ws)  # Several times the cap, unacknowledged while it arrives.
    frames = len(parts)
    for waiting in range(3):  # Deltas before the page's first acknowledgement do not count the snapshot.
        await feed.push([feed.queue("q-sales", waiting=waiting)])
        assert (await receive(ws)).kind == "delta"
        frames += 1
    await ws.send_to(text_data=json.dumps({"type": "ack", "frames": frames}))
    await feed.push([feed.queue("q-sales", waiting=99)])
    assert (await receive(ws)).kind == "delta"
    await ws.disconnect()


def test_a_snapshot_in_parts_counts_as_unread_until_each_part_is_acknowledged():
    unread = UnreadFrames()
    unread.record(100)  # a frame before the snapshot, unacknowledged
    unread.record(1000, snapshot=True)
    unread.record(1000, part=True)
    unread.record(500, part=True)
    assert unread.unread == 2600 and not unread.over(100) and unread.over(99)  # Only the frame before counts.
    unread.record(10)
    assert not unread.over(100) and unread.over(99)  # The newest frame aside, the snapshot still exempt.
    assert unread.ack(3) and unread.unread == 510  # Half the snapshot read: its last part is still exempt.
    unread.record(20)
    assert not unread.over(10) and unread.over(9)
    assert unread.ack(4)  # The whole snapshot read: the frames after it count again.
    unread.record(30)
    assert unread.unread == 60 and unread.over(29) and not unread.over(30)


def test_a_row_larger_than_the_bound_travels_alone_and_no_bound_means_one_frame():
    snapshot = type("Snap", (), {"epoch": "e", "seq": 4, "server_time": 1.0, "live_at": 1.0, "health": {}})()
    big = agent_row_dict("a-c1-big", "Big", "x" * 5000)
    small = [agent_row_dict(f"a-c1-s{n:02}", f"Small {n:02}", "s") for n in range(40)]
    snapshot.rows = {row["key"]: row for row in [big, *small]}
    parts, shown = snapshot_frames(snapshot, RowFilter(), ("agent",), part_bytes=1024)
    assert shown == set(snapshot.rows)
    assert parse(parts[0]).row_ids == ["a-c1-big"]  # Alone, over the bound.
    assert all(len(part.encode()) <= 1024 for part in parts[1:])
    assert [row for part in parts for row in parse(part).row_ids] == ["a-c1-big", *(r["key"] for r in small)]
    whole, _ = snapshot_frames(snapshot, RowFilter(), ("agent",), part_bytes=None)
    assert len(whole) == 1 and parse(whole[0]).head["parts"] == 1
    empty, none_shown = snapshot_frames(None, RowFilter(), ("queue", "agent"), part_bytes=1024)
    assert len(empty) == 1 and none_shown == set()
    assert parse(empty[0]).swaps == [("tbody", "queue-rows", "innerHTML"), ("tbody", "agent-rows", "innerHTML")]


def agent_row_dict(key: str, name: str, cell: str) -> dict:
    return {"kind": "agent", "key": key, "data": {"name": name}, "html": f'<tr id="{key}"><td>{cell}</td></tr>'}


async def test_the_socket_carries_the_settings_part_bound(p, settings):
    await large_board(p, settings)
    settings.FLOORVIEW = {**settings.FLOORVIEW, "SNAPSHOT_PART_BYTES": 10 * 1024 * 1024}
    ws = await open_socket(p.supervisor)
    only = await snapshot_parts(ws)
    assert len(only) == 1 and only[0][1].head["parts"] == 1
    await ws.disconnect()


async def test_a_snapshot_larger_than_the_servers_write_buffer_cap_is_logged(p, settings, caplog):
    await large_board(p, settings)
    settings.FLOORVIEW = {**settings.FLOORVIEW, "SOCKET_BUFFER_CAP": 4 * PART_BYTES}
    consumers.large_snapshot_log.reset()
    ws = await open_socket(p.supervisor)
    await snapshot_parts(ws)
    assert "is over FLOORVIEW_SOCKET_BUFFER_CAP" in caplog.text
    await ws.disconnect()
