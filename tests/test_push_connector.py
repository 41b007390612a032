"""The generic WebSocket push connector against the simulator's push feed (and a few frames by hand)."""

from __future__ import annotations

import json
import logging
from dataclasses import replace

import msgpack
import pytest

from streams.feeds.mapped import BadInputLog, sample_of
from streams.health import LinkHealth
from streams.link.liveness import Heartbeats, ProtocolPings
from streams.link.timing import Timing
from streams.vendors.push.connector import PushConnector
from streams.vendors.registry import connector_class
from streams.vendors.spec import ConnectionSpec
from streams.vendors.sse.connector import SseConnector
from tests.feed_util import CAMPAIGN_NAMES, campaign_names, converged, feed_streaming, live, records_flow
from tests.timing import eventually, scaled, scheduled_wait

FAST = Timing(
    heartbeat_period=scaled(1.0),
    dead_after=2.0,
    ping_interval=scaled(0.2),
    ping_timeout=scaled(0.5),
    open_timeout=scaled(5),
    rest_timeout=scaled(5),
    backoff_first=scaled(0.05),
    backoff_min=scaled(0.1),
    backoff_cap=scaled(0.3),
    healthy_after=scaled(2),
    auth_retry=scaled(60),
)


def streaming(**options):
    return feed_streaming("push", timing=FAST, **options)


# -- against the simulator ----------------------------------------------------------------


@pytest.mark.parametrize("feed_format", ["json", "msgpack", "mixed"])
async def test_it_converges_to_the_simulator_truth(feed_format):
    mapping = CAMPAIGN_NAMES if feed_format == "mixed" else None
    async with streaming(feed_format=feed_format, feed_health_every=scaled(0.1), mapping=mapping) as run:
        await live(run)
        await records_flow(run)  # interactions come and go on the live link
        await converged(run)
        assert run.expected(), "the test needs live interactions to compare"
        counters = run.health.counters
        assert run.health.reconnects == 0
        assert counters["malformed_json"] + counters["malformed_binary"] + counters["not_a_record"] == 0
        assert counters["unwatched"] > 0  # the feed sends every queue; the connector keeps the watched ones
        assert run.health.ping_p50 is not None  # RFC 6455 pings were answered
        if feed_format == "mixed":
            # JSON health checks in binary frames were decoded (and skipped as records of no interaction).
            assert counters["no_interaction"] > 0
            assert {row["campaign"] for row in run.actual().values()} <= campaign_names(run)


async def test_bad_frames_are_counted_and_the_link_kept(caplog):
    caplog.set_level(logging.WARNING, logger="streams.feeds.mapped")
    async with streaming(feed_format="mixed") as run:
        await live(run)
        run.control(fault="feed_malformed", feed="push", count=10)
        counters = run.health.counters
        kinds = ("malformed_json", "malformed_binary", "not_a_record")
        await eventually(lambda: sum(counters[k] for k in kinds) == 10, what="ten bad frames counted")
        assert all(counters[k] > 0 for k in kinds)
        assert run.health.reconnects == 0 and len(run.connections("push")) == 1
        warnings = [r for r in caplog.records if "dropped bad input" in r.getMessage()]
        assert len(warnings) == 1  # at most once a minute
        await converged(run)


async def test_oversized_frames_are_dropped_and_past_the_memory_cap_the_link_is_cut():
    limit = 64 * 1024
    async with streaming(spec_options={"max_frame_bytes": limit}) as run:
        await live(run)
        queue_id = sorted(run.watched())[0]
        assert run.connector.memory_cap() > 2 * limit
        run.control(fault="feed_oversized", feed="push", bytes=2 * limit, queue_id=queue_id)
        await eventually(lambda: run.health.counters["oversized_frame"] == 1, what="the oversized frame counted")
        assert run.health.reconnects == 0 and len(run.connections("push")) == 1
        run.control(fault="feed_oversized", feed="push", bytes=run.connector.memory_cap() + 1024, queue_id=queue_id)
        await eventually(lambda: len(run.connections("push")) == 2, what="a reconnect after the cap was passed")
        await live(run)
        assert run.health.counters["oversized_frame"] == 2
        await converged(run)
        assert not any(i.startswith("oversized") for i in run.floor.source_interaction_ids(run.source))


async def test_refused_credentials_are_an_auth_failure_without_a_retry_loop():
    async with streaming(secret="wrong") as run:
        await eventually(lambda: run.health.state == "auth_failed", what="auth_failed")
        # The next attempt waits for an admin (minutes), not the reconnect backoff.
        assert scheduled_wait(run.health) == FAST.auth_retry
        assert run.sim.feeds.counters.token_requests == 1
        assert run.sim.feeds.counters.push_connections == 0
        assert "wrong" not in repr(run.health.as_dict())
        assert f"retrying in {scaled(60):.0f} s" in run.health.detail


async def test_a_401_on_the_upgrade_gets_one_new_token():
    async with streaming() as run:
        await live(run)
        run.control(fault="revoke_tokens")
        run.control(fault="feed_drop", feed="push")
        await eventually(lambda: len(run.connections("push")) == 2, what="the reconnect")
        await live(run)
        counters = run.sim.feeds.counters
        assert counters.unauthorized == 1  # the cached token, refused on the upgrade
        assert counters.token_requests == 2
        first, second = run.connections("push")
        assert first["token"] != second["token"]
        assert "auth_failed" not in run.states


async def test_a_refused_upgrade_with_no_new_token_to_be_had_is_an_auth_failure():
    async with streaming() as run:
        await live(run)
        run.control(fault="revoke_tokens")
        run.control(fault="refuse_credentials")
        run.control(fault="feed_drop", feed="push")
        await eventually(lambda: run.health.state == "auth_failed", what="auth_failed")
        assert run.sim.feeds.counters.unauthorized == 1


async def test_an_unanswered_ping_fails_the_link_and_it_reconnects():
    async with streaming() as run:
        await live(run)
        run.control(fault="feed_stall", feed="push")
        await eventually(lambda: len(run.connections("push")) == 2, what="a reconnect after the stall")
        assert "ping unanswered" in run.health.last_error
        assert run.sim.feeds.counters.pings_ignored >= 1
        await live(run)
        await converged(run)


async def test_after_a_drop_it_reconnects_and_only_interactions_that_ended_meanwhile_may_linger():
    async with streaming(rate=8.0) as run:
        await live(run)
        await records_flow(run)
        run.control(fault="feed_drop", feed="push")
        await eventually(lambda: len(run.connections("push")) == 2, what="the reconnect")
        await live(run)
        await records_flow(run)
        run.sim.pause()

        def caught_up() -> bool:
            expected, actual = run.expected(), run.actual()
            # Everything live is there and right (the picture on connect restated it)...
            restated = {i: actual.get(i) for i in expected} == expected
            # ...and rows beyond it are interactions that ended while the link was down (left to the TTL).
            return restated and not (actual.keys() - expected.keys()) & run.sim.truth()["interactions"].keys()

        await eventually(caught_up, what="the Floor to hold every live interaction and no other live one")


async def test_queues_added_and_removed_take_effect_on_a_new_link():
    async with streaming(queues=4, watch=2) as run:
        await live(run)
        all_queues = sorted(run.sim.truth()["queues"])
        new = replace(run.connector.spec, queue_ids=tuple(all_queues[1:3]))
        run.connector.update(new)
        await eventually(lambda: run.connector.rollovers == 1, what="the make-before-break switch")
        await converged(run)
        assert run.watched() == set(all_queues[1:3])


# -- frames by hand ------------------------------------------------------------------------


def spec(kind: str = "push", backoff_cap: float | None = None, **settings) -> ConnectionSpec:
    return ConnectionSpec.of(kind, "feed1", queue_ids=("q1",), backoff_cap=backoff_cap, **settings)


def record(interaction_id="i1", queue_id="q1", **more) -> dict:
    return {"interaction_id": interaction_id, "queue_id": queue_id, "timestamp": 1_767_225_600_000, **more}


def test_frames_of_every_kind_are_mapped_or_counted():
    events = []
    connector = PushConnector(spec(), events.append)
    for frame in (
        json.dumps(record("i1", state="waiting")),
        msgpack.packb([record("i2"), record("i3", queue_id="elsewhere")]),
        json.dumps(record("i4", queue_id=None)).encode(),  # JSON in a binary frame; no queue: kept
        json.dumps({"type": "health.check"}).encode(),
        json.dumps({"interaction_id": {"an": "object"}}),
        "not json",
        b"\xc1",
        "5",
    ):
        connector.handle(None, frame)
    assert [e.interaction_id for e in events] == ["i1", "i2", "i4"]
    assert events[0].state == "waiting"
    assert dict(connector.health.counters) == {
        "unwatched": 1,
        "no_interaction": 1,
        "bad_record": 1,
        "malformed_json": 1,
        "malformed_binary": 1,
        "not_a_record": 1,
    }


def test_an_interaction_moving_to_an_unwatched_queue_leaves_the_board():
    events = []
    connector = PushConnector(spec(), events.append)
    connector.handle(None, json.dumps(record("i1", state="waiting")))
    connector.handle(None, json.dumps(record("i1", queue_id="elsewhere")))
    connector.handle(None, json.dumps(record("i1", queue_id="elsewhere")))
    assert [(e.interaction_id, e.ended) for e in events[1:]] == [("i1", True)]


def test_a_custom_mapping_reads_its_own_paths():
    mapping = {"interaction_id": "data.key", "queue_id": "data.queue.id", "states": {"ACW": "wrapup"}}
    events = []
    connector = PushConnector(spec(field_mapping=mapping), events.append)
    connector.handle(None, json.dumps({"data": {"key": "k1", "queue": {"id": "q1"}}, "state": "ACW"}))
    assert [(e.interaction_id, e.queue_id, e.state) for e in events] == [("k1", "q1", "wrapup")]


def test_bad_input_is_logged_at_most_once_a_minute_with_a_sample_free_of_secrets(caplog):
    now = [0.0]
    health = LinkHealth()
    bad = BadInputLog("feed", health, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING):
        for _ in range(5):
            bad.note("malformed_json", 'Authorization: Bearer abc.def.ghi {"token": "s3cret"}')
        now[0] = 61.0
        bad.note("malformed_binary", b"\x00" * 100)
    assert health.counters == {"malformed_json": 5, "malformed_binary": 1}
    assert bad.warnings == 2
    text = caplog.text
    assert "abc.def.ghi" not in text and "s3cret" not in text
    assert "4 malformed_json" in text  # the second warning counts what the first one did not show
    assert sample_of(b"\x01" * 100).startswith("100 bytes: 01 01")


# -- defaults ------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "cap"), [("push", 30.0), ("sse", 5.0)])
def test_the_backoff_is_jittered_and_capped_by_kind_unless_the_admin_says_otherwise(kind, cap):
    connector = connector_class(kind)(spec(kind=kind), lambda e: None)
    assert connector.timing.backoff_cap == cap
    delays = [connector.backoff.next_delay() for _ in range(60)]
    assert delays[0] <= connector.timing.backoff_first  # the first delay is random, and short
    assert max(delays) <= cap and len(set(delays)) > 30  # capped, and jittered
    admin = connector_class(kind)(spec(kind=kind, backoff_cap=2.0), lambda e: None)
    assert max(admin.backoff.next_delay() for _ in range(60)) <= 2.0


def test_the_default_timings_follow_the_vendor_page():
    push = PushConnector.default_timing
    assert isinstance(PushConnector.liveness, ProtocolPings) and (push.ping_interval, push.ping_timeout) == (20.0, 20.0)
    assert push.healthy_after == 60.0
    sse = SseConnector(spec(kind="sse", keepalive_seconds=7.0), lambda e: None)
    assert isinstance(sse.liveness, Heartbeats) and (sse.timing.heartbeat_period, sse.timing.dead_after) == (7.0, 2.0)
