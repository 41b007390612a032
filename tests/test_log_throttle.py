"""Refusals that unauthenticated clients can cause as fast as they like make a trickle of log lines, not a flood."""

from __future__ import annotations

import json
import logging

import pytest

from streams.hooks import refusals
from streams.log_throttle import ThrottledLog
from tests.test_webhook_view import hook, post, record  # noqa: F401  (hook is a fixture)
from tests.timing import FakeClock


def test_one_line_per_key_and_period_then_a_count_of_those_left_out(caplog):
    clock = FakeClock()
    throttled = ThrottledLog(logging.getLogger("test.throttle"), 60.0, clock=clock)
    with caplog.at_level(logging.INFO, logger="test.throttle"):
        assert throttled.log("a", logging.WARNING, "refused %s", "x")
        for _ in range(500):
            assert not throttled.log("a", logging.WARNING, "refused %s", "x")
        assert throttled.log("b", logging.WARNING, "refused %s", "y")  # another key has its own line
        clock.now += 60.0
        assert throttled.log("a", logging.WARNING, "refused %s", "x")
    assert [r.getMessage() for r in caplog.records] == [
        "refused x",
        "refused y",
        "refused x (and 500 more like it since the last such line)",
    ]


def test_distinct_keys_cannot_grow_it_without_end():
    throttled = ThrottledLog(logging.getLogger("test.throttle"), 60.0, max_keys=10, clock=FakeClock())
    for n in range(1000):
        throttled.log(n, logging.INFO, "line")
    assert len(throttled._last) <= 10


@pytest.mark.django_db
def test_a_flood_of_forged_deliveries_and_of_made_up_slugs_logs_one_line_each(hook, caplog):  # noqa: F811
    refusals.refusal_log.reset()
    body = json.dumps([record(1)])
    with caplog.at_level(logging.INFO, logger="streams.hooks.refusals"):
        for n in range(50):
            assert post(body, secret="forged").status_code == 401
            assert post(body, slug=f"made-up-{n}").status_code == 401
    lines = [r.getMessage() for r in caplog.records if r.name == "streams.hooks.refusals"]
    assert lines == [
        "webhook crm: refused a delivery with 401 (the signature does not match)",
        "webhook: refused a delivery to an unknown slug",
    ]
    # Nor does Django's request log write a line per refusal.
    assert not [r for r in caplog.records if r.name == "django.request"]
