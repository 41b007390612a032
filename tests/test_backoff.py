"""Reconnect delays: random first delay, growth, cap, and a reset that waits for a healthy spell."""

import itertools
import random

from streams.backoff import Backoff, backoff_delays
from tests.timing import FakeClock


def test_it_draws_the_first_delay_at_random_within_bounds():
    rng = random.Random(7)
    firsts = [next(backoff_delays(first=2.0, rng=rng.random)) for _ in range(200)]
    assert all(0.0 <= d <= 2.0 for d in firsts)
    # Random, not fixed: clients that failed together spread out.
    assert max(firsts) - min(firsts) > 1.0


def test_it_grows_delays_by_the_factor_until_the_cap():
    delays = list(itertools.islice(backoff_delays(first=1.0, minimum=2.0, factor=2.0, cap=30.0, rng=lambda: 0.0), 8))
    assert delays == [0.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def test_it_never_exceeds_the_cap_and_jitters_below_it():
    rng = random.Random(3)
    delays = list(itertools.islice(backoff_delays(minimum=1.0, factor=3.0, cap=10.0, jitter=0.25, rng=rng.random), 50))
    assert all(d <= 10.0 for d in delays)
    late = delays[10:]
    assert all(7.5 <= d <= 10.0 for d in late)
    assert len(set(late)) > 1


def test_it_keeps_growing_when_a_link_drops_at_once():
    clock = FakeClock()
    backoff = Backoff(first=1.0, minimum=2.0, factor=2.0, cap=60.0, jitter=0.0, healthy_after=30.0, clock=clock)
    backoff.next_delay()
    delays = []
    for _ in range(4):
        # The server accepts and drops after a second: never healthy long enough to reset.
        backoff.link_up()
        clock.now += 1.0
        backoff.link_down()
        delays.append(backoff.next_delay())
    assert delays == [2.0, 4.0, 8.0, 16.0]


def test_it_resets_only_after_the_link_stayed_healthy_long_enough():
    clock = FakeClock()
    backoff = Backoff(
        first=1.0, minimum=2.0, factor=2.0, cap=60.0, jitter=0.0, healthy_after=30.0, clock=clock, rng=lambda: 0.5
    )
    for _ in range(4):
        backoff.next_delay()
    backoff.link_up()
    clock.now += 29.0
    assert backoff.next_delay() == 16.0  # 29 s healthy is not enough
    backoff.link_up()
    clock.now += 30.0
    assert backoff.next_delay() == 0.5  # a fresh random first delay
    assert backoff.next_delay() == 2.0
