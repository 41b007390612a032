"""The webhook connector: records and EventBridge envelopes from the hook queue onto the Floor."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from simulator.genesys import payloads
from simulator.model import ContactCentreModel, ModelConfig
from simulator.webhooks import eventbridge_envelope
from streams.floor import Floor
from streams.health import LinkHealth
from streams.hooks.memory_queue import MemoryHookQueue
from streams.hooks.queue import HookItem
from streams.hooks.redis_queue import RedisHookQueue
from streams.link.failures import LinkLost
from streams.link.liveness import SelfReported
from streams.link.timing import Timing
from streams.vendors.registry import connector_class
from streams.vendors.spec import ConnectionSpec
from streams.vendors.webhook.connector import WebhookConnector
from tests.processes import free_port
from tests.timing import eventually

FAST = Timing(backoff_first=0.01, backoff_min=0.02, backoff_cap=0.1, healthy_after=1.0)


def spec(queue_ids, mapping: dict | None = None) -> ConnectionSpec:
    return ConnectionSpec.of("webhook", queue_ids=tuple(queue_ids), field_mapping=mapping or {}, slug="crm")


def connector(queue_ids, floor: Floor, **options) -> WebhookConnector:
    return WebhookConnector(spec(queue_ids, options.pop("mapping", None)), floor.apply, timing=FAST, **options)


def feed(conn: WebhookConnector, *items) -> None:
    """Hand the connector one queued delivery of ITEMS, as its reader would."""
    conn.handle(None, json.dumps(list(items)).encode())


def record(n: int, interaction: str, queue: str = "q1", **fields) -> dict:
    base = {"id": f"r{n}", "type": "interaction.updated", "timestamp": 1_767_225_600_000 + n, "state": "waiting"}
    return base | {"interaction_id": interaction, "queue_id": queue} | fields


def test_the_registry_knows_the_webhook_kind():
    cls = connector_class("webhook")
    assert cls is WebhookConnector
    assert isinstance(cls.liveness, SelfReported)


# -- records -------------------------------------------------------------------------------------


def test_records_upsert_by_interaction_and_a_terminal_type_ends_the_row():
    floor = Floor()
    conn = connector(["q1"], floor)
    feed(conn, record(1, "i1", payload={"media": "voice"}), record(2, "i2"))
    feed(conn, record(3, "i1", state="connected", agent_id="a1"))
    row = floor.interaction("c1", "i1")
    assert (row.state, row.agent_id, row.media, row.queue_id) == ("connected", "a1", "voice", "q1")
    feed(conn, record(4, "i1", type="interaction.ended"))
    assert floor.source_interaction_ids("c1") == {"i2"}


def test_records_of_unwatched_queues_are_dropped_and_counted_and_a_move_there_ends_the_row():
    floor = Floor()
    conn = connector(["q1"], floor)
    feed(conn, record(1, "i1", queue="q9"), record(2, "i2"))
    assert floor.source_interaction_ids("c1") == {"i2"}
    assert conn.health.counters["unwatched"] == 1
    feed(conn, record(3, "i2", queue="q9"))  # transferred to a queue nobody here watches
    assert floor.source_interaction_ids("c1") == set()
    assert conn.health.counters["unwatched"] == 2


def test_stale_and_unusable_records_are_counted_never_fatal():
    floor = Floor()
    conn = connector(["q1"], floor)
    feed(conn, record(5, "i1", state="connected"), record(4, "i1", state="waiting"), "text", {"id": "x", "state": [1]})
    assert floor.interaction("c1", "i1").state == "connected"
    assert conn.health.counters["stale"] == 1
    assert conn.health.counters["bad_record"] + conn.health.counters["no_interaction"] == 2
    conn.handle(None, b"{not json")
    conn.handle(None, b'{"an": "object"}')
    assert conn.health.counters["malformed"] == 2
    assert conn.items == 4


def test_the_mapping_of_the_connection_is_used():
    floor = Floor()
    conn = connector(["Q-A"], floor, mapping={"queue_id": "payload.queue.id", "campaign": "payload.campaign_name"})
    feed(conn, record(1, "i1", queue=None, payload={"queue": {"id": "Q-A"}, "campaign_name": "Renewals"}))
    assert floor.interaction("c1", "i1").campaign == "Renewals"


# -- EventBridge -----------------------------------------------------------------------------------


@pytest.fixture
def model() -> ContactCentreModel:
    """A small contact centre with contacts waiting, ringing and talking."""
    start = time.time()
    model = ContactCentreModel(ModelConfig(queues=3, agents=8, rate=0.0, seed=3), start=start)
    for queue_id in list(model.queues)[:2]:
        for _ in range(4):
            model.arrive(queue_id)
    model.step(start + 5)
    return model


def notifications(model: ContactCentreModel, now: float) -> list[dict]:
    """Return envelopes stating every queue's figures and every agent's activity, as EventBridge delivers them."""
    envelopes = []
    for queue in model.queues.values():
        topic = f"v2.analytics.queues.{queue.id}.observations"
        for body in [*payloads.instant_observation_bodies(model, queue), payloads.interval_body(queue)]:
            envelopes.append(eventbridge_envelope(topic, body, now))
    for agent in model.agents.values():
        envelopes.append(eventbridge_envelope(f"v2.users.{agent.id}.activity", payloads.activity_body(agent), now))
    return envelopes


def test_envelopes_are_parsed_as_genesys_socket_messages_onto_the_floor(model):
    floor = Floor()
    watched = sorted(model.queues)[:2]
    conn = connector(watched, floor)
    feed(conn, *notifications(model, time.time()))
    truth = model.truth()
    for queue_id in watched:
        expected = {k: v for k, v in truth["queues"][queue_id].items() if k != "name"}  # names come from REST only
        actual = {k: v for k, v in floor.queue("c1", queue_id).as_dict().items() if k in expected}
        assert actual == expected
    assert floor.source_queue_ids("c1") == set(watched)
    in_watched = {a for a, t in truth["agents"].items() if set(t["queue_ids"]) & set(watched)}
    assert floor.source_agent_ids("c1") == in_watched
    for agent_id in in_watched:
        agent, want = floor.agent("c1", agent_id), truth["agents"][agent_id]
        assert (agent.presence, agent.routing_status) == (want["presence"], want["routing_status"])
        assert (agent.presence_since, agent.routing_since) == (want["presence_since"], want["routing_since"])
        assert agent.queue_ids == set(want["queue_ids"]) & set(watched)
    counted = conn.health.counters["unwatched"]
    assert counted == 3 + (len(truth["agents"]) - len(in_watched))  # the third queue's groups, the other agents


def test_membership_notifications_decide_which_agents_are_watched(model):
    floor = Floor()
    watched, other = sorted(model.queues)[:1], sorted(model.queues)[2]
    conn = connector(watched, floor)
    outsider = next(a for a in model.agents.values() if watched[0] not in a.queue_ids)
    now = time.time()
    feed(conn, eventbridge_envelope(f"v2.users.{outsider.id}.presence", payloads.presence_body(outsider), now))
    assert floor.agent("c1", outsider.id) is None  # not known to be in a watched queue
    join = payloads.membership_body(watched[0], outsider.id, True)
    feed(conn, eventbridge_envelope(f"v2.routing.queues.{watched[0]}.users", join, now))
    feed(conn, eventbridge_envelope(f"v2.users.{outsider.id}.presence", payloads.presence_body(outsider), now))
    agent = floor.agent("c1", outsider.id)
    assert agent.queue_ids == {watched[0]} and agent.presence == outsider.presence
    # Left every watched queue (its activity says so): the row keeps no watched queue, later news is dropped.
    body = payloads.activity_body(outsider) | {"activeQueueIds": [other]}
    feed(conn, eventbridge_envelope(f"v2.users.{outsider.id}.activity", body, now))
    assert floor.agent("c1", outsider.id).queue_ids == frozenset()
    before = conn.health.counters["unwatched"]
    feed(conn, eventbridge_envelope(f"v2.users.{outsider.id}.presence", payloads.presence_body(outsider), now))
    assert conn.health.counters["unwatched"] == before + 1


def test_an_older_notification_on_a_topic_is_dropped_as_stale(model):
    floor = Floor()
    queue = next(iter(model.queues.values()))
    conn = connector([queue.id], floor)
    topic = f"v2.analytics.queues.{queue.id}.observations"
    now = time.time()
    body = payloads.instant_observation_bodies(model, queue)[0]
    newer = json.loads(json.dumps(body))
    newer["data"][0]["metrics"][0]["stats"]["count"] = 7  # oWaiting
    feed(conn, eventbridge_envelope(topic, newer, now), eventbridge_envelope(topic, body, now - 2))
    assert floor.queue("c1", queue.id).waiting == 7
    assert conn.health.counters["stale"] == 1


def test_odd_envelopes_are_counted_and_skipped(model):
    floor = Floor()
    conn = connector(list(model.queues), floor)
    now = time.time()
    feed(
        conn,
        {"detail-type": "x", "detail": "not an object"},
        eventbridge_envelope("v2.analytics.queues.q.observations", {"data": "oops"}, now),
        eventbridge_envelope("v2.something.else", {"a": 1}, now),
        eventbridge_envelope("channel.metadata", {"message": "WebSocket Heartbeat"}, now),
        record(1, "i1", queue=next(iter(model.queues))),
    )
    counters = conn.health.counters
    assert (counters["malformed"], counters["unknown_topic"], counters["metadata"]) == (2, 1, 1)
    assert floor.source_interaction_ids("c1") == {"i1"}  # the record after them still applied


# -- the loop -------------------------------------------------------------------------------------


async def test_it_streams_from_the_queue_and_is_live_while_reading():
    floor = Floor()
    queue = MemoryHookQueue()
    await queue.offer("c1", [HookItem(json.dumps(record(1, "i1")), "r1")])
    conn = connector(["q1"], floor, queue=queue, health=LinkHealth())
    task = asyncio.create_task(conn.run())
    try:
        await eventually(lambda: floor.interaction("c1", "i1") is not None, what="the queued record")
        assert conn.health.is_live()
        await queue.offer("c1", [HookItem(json.dumps(record(2, "i2")), "r2")])
        await eventually(lambda: floor.interaction("c1", "i2") is not None, what="a record queued while live")
        assert conn.snapshots == 0 and queue.backlog_of("c1") <= 1
    finally:
        await conn.close()
        await asyncio.gather(task, return_exceptions=True)
    assert queue.backlog_of("c1") == 0  # everything handled was acknowledged on close


class FailingOnce(MemoryHookQueue):
    """A queue whose first reader fails, as Redis going away would make it."""

    def __init__(self) -> None:
        super().__init__()
        self.readers = 0

    def reader(self, source, consumer):
        self.readers += 1
        if self.readers == 1:
            return Broken()
        return super().reader(source, consumer)


class Broken:
    close_code = None
    close_reason = None

    def __aiter__(self):
        return self

    async def open(self) -> None:
        return None

    async def __anext__(self):
        raise LinkLost("hook queue unreachable (ConnectionError)")

    async def close(self) -> None:
        return None


async def test_a_queue_failure_fails_the_link_and_the_loop_reconnects():
    floor = Floor()
    queue = FailingOnce()
    states: list[str] = []
    health = LinkHealth()
    health.on_change = lambda h: states.append(h.state)
    conn = connector(["q1"], floor, queue=queue, health=health)
    task = asyncio.create_task(conn.run())
    try:
        await eventually(lambda: queue.readers == 2 and conn.health.is_live(), what="the second reader")
        assert "reconnecting" in states
        assert "hook queue unreachable" in conn.health.last_error
        await queue.offer("c1", [HookItem(json.dumps(record(1, "i1")), "r1")])
        await eventually(lambda: floor.interaction("c1", "i1") is not None, what="records after the reconnect")
    finally:
        await conn.close()
        await asyncio.gather(task, return_exceptions=True)


async def test_an_unreachable_queue_never_counts_as_live():
    states: list[str] = []
    health = LinkHealth()
    health.on_change = lambda h: states.append(h.state)
    queue = RedisHookQueue(f"redis://127.0.0.1:{free_port()}/0", prefix="unreachable")
    conn = connector(["q1"], Floor(), queue=queue, health=health)
    task = asyncio.create_task(conn.run())
    try:
        await eventually(lambda: conn.health.reconnects >= 2, what="a few attempts")
        assert "live" not in states
        assert "hook queue unreachable" in conn.health.last_error
    finally:
        await conn.close()
        await asyncio.gather(task, return_exceptions=True)
        await queue.close()
