"""The Floor folds events into state and reports only real changes."""

import pytest

from streams.events import AgentStatus, QueueMembership, QueueStats, SourceSnapshot
from streams.floor import Floor


@pytest.fixture
def floor():
    return Floor()


def test_it_reports_a_changed_queue_once(floor):
    assert floor.apply(QueueStats("c1", "q1", waiting=3)) == {("queue", "c1", "q1")}
    assert floor.apply(QueueStats("c1", "q1", waiting=3)) == set()
    assert floor.queue("c1", "q1").waiting == 3


def test_it_leaves_unreported_fields_alone(floor):
    floor.apply(QueueStats("c1", "q1", waiting=3, interacting=2))
    floor.apply(QueueStats("c1", "q1", alerting=1))
    state = floor.queue("c1", "q1")
    assert (state.waiting, state.interacting, state.alerting) == (3, 2, 1)


def test_it_clears_longest_wait_when_nobody_waits(floor):
    floor.apply(QueueStats("c1", "q1", waiting=2, longest_waiting_since=1000.5))
    assert floor.apply(QueueStats("c1", "q1", waiting=0)) == {("queue", "c1", "q1")}
    assert floor.queue("c1", "q1").longest_waiting_since is None


def test_it_folds_presence_case_blind(floor):
    floor.apply(AgentStatus("c1", "a1", presence="ON_QUEUE", routing_status="idle"))
    assert floor.apply(AgentStatus("c1", "a1", presence="On_Queue")) == set()
    agent = floor.agent("c1", "a1")
    assert agent.presence == "on_queue"
    assert agent.routing_status == "IDLE"
    assert agent.status == "idle"


def test_status_follows_presence_when_off_queue(floor):
    floor.apply(AgentStatus("c1", "a1", presence="break", presence_since=50.0, routing_status="OFF_QUEUE"))
    agent = floor.agent("c1", "a1")
    assert agent.status == "break"
    assert agent.status_since == 50.0


def test_membership_changes_the_agents_queues(floor):
    assert floor.apply(QueueMembership("c1", "q1", "a1", joined=True)) == {("agent", "c1", "a1")}
    assert floor.apply(QueueMembership("c1", "q1", "a1", joined=True)) == set()
    floor.apply(QueueMembership("c1", "q2", "a1", joined=True))
    floor.apply(QueueMembership("c1", "q1", "a1", joined=False))
    assert floor.agent("c1", "a1").queue_ids == frozenset({"q2"})


def test_a_snapshot_equal_to_the_floor_changes_nothing(floor):
    floor.apply(QueueStats("c1", "q1", name="Sales", waiting=1, interacting=4))
    floor.apply(AgentStatus("c1", "a1", name="Ada", presence="on_queue", routing_status="IDLE", queue_ids=["q1"]))
    snapshot = SourceSnapshot(
        "c1",
        queues={"q1": QueueStats("c1", "q1", name="Sales", waiting=1, interacting=4)},
        agents={
            "a1": AgentStatus("c1", "a1", name="Ada", presence="on_queue", routing_status="IDLE", queue_ids=["q1"])
        },
    )
    assert floor.replace(snapshot) == set()


def test_a_snapshot_emits_exactly_the_differences(floor):
    floor.apply(QueueStats("c1", "q1", waiting=1))
    floor.apply(QueueStats("c1", "q2", waiting=5))
    floor.apply(AgentStatus("c1", "gone", presence="available"))
    floor.apply(QueueStats("c2", "other", waiting=9))
    snapshot = SourceSnapshot(
        "c1",
        queues={"q1": QueueStats("c1", "q1", waiting=1), "q2": QueueStats("c1", "q2", waiting=6)},
        agents={"new": AgentStatus("c1", "new", presence="available")},
    )
    assert floor.replace(snapshot) == {("queue", "c1", "q2"), ("agent", "c1", "gone"), ("agent", "c1", "new")}
    assert floor.agent("c1", "gone") is None
    # Another source is untouched by this source's snapshot.
    assert floor.queue("c2", "other").waiting == 9


def test_a_snapshot_resets_fields_it_does_not_state(floor):
    floor.apply(QueueStats("c1", "q1", waiting=4, offered=30, longest_waiting_since=10.0))
    floor.replace(SourceSnapshot("c1", queues={"q1": QueueStats("c1", "q1", waiting=0)}))
    state = floor.queue("c1", "q1")
    assert (state.offered, state.longest_waiting_since) == (0, None)


def test_dropping_a_source_removes_its_rows(floor):
    floor.apply(QueueStats("c1", "q1", waiting=1))
    floor.apply(AgentStatus("c1", "a1", presence="available"))
    assert floor.drop_source("c1") == {("queue", "c1", "q1"), ("agent", "c1", "a1")}
    assert floor.queues == {} and floor.agents == {}


def test_service_level_is_a_share_of_the_interval(floor):
    floor.apply(QueueStats("c1", "q1", sl_numerator=8, sl_denominator=10))
    assert floor.queue("c1", "q1").service_level == pytest.approx(0.8)
    floor.apply(QueueStats("c1", "q2", waiting=0))
    assert floor.queue("c1", "q2").service_level is None


def test_it_refuses_what_is_not_an_event(floor):
    with pytest.raises(TypeError):
        floor.apply({"waiting": 3})
