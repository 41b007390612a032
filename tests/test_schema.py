"""One schema per row kind: events, Floor state and board columns all come from it."""

from dataclasses import fields

import pytest

from streams import states
from streams.events import AgentStatus, InteractionUpdate, QueueStats, SourceSnapshot
from streams.floor import AgentState, Floor, InteractionState, QueueState
from streams.schema import AGENT, INTERACTION, QUEUE


@pytest.mark.parametrize(
    ("schema", "event", "state"),
    [
        (QUEUE, QueueStats, QueueState),
        (AGENT, AgentStatus, AgentState),
        (INTERACTION, InteractionUpdate, InteractionState),
    ],
)
def test_events_and_state_hold_exactly_the_schemas_fields(schema, event, state):
    identity = ["source", schema.identity]
    assert [f.name for f in fields(event)] == identity + [f.name for f in schema.event_fields]
    assert [f.name for f in fields(state)] == identity + [f.name for f in schema.state_fields]
    blank = state(source="s", **{schema.identity: "x"})
    assert {f.name: getattr(blank, f.name) for f in schema.state_fields} == {
        f.name: f.default for f in schema.state_fields
    }
    assert blank.key == (schema.kind, "s", "x")
    assert not hasattr(blank, "__dict__")  # slots: a Floor of 10,000 agents stays small


def test_every_column_has_a_cell_format():
    from dashboard.templatetags.board_columns import CELLS

    assert {column.format for column in QUEUE.columns} <= CELLS.keys()


@pytest.mark.parametrize(
    ("given", "held"),
    [
        ("OnQueue", "on_queue"),
        ("ON_QUEUE", "on_queue"),
        ("on queue", "on_queue"),
        ("Break", "break"),
        ("WorkingFromHome", "working_from_home"),
        ("Lunch Break", "lunch_break"),
    ],
)
def test_a_presence_has_one_spelling_whoever_reports_it(given, held):
    assert states.presence(given) == held
    floor = Floor()
    floor.apply(AgentStatus("c1", "a1", presence=given, routing_status=" idle "))
    agent = floor.agent("c1", "a1")
    assert (agent.presence, agent.routing_status) == (held, "IDLE")


def test_a_presence_the_floor_cannot_read_is_none_not_a_crash():
    floor = Floor()
    floor.apply(AgentStatus("c1", "a1", presence="  ", routing_status=""))
    agent = floor.agent("c1", "a1")
    assert (agent.presence, agent.routing_status, agent.status) == (None, None, "unknown")


def test_the_status_a_supervisor_reads():
    assert states.status("on_queue", "INTERACTING") == "interacting"
    assert states.status(None, "IDLE") == "idle"
    assert states.status("break", "IDLE") == "break"
    assert states.status(None, None) == "unknown"


def test_a_snapshot_resets_what_it_leaves_out_to_the_schemas_defaults_but_keeps_names():
    floor = Floor()
    floor.apply(QueueStats("c1", "q1", name="Sales", waiting=3, offered=9, interval_start=1.0))
    floor.apply(AgentStatus("c1", "a1", name="Ann", presence="break", queue_ids=["q1"]))
    floor.replace(
        SourceSnapshot(
            "c1", queues={"q1": QueueStats("c1", "q1", interacting=1)}, agents={"a1": AgentStatus("c1", "a1")}
        )
    )
    queue, agent = floor.queue("c1", "q1"), floor.agent("c1", "a1")
    assert (queue.name, queue.waiting, queue.offered, queue.interval_start, queue.interacting) == (
        "Sales",
        0,
        0,
        None,
        1,
    )
    assert (agent.name, agent.presence, agent.queue_ids) == ("Ann", None, frozenset())


def test_interaction_text_is_normalised_by_the_schema():
    floor = Floor()
    floor.apply(InteractionUpdate("c1", "i1", media="Voice", state="CONNECTED", campaign="x" * 500, started_at=True))
    row = floor.interaction("c1", "i1")
    assert (row.media, row.state, len(row.campaign), row.started_at) == ("voice", "connected", 200, None)
