"""The generic SSE connector against the simulator's event stream."""

from __future__ import annotations

import asyncio
import math
from dataclasses import replace

import pytest

from streams.link.timing import Timing
from streams.vendors.sse.connector import RECORD_EVENTS
from tests.feed_util import CAMPAIGN_NAMES, campaign_names, converged, feed_streaming, live, records_flow
from tests.timing import eventually, scaled, scheduled_wait

FAST = Timing(
    heartbeat_period=scaled(0.5),  # the simulator sends a keepalive comment every 0.2 s when quiet
    dead_after=2.0,
    open_timeout=scaled(5),
    rest_timeout=scaled(5),
    backoff_first=scaled(0.05),
    backoff_min=scaled(0.1),
    backoff_cap=scaled(0.3),
    healthy_after=scaled(2),
    auth_retry=scaled(60),
)


def streaming(**options):
    options = {"feed_keepalive": scaled(0.2), "feed_retry_ms": 20} | options
    return feed_streaming("sse", timing=FAST, **options)


def handled_ids(run) -> list[str]:
    """Record the last event id of every record event the connector handles, in order."""
    seen: list[str] = []
    handle = run.connector.handle

    def recording(socket, event):
        handle(socket, event)
        if event.type in RECORD_EVENTS and event.data and event.last_event_id:
            seen.append(event.last_event_id)

    run.connector.handle = recording
    return seen


@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
async def test_it_converges_filtering_at_the_source(line_end):
    async with streaming(feed_line_end=line_end, mapping=CAMPAIGN_NAMES) as run:
        await live(run)
        await records_flow(run)  # interactions come and go on the live stream
        await converged(run)
        assert run.expected()
        (connection,) = run.connections("sse")
        assert connection["queues"] == sorted(run.watched())
        assert connection["last_event_id"] is None and connection["replayed"] is None  # a picture
        assert run.health.counters["unwatched"] == 0  # the server sent the watched queues only
        assert {row["campaign"] for row in run.actual().values()} <= campaign_names(run)


async def test_bad_and_oversized_events_are_counted_and_the_stream_kept():
    limit = 64 * 1024
    async with streaming(spec_options={"max_frame_bytes": limit}) as run:
        await live(run)
        run.control(fault="feed_malformed", feed="sse", count=5)
        run.control(fault="feed_oversized", feed="sse", bytes=4 * limit, queue_id=sorted(run.watched())[0])
        counters = run.health.counters
        await eventually(lambda: counters["malformed_json"] + counters["not_a_record"] == 5, what="bad events counted")
        await eventually(lambda: counters["oversized_frame"] == 1, what="the oversized event counted")
        assert run.health.reconnects == 0 and len(run.connections("sse")) == 1
        await converged(run)
        assert not any(i.startswith("oversized") for i in run.floor.source_interaction_ids(run.source))


async def test_keepalive_comments_keep_a_quiet_stream_up_and_silence_ends_it():
    async with streaming(rate=0, prefill=0) as run:
        await live(run)
        await asyncio.sleep(scaled(1.5))  # three heartbeat periods with nothing but keepalives
        assert run.health.reconnects == 0 and run.health.is_live()
        run.control(fault="feed_stall", feed="sse")
        await eventually(lambda: len(run.connections("sse")) == 2, what="a reconnect after the silence")
        assert "no heartbeat" in run.health.last_error


@pytest.mark.parametrize("asked_ms", [800, None])
async def test_a_reconnect_event_is_obeyed(asked_ms):
    # Without retryAfterMs the stream's retry: time (700 ms here) is the least wait.
    async with streaming(feed_retry_ms=700) as run:
        await live(run)
        run.control(fault="feed_reconnect", retry_after_ms=asked_ms)
        await eventually(lambda: len(run.connections("sse")) == 2, what="the reconnect")
        (sent,) = run.sim.feeds.control_sent
        gap = run.connections("sse")[1]["at"] - sent["at"]
        wanted = (asked_ms or 700) / 1000
        assert wanted <= gap < wanted + scaled(1.0)
        assert "asked to reconnect" in run.health.last_error
        await live(run)


@pytest.mark.parametrize("asked", [math.nan, math.inf, -5.0], ids=["NaN", "Infinity", "negative"])
async def test_a_reconnect_event_asking_for_no_sane_wait_waits_the_retry_time(asked):
    async with streaming(feed_retry_ms=700) as run:
        await live(run)
        # Sent as the JSON text NaN / Infinity, which Python's json module (the connector's too) reads.
        run.sim.feeds.control_event("reconnect", {"retryAfterMs": asked})
        await eventually(lambda: len(run.connections("sse")) == 2, what="the reconnect")
        (sent,) = run.sim.feeds.control_sent
        gap = run.connections("sse")[1]["at"] - sent["at"]
        assert 0.7 <= gap < 0.7 + scaled(1.0)
        asked_events = [e for e in run.health.events if e["kind"] == "backoff_scheduled" and "asked" in e["detail"]]
        assert [e["data"]["delay"] for e in asked_events] == [0.7]
        await live(run)


async def test_a_busy_server_turning_a_new_stream_away_is_obeyed_too():
    # The reconnect event arrives with the response, before the new stream is the connector's current one.
    async with streaming(feed_retry_ms=100) as run:
        await live(run)
        run.control(fault="feed_busy", retry_after_ms=900)
        run.control(fault="feed_drop")
        await eventually(lambda: len(run.connections("sse")) == 3, what="a turned-away stream and a retry")
        turned_away, retried = run.connections("sse")[1:3]
        assert turned_away.get("turned_away") is True
        gap = retried["at"] - turned_away["at"]
        assert 0.9 <= gap < 0.9 + scaled(1.0)
        await live(run)


async def test_a_reconnect_resumes_after_the_last_event_id_with_no_gap_and_no_duplicate():
    async with streaming(rate=10.0) as run:
        seen = handled_ids(run)
        await live(run)
        await eventually(lambda: len(seen) >= 3, what="a few live records")
        run.control(fault="feed_drop", feed="sse")
        await eventually(lambda: len(run.connections("sse")) == 2, what="the reconnect")
        resumed_at = len(seen)
        await eventually(lambda: len(seen) >= resumed_at + 3, what="a few records on the resumed stream")
        await converged(run)
        first, second = run.connections("sse")
        assert second["last_event_id"] is not None and second["replayed"] is not None  # resumed, not a picture
        watched = run.watched()
        expected = [
            str(n) for n, record in run.sim.records.recent if n > first["seq"] and record["queue_id"] in watched
        ]
        # A record that changed nothing on the board may trail the convergence: wait for the count, then compare.
        await eventually(lambda: len(seen) >= len(expected), what="every record handled")
        assert seen == expected


async def test_an_error_event_with_401_gets_a_new_token_before_reconnecting():
    async with streaming() as run:
        await live(run)
        run.control(fault="feed_error", status=401, message="token expired")
        await eventually(lambda: len(run.connections("sse")) == 2, what="the reconnect")
        first, second = run.connections("sse")
        assert first["token"] != second["token"]
        counters = run.sim.feeds.counters
        assert (counters.token_requests, counters.unauthorized) == (2, 0)  # the old token was never tried again
        assert "401" in run.health.last_error
        await live(run)


async def test_a_second_401_error_event_soon_after_the_first_is_an_auth_failure():
    async with streaming() as run:
        await live(run)
        run.control(fault="feed_error", status=401)
        await eventually(lambda: len(run.connections("sse")) == 2, what="the reconnect")
        await live(run)
        run.control(fault="feed_error", status=401)
        await eventually(lambda: run.health.state == "auth_failed", what="auth_failed")
        # The next attempt waits for an admin (minutes), not the reconnect backoff.
        assert scheduled_wait(run.health) == FAST.auth_retry
        assert run.sim.feeds.counters.token_requests == 2 and len(run.connections("sse")) == 2


async def test_an_error_event_with_another_status_reconnects_with_the_same_token():
    async with streaming() as run:
        await live(run)
        run.control(fault="feed_error", status=503)
        await eventually(lambda: len(run.connections("sse")) == 2, what="the reconnect")
        first, second = run.connections("sse")
        assert first["token"] == second["token"] and run.sim.feeds.counters.token_requests == 1
        await live(run)
        await converged(run)


async def test_refused_credentials_are_an_auth_failure():
    async with streaming(secret="wrong") as run:
        await eventually(lambda: run.health.state == "auth_failed", what="auth_failed")
        assert scheduled_wait(run.health) == FAST.auth_retry
        assert run.sim.feeds.counters.token_requests == 1 and not run.connections("sse")


async def test_reconnect_delays_stay_under_the_cap_while_the_feed_is_unreachable():
    async with streaming() as run:
        await live(run)
        run.control(fault="unreachable")
        delays = lambda: [e["data"]["delay"] for e in run.health.events if e["kind"] == "backoff_scheduled"]  # noqa: E731
        await eventually(lambda: len(delays()) >= 6, what="six reconnect attempts")
        assert max(delays()) <= FAST.backoff_cap
        assert delays()[0] <= FAST.backoff_first
        run.control(fault="clear")
        await live(run)


async def test_changed_queues_open_a_new_filtered_stream_from_a_fresh_picture():
    async with streaming(queues=4, watch=2) as run:
        await live(run)
        all_queues = sorted(run.sim.truth()["queues"])
        run.connector.update(replace(run.connector.spec, queue_ids=tuple(all_queues[1:3])))
        await eventually(lambda: run.connector.rollovers == 1, what="the make-before-break switch")
        await converged(run)
        second = run.connections("sse")[-1]
        assert second["queues"] == all_queues[1:3] and second["last_event_id"] is None
