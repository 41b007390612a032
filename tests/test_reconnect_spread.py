"""A crowd sent away is told how long to spread its return over: the close reason's format and its sizes."""

from __future__ import annotations

import asyncio
import weakref

import pytest

from dashboard import protocol, shutdown
from dashboard.protocol import Close, restart_spread, spread_reason
from dashboard.reconnect_spread import MAX_SPREAD, MIN_SPREAD, RefusalRate, spread_for


def test_the_reason_reads_back_as_the_seconds_it_names():
    assert spread_reason(8) == "spread=8.0"
    assert restart_spread(spread_reason(8)) == 8.0
    assert protocol.for_page()["spread_reason"] == "spread="


@pytest.mark.parametrize("reason", [None, "", "going away", "spread=", "spread=soon", "spread=nan", "Spread=3"])
def test_a_reason_that_names_no_window_is_none(reason):
    assert restart_spread(reason) is None


def test_a_named_window_is_kept_within_the_pages_own_bounds():
    assert restart_spread("spread=1e9") == 30.0
    assert restart_spread("spread=-5") == 0.0


def test_the_window_is_the_crowd_over_the_processes_handshake_rate(settings):
    settings.FLOORVIEW = {**settings.FLOORVIEW, "RECONNECT_RATE": 250}
    assert spread_for(2000) == 8.0
    assert spread_for(3) == MIN_SPREAD  # never tighter than the page's own restart jitter
    assert spread_for(10**6) == MAX_SPREAD


def test_refusals_count_the_crowd_of_the_last_two_seconds(settings):
    settings.FLOORVIEW = {**settings.FLOORVIEW, "RECONNECT_RATE": 100}
    now = [1000.2]
    rate = RefusalRate(clock=lambda: now[0])
    for _ in range(299):
        rate.refuse(queued=0)
    assert rate.refuse(queued=100) == "spread=4.0"  # 300 refused this second and 100 queued, at 100 a second
    now[0] += 2.0
    assert rate.refuse(queued=0) == "spread=3.0"  # two seconds later the first burst still counts
    now[0] += 1.0
    assert rate.refuse(queued=0) == "spread=1.0"  # and a second after that it has left the window
    now[0] += 60.0
    assert rate.refuse(queued=0) == "spread=1.0"  # a quiet spell empties it


class FakeViewer:
    def __init__(self) -> None:
        self.closed: list[tuple[int, str | None]] = []

    async def close(self, code: int | None = None, reason: str | None = None) -> None:
        self.closed.append((code, reason))
        shutdown.forget(self)  # the browser answered


async def test_a_restart_asks_its_viewers_to_spread_over_a_window_their_number_needs(settings, monkeypatch):
    settings.FLOORVIEW = {**settings.FLOORVIEW, "RECONNECT_RATE": 250}
    # This test's viewers only, whatever earlier tests left tracked.
    monkeypatch.setattr(shutdown, "_open", weakref.WeakSet())
    monkeypatch.setattr(shutdown, "_closing", weakref.WeakSet())
    viewers = [FakeViewer() for _ in range(1000)]
    for viewer in viewers:
        shutdown.track(viewer)
    try:
        assert await asyncio.wait_for(shutdown.close_all(), 5) == 1000
    finally:
        for viewer in viewers:
            shutdown.forget(viewer)
    assert {tuple(v.closed) for v in viewers} == {((Close.RESTART, "spread=4.0"),)}
