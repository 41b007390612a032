"""Time in the suite: one constant scaling every timeout, a bounded wait for a condition, and a hand-moved clock."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Any

SCALE = float(os.environ.get("FLOORVIEW_TEST_TIME_SCALE", "1"))
# How often ``eventually`` looks again: quick enough not to slow a test, rare enough to leave the loop to others.
POLL_EVERY = 0.02


def scaled(seconds: float) -> float:
    """Return SECONDS stretched by the suite's time scale."""
    return seconds * SCALE


async def eventually(check: Callable[[], Any], *, within: float = 10.0, what: str = "condition") -> None:
    """Poll CHECK until it returns something true, failing after WITHIN (scaled) seconds with WHAT in the message."""
    deadline = time.monotonic() + scaled(within)
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(POLL_EVERY)


def scheduled_wait(health: Any) -> float | None:
    """Return the wait a connector last scheduled before its next attempt, as its HEALTH events noted it.

    A test that must show "no quick retry" reads the wait the connector chose
    instead of sleeping for a while and counting attempts.
    """
    for event in reversed(health.events):
        if event["kind"] == "auth_failed":
            return event["data"]["retry_in"]
        if event["kind"] == "backoff_scheduled":
            return event["data"]["delay"]
    return None


class FakeClock:
    """A clock the test moves by hand: call it for the time, add to ``now`` to move it."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
