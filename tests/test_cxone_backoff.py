"""The CXone poller under throttling and outages: Retry-After, the circuit breaker, and no forced resync."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from streams.retry_after import parse_retry_after as seconds
from streams.vendors.cxone.poller import Breaker
from tests.cxone_util import FAST, converged, live, stamp_calls, streaming
from tests.timing import FakeClock, eventually, scaled

# -- the breaker on its own, on a fake clock ------------------------------------------------------


def test_the_breaker_opens_after_failures_in_a_row_and_cools_off_longer_each_time():
    clock = FakeClock()
    breaker = Breaker(threshold=3, cooling=20.0, factor=2.0, cap=50.0, clock=clock)
    assert breaker.failure(None, 1.5) == (1.5, False)
    assert breaker.failure(4.0, 1.5) == (4.0, False)  # Retry-After stretches the backoff
    assert breaker.failure(None, 1.5) == (20.0, True)
    assert breaker.state == "open" and breaker.wait() == 20.0
    clock.now += 20.0
    assert breaker.state == "half_open" and breaker.wait() == 0.0
    assert breaker.failure(None, 1.5) == (40.0, True)  # the probe failed: longer
    clock.now += 40.0
    assert breaker.failure(None, 1.5) == (50.0, True)  # capped
    clock.now += 50.0
    assert breaker.failure(90.0, 1.5) == (90.0, True)  # but never shorter than the server asked
    assert breaker.opened == 4
    breaker.success()
    assert breaker.state == "closed" and breaker.failure(None, 1.5) == (1.5, False)


def test_a_success_below_the_threshold_starts_the_count_over():
    breaker = Breaker(threshold=3, cooling=20.0, clock=FakeClock())
    breaker.failure(None, 1.0)
    breaker.failure(None, 1.0)
    breaker.success()
    assert breaker.failure(None, 1.0) == (1.0, False)
    assert breaker.failure(None, 1.0) == (1.0, False)


# -- Retry-After: seconds or an HTTP date ---------------------------------------------------------

NOW = 1445412480.0  # Wed, 21 Oct 2015 07:28:00 GMT


@pytest.mark.parametrize(
    ("header", "wait"),
    [
        ("7", 7.0),
        (" 2.5 ", 2.5),
        ("-3", 0.0),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
        ("Wednesday, 21-Oct-15 07:29:00 GMT", 60.0),  # RFC 850, which HTTP still accepts
        ("Wed Oct 21 07:28:10 2015", 10.0),  # asctime
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),  # already past: never negative
        ("soon", None),
        ("nan", None),
        ("inf", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_is_read_as_seconds_or_as_an_http_date(header, wait):
    assert seconds(header, now=NOW) == wait


# -- against the simulator ------------------------------------------------------------------------


async def next_request_after_fault(served: list[tuple[str, float]]) -> float:
    """Return the seconds between the fault being served and the next CXone call, as the simulator served them.

    SERVED is what ``stamp_calls`` returned: the simulator's own times, so a test that looks late under load
    measures the same gap.
    """

    def after_fault() -> list[float]:
        faults = [at for kind, at in served if kind == "faulted"]
        return [at for kind, at in served if kind == "requests" and faults and at > faults[0]]

    await eventually(after_fault, what="the fault, and the next call after it")
    fault = next(at for kind, at in served if kind == "faulted")
    return after_fault()[0] - fault


async def test_a_429_is_waited_out_as_retry_after_says_without_a_resync():
    async with streaming() as run:
        await live(run)
        served = stamp_calls(run.sim)
        run.control(fault="cxone_rest_error", status=429, retry_after=1, count=1)
        gap = await next_request_after_fault(served)
        assert gap >= 0.95, gap  # the server asked for a second; the poll period is 0.2 s
        assert any(
            state == "degraded" and detail.startswith("CXone is throttling; next try in")
            for state, detail in run.states
        )
        await live(run)
        assert run.connector.health.counters["throttled"] == 1
        assert run.connector.snapshots == 1 and run.connector.health.reconnects == 0
        await converged(run)


async def test_a_retry_after_date_is_waited_out_too():
    async with streaming() as run:
        await live(run)
        armed = time.time()
        run.control(fault="cxone_retry_after_form", form="date")
        run.control(fault="cxone_rest_error", status=429, retry_after=8, count=1)

        def throttled() -> list[float]:
            events = run.connector.health.events
            return [e["data"]["retry_in"] for e in events if e["detail"].startswith("CXone is throttling")]

        await eventually(throttled, what="the 429")
        noticed = time.time()
        # The date is "served + 8 s" rounded up to the whole second, read back at some moment between
        # arming and noticing: the wait lies within those bounds however slow this machine is. (On an
        # idle machine they are close together: about 8 to 9 s, not the 3 s of a bare 429.)
        wait = throttled()[0]
        assert armed + 8 - noticed <= wait <= noticed + 9 - armed, (wait, noticed - armed)


async def test_the_breaker_opens_stops_calling_probes_and_closes_again():
    # Cooling starts at a third of backoff_cap (1 s here) and doubles per failed probe.
    timing = replace(FAST, backoff_cap=scaled(3.0))
    async with streaming(timing=timing) as run:
        await live(run)
        breaker = run.connector.breaker
        served = stamp_calls(run.sim)
        counters = run.sim.cxone.counters
        run.control(fault="cxone_rest_error", status=503, count=10_000, retry_after=None)
        await eventually(lambda: breaker.opened >= 1, what="the circuit to open")
        assert run.connector.health.state == "degraded"
        assert run.connector.health.detail.startswith("CXone is unavailable (503); next try in")
        await eventually(lambda: breaker.opened >= 2, what="the probe to fail", within=5)
        # Read from the simulator's own times, however late this test looks: three failures in a row opened
        # the circuit, then nobody called for the whole cooling period, then one probe (not a burst) came.
        faulted = [when for kind, when in served if kind == "faulted"]
        assert len(faulted) >= 4 and counters.faulted == len(faulted)
        threshold, probe = faulted[2], faulted[3]
        assert probe - threshold >= breaker.cooling - 0.05, faulted
        if len(faulted) > 4:  # a slow machine saw the second probe too: it waited twice as long
            assert faulted[4] - probe >= 2 * breaker.cooling - 0.05, faulted
        # The detail names the cooling of the latest opening, which doubles per failed probe.
        trips, detail = breaker.trips, run.connector.health.detail
        assert trips >= 2 and f"next try in {breaker.cooling * 2 ** (trips - 1):.0f} s" in detail
        run.control(fault="clear")
        await live(run)
        assert breaker.state == "closed"
        # Polling resumed from the last good cursor: no resync, no reconnect.
        assert run.connector.snapshots == 1 and run.connector.health.reconnects == 0
        await converged(run)


async def test_a_throttled_snapshot_is_retried_after_retry_after():
    async with streaming() as run:
        run.control(fault="cxone_rest_error", status=429, retry_after=1, count=1)
        await live(run)
        assert any(state == "degraded" and "snapshot failed" in detail for state, detail in run.states)
        assert run.connector.snapshots == 1 and run.connector.health.reconnects == 0
        await converged(run)


async def test_polls_and_snapshots_take_turns_so_no_poll_lands_after_a_newer_snapshot():
    async with streaming(rate=0, presence_change_mean=0) as run:
        await live(run)
        connector = run.connector
        fetch, running, most = connector.rest.fetch, 0, 0

        async def counted(path, root, since, *, top):
            nonlocal running, most
            running += 1
            most = max(most, running)
            try:
                return await fetch(path, root, since, top=top)
            finally:
                running -= 1

        connector.rest.fetch = counted
        agent_id = next(iter(run.sim.model.agents))
        for presence in ("MEAL", "TRAINING", "AVAILABLE"):
            snapshots, polls = connector.snapshots, connector.polls
            run.control(action="set_presence", user_id=agent_id, presence=presence)
            connector.request_resync("test")
            await eventually(lambda n=snapshots: connector.snapshots == n + 1, what="the resync")
            await eventually(lambda n=polls: connector.polls > n, what="a poll after it")
        # One call at a time: a poll never straddles a snapshot, so nothing older is replayed after one.
        assert most == 1 and connector.buffered() == []
        await converged(run)
