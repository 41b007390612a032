"""Live interactions: folded on the Floor (bounded), rendered once per board, filtered per viewer."""

from __future__ import annotations

import pytest
from django.http import QueryDict

from dashboard.filters import NO_DISPOSITION, RowFilter, select_rows
from dashboard.frames import delta_frame, snapshot_frames
from dashboard.publisher import BoardPlan, Publisher
from dashboard.rows import QueueConfig, interaction_key, interaction_row
from streams.events import AgentStatus, InteractionUpdate, SourceSnapshot
from streams.feeds.mapping import FieldMapping, MappingError, RecordError, RecordFolder
from streams.floor import Floor
from streams.snapshots import MemorySnapshotStore
from tests.test_publisher import RecordingLayer
from tests.timing import FakeClock

SRC = "c9"


def call(ident: str, **fields) -> InteractionUpdate:
    return InteractionUpdate(source=SRC, interaction_id=ident, **fields)


# -- the Floor ------------------------------------------------------------------------


def test_updates_with_one_id_fold_into_one_row_and_repeats_change_nothing():
    floor = Floor()
    key = ("interaction", SRC, "i1")
    assert floor.apply(call("i1", state="Waiting", queue_id="q1", media="VOICE", started_at=10)) == {key}
    assert floor.apply(call("i1", state="waiting")) == set()
    assert floor.apply(call("i1", state="connected", agent_id="a1")) == {key}
    state = floor.interaction(SRC, "i1")
    assert (state.state, state.queue_id, state.media, state.agent_id, state.started_at) == (
        "connected",
        "q1",
        "voice",
        "a1",
        10.0,
    )


def test_an_ended_interaction_leaves_and_an_end_for_an_unknown_one_is_quiet():
    floor = Floor()
    floor.apply(call("i1", state="connected"))
    assert floor.apply(call("i1", ended=True)) == {("interaction", SRC, "i1")}
    assert floor.interaction(SRC, "i1") is None
    assert floor.apply(call("never-seen", ended=True)) == set()
    assert floor.source_interaction_ids(SRC) == set()


def test_the_state_clock_restarts_only_when_the_state_changes():
    wall = [1000.0]
    floor = Floor(wall_clock=lambda: wall[0])
    floor.apply(call("i1", state="waiting"))
    wall[0] = 1010.0
    floor.apply(call("i1", queue_id="q2"))
    assert floor.interaction(SRC, "i1").state_since == 1000.0
    floor.apply(call("i1", state="connected"))
    assert floor.interaction(SRC, "i1").state_since == 1010.0


def test_a_runaway_feed_is_capped_least_recently_updated_first():
    floor = Floor(max_interactions=3)
    for ident in ("a", "b", "c"):
        floor.apply(call(ident, state="waiting"))
    floor.apply(call("a", state="connected"))  # "a" is now the most recently updated
    changed = floor.apply(call("d", state="waiting"))
    assert ("interaction", SRC, "b") in changed
    assert floor.source_interaction_ids(SRC) == {"a", "c", "d"}
    assert floor.interactions_evicted == 1


def test_interactions_nobody_mentions_for_the_ttl_expire():
    clock = FakeClock()
    floor = Floor(interaction_ttl=60, clock=clock)
    floor.apply(call("old", state="connected"))
    clock.now += 50
    floor.apply(call("fresh", state="connected"))
    clock.now += 20  # "old" is 70 s quiet, "fresh" 20 s
    assert floor.expire_interactions() == {("interaction", SRC, "old")}
    assert floor.source_interaction_ids(SRC) == {"fresh"}
    assert floor.expire_interactions() == set()


def test_a_snapshot_with_interactions_replaces_them_and_one_without_leaves_them_alone():
    floor = Floor()
    floor.apply(call("gone", state="connected"))
    floor.apply(call("kept", state="waiting", campaign="Loyalty"))
    # Genesys-style snapshot: nothing about interactions.
    assert floor.replace(SourceSnapshot(source=SRC)) == set()
    assert floor.source_interaction_ids(SRC) == {"gone", "kept"}
    changed = floor.replace(
        SourceSnapshot(source=SRC, interactions={"kept": call("kept", state="waiting"), "new": call("new")})
    )
    assert changed == {("interaction", SRC, "gone"), ("interaction", SRC, "kept"), ("interaction", SRC, "new")}
    # A snapshot states every field: the campaign it left out is cleared.
    assert floor.interaction(SRC, "kept").campaign is None
    assert floor.drop_source(SRC) == {("interaction", SRC, "kept"), ("interaction", SRC, "new")}


def test_odd_values_are_kept_as_short_text_not_objects():
    floor = Floor()
    floor.apply(call("i1", campaign=12345, disposition="x" * 500, started_at="not a time"))
    state = floor.interaction(SRC, "i1")
    assert state.campaign == "12345"
    assert len(state.disposition) == 200
    assert state.started_at is None


# -- field mappings -----------------------------------------------------------------------


def test_a_mapping_reads_dotted_paths_and_renames_states():
    mapping = FieldMapping.parse(
        {"queue_id": "payload.queue.id", "states": {"ACW": "wrapup"}, "terminal_types": ["closed"]}
    )
    folder = RecordFolder(SRC, mapping)
    folded = folder.fold(
        {"interaction_id": 7, "timestamp": 1_000_000, "state": "ACW", "payload": {"queue": {"id": "q7"}}}
    )
    event = folded.event
    assert (event.interaction_id, event.queue_id, event.state) == ("7", "q7", "wrapup")
    assert folder.fold({"interaction_id": 7, "type": "closed", "timestamp": 1_000_001}).event.ended is True


def test_a_record_older_than_one_applied_is_dropped_as_stale():
    folder = RecordFolder(SRC, FieldMapping())
    assert folder.fold({"interaction_id": "i", "timestamp": 2000, "state": "connected"}).event is not None
    stale = folder.fold({"interaction_id": "i", "timestamp": 1000, "state": "waiting"})
    assert (stale.event, stale.dropped) == (None, "stale")


@pytest.mark.parametrize(
    "record",
    [
        [],
        "text",
        {"state": "waiting"},
        {"interaction_id": ""},
        {"interaction_id": {"nested": 1}},
        {"interaction_id": "i", "timestamp": True},
    ],
)
def test_unusable_records_are_refused_with_a_reason(record):
    with pytest.raises(RecordError):
        RecordFolder(SRC, FieldMapping()).fold(record)


@pytest.mark.parametrize(
    "raw", [[], {"nonsense": "x"}, {"queue_id": ""}, {"queue_id": "a..b"}, {"terminal_types": "ended"}, {"states": []}]
)
def test_a_bad_mapping_is_refused_with_a_reason(raw):
    with pytest.raises(MappingError):
        FieldMapping.parse(raw)


# -- rows, filters and the publisher ---------------------------------------------------


QUEUES = {"q1": QueueConfig(pk=11, vendor_id="q1", name="Sales"), "q2": QueueConfig(pk=12, vendor_id="q2", name="Care")}


def row_of(update: InteractionUpdate, agent_name: str | None = None) -> dict:
    floor = Floor()
    floor.apply(update)
    return interaction_row(floor.interaction(update.source, update.interaction_id), QUEUES, agent_name)


def test_an_interaction_row_shows_every_field_and_escapes_them():
    row = row_of(
        call(
            "i<1>",
            queue_id="q1",
            media="chat",
            state="connected",
            agent_id="a1",
            campaign="<b>Spring</b>",
            disposition="Sale",
            started_at=1000,
        ),
        agent_name="Ada Lovelace",
    )
    assert row["key"] == interaction_key(SRC, "i<1>")
    assert "<" not in row["key"]  # a free-form id becomes a safe DOM id
    assert row["attrs"] == {"queue": "11", "campaign": "<b>Spring</b>", "disposition": "Sale", "state": "connected"}
    html = row["html"]
    assert html.startswith(f'<tr id="{row["key"]}"')
    for text in (
        "Chat",
        "Sales",
        "Connected",
        "Ada Lovelace",
        "&lt;b&gt;Spring&lt;/b&gt;",
        "Sale",
        'data-since="1000000"',
    ):
        assert text in html
    assert "<b>" not in html


def test_viewers_filter_interactions_by_campaign_disposition_and_queue():
    rows = [
        row_of(call("a", queue_id="q1", campaign="Loyalty", disposition="Sale", started_at=3)),
        row_of(call("b", queue_id="q2", campaign="Loyalty", started_at=1)),
        row_of(call("c", queue_id="q1", campaign="Renewals", started_at=2)),
    ]

    def keys(row_filter: RowFilter) -> list[str]:
        return [row["data"]["interaction_id"] for row in select_rows(rows, "interaction", row_filter)]

    assert keys(RowFilter()) == ["b", "c", "a"]  # oldest first
    assert keys(RowFilter.parse(campaigns=["Loyalty"])) == ["b", "a"]
    assert keys(RowFilter.parse(dispositions=[NO_DISPOSITION])) == ["b", "c"]
    assert keys(RowFilter.parse(queues=["11"], campaigns="Loyalty", dispositions=["Sale"])) == ["a"]
    # Query strings carry the same filter; a label may hold a comma.
    assert RowFilter.from_query(QueryDict("campaign=Loyalty&disposition=Sale,+upsell")).dispositions == {"Sale, upsell"}
    with pytest.raises(ValueError):
        RowFilter.parse(campaigns=[{"$ne": 1}])


def test_a_viewer_sees_an_interaction_leave_its_filter_when_its_disposition_changes():
    row_filter = RowFilter.parse(dispositions=[NO_DISPOSITION])
    before = row_of(call("a", queue_id="q1", state="connected"))
    snapshot = type("Snap", (), {"epoch": "e", "seq": 1, "server_time": 1.0, "live_at": 1.0, "health": {}})()
    snapshot.rows = {before["key"]: before}
    (frame,), shown = snapshot_frames(snapshot, row_filter, ("interaction",), part_bytes=None)
    assert before["key"] in shown and 'id="interaction-rows"' in frame
    after = row_of(call("a", queue_id="q1", state="wrapup", disposition="Resolved"))
    delta = delta_frame({"epoch": "e", "seq": 2, "rows": [after]}, row_filter, shown, ("interaction",))
    assert f'<tr id="{after["key"]}" hx-swap-oob="delete">' in delta
    assert shown == set()


async def test_the_publisher_puts_interactions_on_their_queues_boards_and_follows_a_transfer():
    floor = Floor()
    layer = RecordingLayer()
    publisher = Publisher(floor, layer=layer, store=MemorySnapshotStore(), epoch="ep")
    sales = BoardPlan(board_id=1, slug="sales", window=0.05, queues={(SRC, "q1"): QUEUES["q1"]})
    care = BoardPlan(board_id=2, slug="care", window=0.05, queues={(SRC, "q2"): QUEUES["q2"]})
    publisher.set_boards([sales, care])
    await publisher.flush_all()
    layer.sent.clear()
    floor.apply(AgentStatus(source=SRC, agent_id="a1", name="Grace Hopper"))
    publisher.mark(floor.apply(call("i1", queue_id="q1", state="connected", agent_id="a1")))
    delta = await layer.next_delta()
    assert delta["group"] == "board.1"
    (row,) = delta["rows"]
    assert row["data"]["agent_name"] == "Grace Hopper"  # the Floor's name when the interaction gives none
    # Transferred to the other queue: it leaves the sales board and joins the care board.
    publisher.mark(floor.apply(call("i1", queue_id="q2")))
    first, second = await layer.next_delta(), await layer.next_delta()
    by_group = {d["group"]: d for d in (first, second)}
    assert by_group["board.1"]["removed"] == [row["key"]]
    assert [r["key"] for r in by_group["board.2"]["rows"]] == [row["key"]]
    # Ended: it leaves.
    publisher.mark(floor.apply(call("i1", ended=True)))
    assert (await layer.next_delta())["removed"] == [row["key"]]


async def test_an_interaction_without_a_queue_shows_on_every_board_of_its_source():
    floor = Floor()
    layer = RecordingLayer()
    publisher = Publisher(floor, layer=layer, store=MemorySnapshotStore(), epoch="ep")
    publisher.set_boards(
        [
            BoardPlan(board_id=1, slug="a", window=0.05, queues={(SRC, "q1"): QUEUES["q1"]}),
            BoardPlan(board_id=2, slug="b", window=0.05, queues={("other", "q1"): QUEUES["q1"]}),
        ]
    )
    await publisher.flush_all()
    layer.sent.clear()
    publisher.mark(floor.apply(call("outbound", state="dialing", media="voice")))
    delta = await layer.next_delta()
    assert delta["group"] == "board.1" and delta["rows"][0]["data"]["queue_name"] == ""
    assert layer.of("board.delta") == []
