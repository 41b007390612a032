"""Helpers for the push and SSE feed tests: a simulator, a feed connector streaming into a Floor, and the truth."""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager
from typing import Any

from simulator import control
from simulator.server import SimulatorServer
from streams.floor import Floor
from streams.health import LinkHealth
from streams.link.connector import Connector
from streams.link.timing import Timing
from streams.vendors.registry import connector_class
from streams.vendors.spec import ConnectionSpec
from tests.timing import eventually, scaled

SCOPE = "feeds:read"
CAMPAIGN_NAMES = {"campaign": "payload.campaign_name"}
# Contacts live through every state (alerting, connected, wrap-up, ended) within a couple of seconds.
QUICK_LIFE = {
    "handle_mean": 1.5,
    "acw_range": (0.3, 0.8),
    "alert_range": (0.1, 0.4),
    "patience_mean": 4.0,
    "presence_change_mean": 0.0,
}


class FeedRun:
    """A simulator, a feed connector streaming from it into a real Floor, and the states the link went through."""

    def __init__(self, sim: SimulatorServer, connector: Connector, floor: Floor, states: list[str]) -> None:
        self.sim = sim
        self.connector = connector
        self.floor = floor
        self.states = states

    @property
    def source(self) -> str:
        return self.connector.spec.source

    @property
    def health(self) -> LinkHealth:
        return self.connector.health

    def watched(self) -> set[str]:
        return set(self.connector.spec.queue_ids)

    def control(self, **payload) -> dict:
        return control.dispatch(self.sim, payload)

    def connections(self, kind: str) -> list[dict[str, Any]]:
        return [c for c in self.sim.feeds.connections if c["kind"] == kind]

    def expected(self) -> dict[str, dict]:
        """Return the live interactions of the watched queues, as the Floor should hold them."""
        names = self.connector.spec.settings.field_mapping.get("campaign") == "payload.campaign_name"
        expected = {}
        for interaction_id, truth in self.sim.truth()["interactions"].items():
            if truth["queue_id"] not in self.watched():
                continue
            row = {k: v for k, v in truth.items() if k != "number"}
            if not names:
                # The default mapping reads campaign_id, not the campaign's name.
                row["campaign"] = self.sim.model.queues[truth["queue_id"]].campaign_id
            expected[interaction_id] = row
        return expected

    def actual(self) -> dict[str, dict]:
        """Return the Floor's interactions of this source, without the Floor's own bookkeeping."""
        rows = {}
        for interaction_id in self.floor.source_interaction_ids(self.source):
            data = self.floor.interaction(self.source, interaction_id).as_dict()
            del data["id"], data["state_since"]
            rows[interaction_id] = data
        return rows


def campaign_names(run: FeedRun) -> set[str]:
    """Return the campaign names the simulator's queues run (what a campaign-name mapping shows)."""
    return {queue.campaign_name for queue in run.sim.model.queues.values()}


async def converged(run: FeedRun, within: float = 10.0) -> None:
    """Pause the model and wait until the Floor holds exactly the live interactions of the watched queues."""
    run.sim.pause()
    deadline = time.monotonic() + scaled(within)
    while run.actual() != run.expected():
        if time.monotonic() > deadline:
            assert run.actual() == run.expected()
        await asyncio.sleep(0.05)


async def live(run: FeedRun) -> None:
    """Wait until the connector reports its link live."""
    await eventually(run.health.is_live, what="the link to be live")


async def records_flow(run: FeedRun, count: int = 10) -> None:
    """Wait until the simulator has made COUNT more records: contacts came, changed and went meanwhile."""
    seq = run.sim.records.seq
    await eventually(lambda: run.sim.records.seq >= seq + count, what=f"{count} more records")


def feed_url(sim: SimulatorServer, kind: str) -> str:
    """Return the simulator's address of the KIND feed."""
    if kind == "push":
        return sim.base_url.replace("http://", "ws://", 1) + "/feeds/push"
    return sim.base_url + "/feeds/sse"


@asynccontextmanager
async def feed_streaming(
    kind: str,
    *,
    timing: Timing,
    queues: int = 4,
    agents: int = 20,
    rate: float = 4.0,
    watch: int = 2,
    mapping: dict | None = None,
    secret: str | None = None,
    token: bool = True,
    spec_options: dict | None = None,
    prefill: int = 3,
    **sim_options,
):
    """Run a simulator (PREFILL contacts in each queue) and a KIND connector watching its first WATCH queues."""
    sim = SimulatorServer(port=0, queues=queues, agents=agents, rate=rate, seed=3, **(QUICK_LIFE | sim_options))
    base = await sim.start()
    queue_ids = tuple(sorted(sim.truth()["queues"]))[:watch]
    for queue_id in sim.model.queues:
        # Interactions before the connector comes: its first picture has something to state.
        for _ in range(prefill):
            sim.model.arrive(queue_id)
    url = feed_url(sim, kind)
    spec = ConnectionSpec.of(
        kind,
        "feed1",
        client_id=sim.client_id,
        client_secret=secret or sim.client_secret,
        queue_ids=queue_ids,
        stream_url=url,
        token_url=f"{base}/feeds/oauth/token" if token else "",
        scope=SCOPE,
        field_mapping=mapping or {},
        **(spec_options or {}),
    )
    floor = Floor()
    states: list[str] = []
    health = LinkHealth()
    health.on_change = lambda h: states.append(h.state)
    connector = connector_class(kind)(spec, floor.apply, health=health, timing=timing)
    task = asyncio.create_task(connector.run())
    try:
        yield FeedRun(sim, connector, floor, states)
    finally:
        await connector.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await sim.stop()
