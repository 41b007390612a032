"""Helpers for the CXone connector tests: a simulator, a CXone connector polling it into a Floor, and the truth."""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, fields

from simulator import control
from simulator.cxone.api import CxoneCounters
from simulator.server import SimulatorServer
from streams.floor import Floor
from streams.health import LinkHealth
from streams.link.timing import Timing
from streams.vendors.cxone.connector import CxoneConnector
from streams.vendors.registry import connector_class
from streams.vendors.spec import ConnectionSpec
from tests.timing import eventually, scaled

CLIENT_SECRET = "cl=ient+secret"
KEY_ID = "floorview=key"
KEY_SECRET = "k3y=se&cret+=="
POLL = 0.2  # seconds between polls here (production never polls faster than once a second)
KEYS = {"cxone_access_key_id": KEY_ID, "cxone_access_key_secret": KEY_SECRET}

FAST = Timing(
    open_timeout=scaled(5),
    rest_timeout=scaled(5),
    backoff_first=scaled(0.05),
    backoff_min=scaled(0.1),
    backoff_cap=scaled(0.6),
    healthy_after=scaled(2),
    auth_retry=scaled(60),
    max_retry_after=scaled(10),
)
QUEUE_FIELDS = (
    "name",
    "waiting",
    "interacting",
    "longest_waiting_since",
    "on_queue_agents",
    "idle_agents",
    "sl_numerator",
    "sl_denominator",
)


class Running:
    """A simulator, a CXone connector polling it into a real Floor, the task running it, and its states."""

    def __init__(
        self, sim: SimulatorServer, connector: CxoneConnector, floor: Floor, states: list, task: asyncio.Task
    ) -> None:
        self.sim = sim
        self.connector = connector
        self.floor = floor
        self.states = states  # (state, detail) as they changed
        self.task = task  # the connector's run(): it ends once the connector is closed

    @property
    def source(self) -> str:
        return self.connector.spec.source

    def watched(self) -> set[str]:
        return set(self.connector.spec.queue_ids)

    def control(self, **payload) -> dict:
        return control.dispatch(self.sim, payload)

    def skill(self, queue_id: str) -> str:
        return str(self.sim.model.queues[queue_id].number)

    def agent(self, agent_id: str) -> str:
        return str(self.sim.model.agents[agent_id].number)

    def expected(self) -> dict:
        """Return the truth as CXone can tell it, in CXone's ids.

        CXone's skill counts do not tell ringing from talking (both are agents
        working) nor count a refused agent as on queue; every agent belongs to
        every watched skill.
        """
        truth, watched = self.sim.truth(), self.watched()
        queues = {}
        for queue_id, queue in truth["queues"].items():
            if self.skill(queue_id) not in watched:
                continue
            members = [a for a in truth["agents"].values() if queue_id in a["queue_ids"]]
            queues[self.skill(queue_id)] = {name: queue[name] for name in QUEUE_FIELDS} | {
                "interacting": queue["interacting"] + queue["alerting"],
                "on_queue_agents": sum(a["routing_status"] in ("IDLE", "INTERACTING") for a in members),
            }
        agents = {
            self.agent(agent_id): {
                "name": agent["name"],
                "presence": agent["presence"],
                "routing_status": agent["routing_status"],
                "queue_ids": sorted(watched),
            }
            for agent_id, agent in truth["agents"].items()
        }
        interactions = {
            str(i["number"]): {
                "media": i["media"],
                "queue_id": self.skill(i["queue_id"]),
                "state": i["state"],
                "agent_id": self.agent(i["agent_id"]) if i["agent_id"] else None,
                "agent_name": i["agent_name"],
                "campaign": i["campaign"],
                "disposition": i["disposition"],
                "started_at": i["started_at"],
            }
            for i in truth["interactions"].values()
            if self.skill(i["queue_id"]) in watched
        }
        return {"queues": queues, "agents": agents, "interactions": interactions}

    def actual(self) -> dict:
        """Return what the Floor holds for this source, in the shape of ``expected()``."""
        floor, source = self.floor, self.source
        queues = {}
        for queue_id in floor.source_queue_ids(source):
            row = floor.queue(source, queue_id).as_dict()
            queues[queue_id] = {name: row[name] for name in QUEUE_FIELDS}
        agents = {}
        for agent_id in floor.source_agent_ids(source):
            row = floor.agent(source, agent_id).as_dict()
            agents[agent_id] = {k: row[k] for k in ("name", "presence", "routing_status", "queue_ids")}
        interactions = {}
        for interaction_id in floor.source_interaction_ids(source):
            row = floor.interaction(source, interaction_id).as_dict()
            interactions[interaction_id] = {k: v for k, v in row.items() if k not in ("id", "state_since")}
        return {"queues": queues, "agents": agents, "interactions": interactions}


@dataclass
class StampedCounters(CxoneCounters):
    """The simulator's CXone counters, also noting when each real-time call and each injected fault was served.

    The times are taken by the simulator as it serves (``time.monotonic``), so a gap between two of them
    is what the connector waited, however late the test gets to look at it.
    """

    def __post_init__(self) -> None:
        self.served: list[tuple[str, float]] = []

    def __setattr__(self, name: str, value: object) -> None:
        if name in ("requests", "faulted") and "served" in self.__dict__:
            self.served.append((name, time.monotonic()))
        super().__setattr__(name, value)


def stamp_calls(sim: SimulatorServer) -> list[tuple[str, float]]:
    """Make SIM note when it serves each CXone call and fault; return the list it fills ((kind, when), ...)."""
    stamped = StampedCounters(**{f.name: getattr(sim.cxone.counters, f.name) for f in fields(CxoneCounters)})
    sim.cxone.counters = stamped
    return stamped.served


async def converged(run: Running, within: float = 10.0) -> None:
    """Pause the model and wait until the Floor holds exactly the truth CXone can tell."""
    run.sim.pause()
    deadline = time.monotonic() + scaled(within)
    while run.actual() != run.expected():
        if time.monotonic() > deadline:
            assert run.actual() == run.expected()
        await asyncio.sleep(0.05)
    check_status_since(run)


def check_status_since(run: Running) -> None:
    """Each agent's status runs from when it began; wrap-up starts its own CXone state, after the contact's."""
    truth = run.sim.truth()
    in_wrapup = {i["agent_id"] for i in truth["interactions"].values() if i["state"] == "wrapup"}
    for agent_id, agent in truth["agents"].items():
        row = run.floor.agent(run.source, run.agent(agent_id))
        began = agent["routing_since"] if agent["presence"] == "on_queue" else agent["presence_since"]
        if agent_id in in_wrapup:
            assert row.status_since >= began
        else:
            assert row.status_since == began, (agent_id, agent)


@asynccontextmanager
async def streaming(
    *,
    queues: int = 4,
    agents: int = 20,
    rate: float = 2.0,
    watch: int | None = 3,
    timing: Timing = FAST,
    key_secret: str = KEY_SECRET,
    page_size: int = 1000,
    full_contacts_every: float = 60.0,
    **sim_options,
):
    """Run a simulator and a CXone connector (watching the first WATCH skills) polling it into a Floor."""
    sim = SimulatorServer(
        port=0,
        queues=queues,
        agents=agents,
        rate=rate,
        seed=1,
        client_secret=CLIENT_SECRET,
        cxone_access_key_id=KEY_ID,
        cxone_access_key_secret=KEY_SECRET,
        **sim_options,
    )
    base = await sim.start()
    skills = sorted(str(q.number) for q in sim.model.queues.values())[:watch]
    spec = ConnectionSpec.of(
        "cxone",
        base_url=base,
        client_id=sim.client_id,
        client_secret=CLIENT_SECRET,
        queue_ids=tuple(skills),
        access_key_id=KEY_ID,
        access_key_secret=key_secret,
        poll_interval=POLL,
    )
    floor = Floor()
    states: list[tuple[str, str]] = []
    health = LinkHealth()
    health.on_change = lambda h: states.append((h.state, h.detail))
    connector = connector_class("cxone")(
        spec,
        floor.apply,
        health=health,
        timing=timing,
        min_poll_interval=0.05,
        page_size=page_size,
        full_contacts_every=full_contacts_every,
    )
    task = asyncio.create_task(connector.run())
    try:
        yield Running(sim, connector, floor, states, task)
    finally:
        await connector.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await sim.stop()


async def live(run: Running) -> None:
    """Wait until the connector reports its link live."""
    await eventually(run.connector.health.is_live, what="the link to be live")
