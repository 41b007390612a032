"""A feed's records are where its agents get their names: agent rows learn them, once per change."""

from __future__ import annotations

from streams.events import AgentStatus, InteractionUpdate, QueueMembership
from streams.floor import Floor
from streams.vendors.push.connector import PushConnector
from streams.vendors.spec import ConnectionSpec

SPEC = ConnectionSpec.of("push", "c7", queue_ids=("q1",), stream_url="ws://127.0.0.1:9/feed")


def record(ident: str, agent: str | None, name: str | None, **extra) -> dict:
    payload = {"agent_name": name} if name is not None else {}
    return {
        "interaction_id": ident,
        "queue_id": "q1",
        "agent_id": agent,
        "state": "connected",
        "payload": payload,
        **extra,
    }


def test_agent_names_from_records_reach_the_floor_once_per_change():
    floor = Floor()
    events: list = []

    def sink(event) -> None:
        events.append(event)
        floor.apply(event)

    feed = PushConnector(SPEC, sink)
    # An agent known from elsewhere (EventBridge activity: a membership, no name).
    floor.apply(QueueMembership(source="c7", queue_id="q1", agent_id="a1", joined=True))
    feed.take_records([record("i1", "a1", "Ada Lovelace"), record("i2", "a1", "Ada Lovelace")])
    names = [e for e in events if isinstance(e, AgentStatus)]
    assert names == [AgentStatus(source="c7", agent_id="a1", name="Ada Lovelace")]
    assert floor.agent("c7", "a1").name == "Ada Lovelace"
    assert floor.agent("c7", "a1").queue_ids == frozenset({"q1"})  # the name changed nothing else
    feed.take_records([record("i3", "a1", "Ada King")])
    assert floor.agent("c7", "a1").name == "Ada King"
    # No agent id, no name, or a record of an unwatched queue: nothing is learnt.
    events.clear()
    feed.take_records([record("i4", None, "Nobody"), record("i5", "a2", None), record("i6", "a3", "X", queue_id="q9")])
    assert not [e for e in events if isinstance(e, AgentStatus)]
    assert all(isinstance(e, InteractionUpdate) for e in events)
