"""A CXone board stays live through an outage: the simulator plays unreachable, then comes back, and the
connector is live again within its backoff, polling normally (no breaker loop), with the Floor back on the truth.

The tenant is large enough that its replies are far larger than one socket
buffer (a whole-body read matters: a partial one was "not JSON" and kept the
breaker open for ever after an outage).
"""

from __future__ import annotations

import time
from dataclasses import replace

from tests.cxone_util import FAST, converged, live, stamp_calls, streaming
from tests.timing import eventually, scaled

# Cooling starts at a third of the backoff cap and doubles per failed probe, up to max_retry_after.
TIMING = replace(FAST, backoff_cap=scaled(1.5), max_retry_after=scaled(4))
AGENTS = 600  # agentStates alone is then well above 128 KiB


async def test_the_connector_is_live_again_within_its_backoff_after_an_outage():
    async with streaming(agents=AGENTS, queues=6, rate=4.0, timing=TIMING) as run:
        await live(run)
        connector, breaker = run.connector, run.connector.breaker
        served = stamp_calls(run.sim)  # the simulator's own times of every call it serves
        counters = run.sim.cxone.counters
        snapshots = connector.snapshots

        # The outage: every connection is cut. It lasts until the breaker has opened and a probe has
        # failed (so its cooling grew, as in a long outage), whatever that takes on this machine.
        run.control(fault="unreachable")
        await eventually(
            lambda: breaker.opened >= 2 and breaker.state == "open", what="the circuit to open and a probe to fail"
        )
        assert connector.health.state == "degraded"
        assert "polling CXone failed" in connector.health.detail
        assert run.sim.faults.refused > 0

        # Clear it, and read when the breaker lets the next call through in the same step (nothing else
        # runs in between): the probe is due then, not before, and it brings the link back.
        run.control(fault="clear")
        cleared_at, due_at = time.monotonic(), breaker.open_until
        await eventually(connector.health.is_live, within=breaker.wait() + 5, what="live again after the outage")
        first = min(when for kind, when in served if kind == "requests" and when >= cleared_at)
        # Measured on the simulator's clock: the breaker held off until its cooling ended, then called at once.
        assert due_at - 0.05 <= first <= max(due_at, cleared_at) + scaled(1.0), (
            first - cleared_at,
            due_at - cleared_at,
        )
        assert breaker.state == "closed"

        # Polls succeed afterwards: several in a row, and the breaker does not open again.
        opened, polls, requests = breaker.opened, connector.polls, counters.requests
        await eventually(lambda: connector.polls >= polls + 5, what="five good polls after the outage")
        assert counters.requests > requests and breaker.opened == opened
        assert connector.health.is_live()
        assert connector.health.counters["breaker_opened"] == opened
        # A failed poll never costs a full resync: polling resumed from the last good poll time.
        assert connector.snapshots == snapshots
        await converged(run, within=20)
        assert breaker.opened == opened and connector.health.is_live()
