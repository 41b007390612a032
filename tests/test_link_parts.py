"""The link supervisor's parts on their own: failure classification, links, resync buffering, rollovers, polling."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from streams.health import LinkHealth
from streams.link.failures import (
    AuthFailed,
    LinkLost,
    UpstreamError,
    Verdict,
    classify,
    honour_retry_after,
    refused,
)
from streams.link.polling import Poller
from streams.link.resync import MAX_BUFFERED, Resyncs
from streams.link.rollover import Rollovers
from streams.link.sockets import Link, Socket
from streams.link.timing import Timing
from streams.oauth import TokenUnavailable
from streams.vendors.cxone.rest import CxoneError
from tests.timing import eventually


class Status(Exception):
    """Another library's error that carries an HTTP status."""

    def __init__(self, status: int) -> None:
        super().__init__(f"answered {status}")
        self.status = status


@pytest.mark.parametrize(
    ("exc", "verdict"),
    [
        (AuthFailed("refused"), Verdict.WAIT_FOR_CREDENTIALS),
        (Status(401), Verdict.WAIT_FOR_CREDENTIALS),
        (UpstreamError("forbidden", 403), Verdict.WAIT_FOR_CREDENTIALS),
        (LinkLost("closed"), Verdict.RETRY),
        (TokenUnavailable("503", retry_after=4), Verdict.RETRY),
        (CxoneError("throttled", 429), Verdict.RETRY),
        (aiohttp.ClientConnectionError(), Verdict.RETRY),
        (TimeoutError(), Verdict.RETRY),
        (ConnectionResetError(), Verdict.RETRY),
        (ValueError("a bug"), Verdict.FATAL),
        (Status(500), Verdict.FATAL),  # a status alone says nothing of retrying: only refusals are read from it
    ],
)
def test_one_classifier_says_retry_wait_for_credentials_or_fatal(exc, verdict):
    assert classify(exc) is verdict


def test_a_token_endpoint_refuses_with_400_too_and_retry_after_stretches_a_wait_up_to_its_cap():
    assert refused(400, grant=True) and not refused(400) and refused(403) and not refused(429, grant=True)
    assert honour_retry_after(UpstreamError("x", 429, retry_after=10), 2.0, cap=180) == 10
    assert honour_retry_after(UpstreamError("x", 429, retry_after=999), 2.0, cap=180) == 180
    assert honour_retry_after(UpstreamError("x", 429, retry_after=1), 2.0, cap=180) == 2.0
    assert honour_retry_after(ValueError("no wait in it"), 2.0, cap=180) == 2.0


async def test_a_link_fails_once_wakes_its_supervisor_and_says_why_through_its_newest_successor():
    woken = []
    link = Link(on_failure=lambda: woken.append(1))
    assert link.failure() is None
    successor = Link()
    link.successor = successor
    assert link.latest() is successor
    successor.fail("refused", auth=True)
    successor.fail("later reason")
    assert isinstance(link.latest().failure(), AuthFailed) and str(successor.failure()) == "refused"
    link.fail("socket closed")
    link.fail("again")
    assert woken == [1] and isinstance(link.failure(), LinkLost)
    # The supervisor's own failure (a step raised) wins over whatever the link said.
    step_failed = AuthFailed("maintenance was refused")
    link.end(step_failed)
    assert link.failure() is step_failed


def resyncs(delivered: list, health: LinkHealth | None = None) -> Resyncs:
    return Resyncs(
        "test",
        timing=Timing(backoff_first=0.0),
        health=health or LinkHealth(),
        deliver=delivered.append,
        set_state=lambda *args: None,
        wake=lambda: None,
    )


async def test_events_during_a_snapshot_are_held_and_delivered_after_it_past_the_cap_dropped_and_resynced():
    delivered: list = []
    health = LinkHealth()
    parts = resyncs(delivered, health)

    async def snapshot():
        for n in range(MAX_BUFFERED + 2):
            parts.hold_or_deliver(n)
        assert parts.holding and len(parts.buffered()) == MAX_BUFFERED
        return "snapshot"

    assert await parts.take(snapshot, "test")
    assert delivered[0] == "snapshot" and delivered[1:] == list(range(MAX_BUFFERED))
    assert not parts.holding and health.counters["buffer_overflow"] == 2
    assert parts.due(time.time()) == "events overflowed during the snapshot"


async def test_a_failed_snapshot_releases_the_held_events_and_comes_due_again_after_its_backoff():
    delivered: list = []
    parts = resyncs(delivered)

    async def failing():
        parts.hold_or_deliver("event")
        raise UpstreamError("answered 503", 503, retry_after=0.01)

    assert not await parts.take(failing, "test")
    assert delivered == ["event"] and parts.taken == 0
    assert parts.due(time.time()) is None
    assert parts.due(time.time() + 60) == "retrying the snapshot"


def test_a_channel_rolls_over_a_margin_before_it_expires_but_never_in_its_first_half():
    plan = Rollovers(Timing(rollover_margin=600))
    now = time.time()
    long_lived = Socket(None, name="a", expires_at=now + 86_400)
    short_lived = Socket(None, name="b", expires_at=now + 60)
    assert plan.expiry_due(Link(sockets=[long_lived])) == pytest.approx(now + 86_400 - 600, abs=1)
    assert plan.expiry_due(Link(sockets=[long_lived, short_lived])) == pytest.approx(now + 30, abs=1)
    assert plan.due(Link(sockets=[short_lived]), now) is None
    assert plan.due(Link(sockets=[short_lived]), now + 31) == "channel expires soon"
    plan.failed("test")
    assert plan.due(None, time.time()) is None and plan.deadline(None) == plan.retry_at
    assert plan.due(None, plan.retry_at) == "test"


async def test_work_in_a_pollers_turn_waits_for_the_poll_in_flight_to_be_handled():
    order: list[str] = []
    ready, release = asyncio.Event(), asyncio.Event()

    async def step():
        order.append("poll")
        await release.wait()
        return "result", 60.0

    poller = Poller(step, ready)

    async def reader():
        async for frame in poller:
            order.append(f"handled {frame}")

    async def snapshot():
        order.append("snapshot")
        return "done"

    reading = asyncio.create_task(reader())
    ready.set()
    await eventually(lambda: order == ["poll"], what="the poll to begin")
    turn = asyncio.create_task(poller.in_turn(snapshot))
    await eventually(lambda: poller.turns_waiting == 1, what="the snapshot to wait for its turn")
    release.set()
    assert await turn == "done"
    assert order == ["poll", "handled result", "snapshot"]
    await poller.close()
    await asyncio.wait_for(reading, 1)
    assert poller.close_code == 1000


@pytest.mark.parametrize(
    ("raised", "ends_as"),
    [(AuthFailed("refused"), AuthFailed), (Status(403), AuthFailed), (KeyError("bug"), LinkLost)],
)
async def test_a_poll_step_ends_the_link_only_as_an_auth_failure_or_a_lost_link(raised, ends_as):
    ready = asyncio.Event()
    ready.set()

    async def step():
        raise raised

    with pytest.raises(ends_as):
        async for _ in Poller(step, ready):
            pass
