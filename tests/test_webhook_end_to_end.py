"""End to end: the simulator posts to the webhook, the worker's connector applies, the Floor matches the truth.

simulator sender → HTTP → Django's ASGI application (in this process, behind a
small aiohttp front) → the hook queue → the webhook connector → the Floor,
which must converge to ``model.truth()`` once the model is paused. Forged,
stale, oversized, garbage and duplicate deliveries must change nothing.
The last test runs the production path: a real Daphne process and Redis.
"""

from __future__ import annotations

import asyncio
import os
from contextlib import asynccontextmanager

import pytest
from aiohttp import web
from asgiref.sync import sync_to_async
from django.core.asgi import get_asgi_application

from simulator import control
from simulator.server import SimulatorServer
from streams.floor import Floor
from streams.hooks import targets
from streams.hooks.process_queue import get_hook_queue, reset_hook_queue
from streams.hooks.redis_queue import RedisHookQueue
from streams.link.timing import Timing
from streams.models import Connection
from streams.schema import QUEUE
from streams.vendors.spec import ConnectionSpec
from streams.vendors.webhook.connector import WebhookConnector
from tests.processes import Daphne, free_port
from tests.redis_util import REDIS_TEST_URL, delete_prefix, unique_prefix
from tests.timing import eventually, scaled

SECRET = "e2e-webhook-secret"
MAPPING = {"campaign": "payload.campaign_name"}  # the board shows campaign names; records carry both
FAST = Timing(backoff_first=0.05, backoff_min=0.1, backoff_cap=0.5, healthy_after=2.0)
# Seconds (scaled) to wait for a delivery to pass simulator → Django (or Daphne and Redis) → the Floor.
SETTLE = 15.0
pytestmark = pytest.mark.django_db(transaction=True)


# The queue's name comes from the admin; rolling figures are counted by the Floor, not reported by the vendor.
_NOT_VENDOR_TRUTH = {"name", "id", *(spec.name for spec in QUEUE.rolling)}


class AsgiFront:
    """An aiohttp server in this loop that hands each request to Django's ASGI application."""

    def __init__(self) -> None:
        self.app = get_asgi_application()
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> str:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
        return self.url

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": "http",
            "path": request.path,
            "raw_path": request.raw_path.split("?")[0].encode(),
            "query_string": request.query_string.encode(),
            "root_path": "",
            "headers": [(name.lower(), value) for name, value in request.raw_headers],
            "client": ("127.0.0.1", 0),
            "server": ("127.0.0.1", 80),
        }
        pending = [{"type": "http.request", "body": body, "more_body": False}]
        started: dict = {}
        chunks: list[bytes] = []

        async def receive() -> dict:
            if pending:
                return pending.pop()
            await asyncio.Future()  # no disconnect: Django cancels this once it has answered
            raise AssertionError("unreachable")

        async def send(message: dict) -> None:
            if message["type"] == "http.response.start":
                started.update(message)
            else:
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        headers = [(k.decode(), v.decode()) for k, v in started.get("headers", []) if k.lower() != b"content-length"]
        return web.Response(status=started["status"], body=b"".join(chunks), headers=headers)


def make_connection(slug: str = "crm") -> Connection:
    connection = Connection.of("webhook", name="CRM webhook", slug=slug, field_mapping=MAPPING, webhook_secret=SECRET)
    connection.save()
    return connection


class Running:
    """A simulator posting to the webhook, and a connector applying what arrives to a Floor."""

    def __init__(self, sim: SimulatorServer, connector: WebhookConnector, floor: Floor) -> None:
        self.sim = sim
        self.connector = connector
        self.floor = floor

    @property
    def source(self) -> str:
        return self.connector.spec.source

    def control(self, **payload) -> dict:
        return control.dispatch(self.sim, payload)

    def expected_interactions(self) -> dict:
        fields = ("media", "queue_id", "state", "agent_id", "agent_name", "campaign", "disposition", "started_at")
        return {i: {f: t[f] for f in fields} for i, t in self.sim.truth()["interactions"].items()}

    def actual_interactions(self) -> dict:
        fields = ("media", "queue_id", "state", "agent_id", "agent_name", "campaign", "disposition", "started_at")
        rows = {i: self.floor.interaction(self.source, i) for i in self.floor.source_interaction_ids(self.source)}
        return {i: {f: getattr(row, f) for f in fields} for i, row in rows.items()}

    def expected_queues(self) -> dict:
        return {q: {k: v for k, v in t.items() if k != "name"} for q, t in self.sim.truth()["queues"].items()}

    def actual_queues(self) -> dict:
        return {
            q: {k: v for k, v in self.floor.queue(self.source, q).as_dict().items() if k not in _NOT_VENDOR_TRUTH}
            for q in self.floor.source_queue_ids(self.source)
        }

    def expected_agents(self) -> dict:
        return {a: {k: v for k, v in t.items() if k != "name"} for a, t in self.sim.truth()["agents"].items()}

    def actual_agents(self) -> dict:
        agents = {}
        for agent_id in self.floor.source_agent_ids(self.source):
            data = self.floor.agent(self.source, agent_id).as_dict()
            agents[agent_id] = {k: v for k, v in data.items() if k not in ("name", "id")}
        return agents

    def settled(self) -> bool:
        """Return whether everything sent was acknowledged and every acknowledged item applied."""
        sender = self.sim.webhooks
        return not sender.describe()["outbox"] and self.connector.items == sender.counters["items"]

    async def converged(self, *, notifications: bool = False) -> None:
        """Pause the model and wait until the Floor holds exactly the truth."""
        self.sim.pause()

        def same() -> bool:
            if self.actual_interactions() != self.expected_interactions():
                return False
            return not notifications or (
                self.actual_queues() == self.expected_queues() and self.actual_agents() == self.expected_agents()
            )

        try:
            await eventually(same, within=SETTLE, what="the Floor to match the truth")
        except AssertionError:
            assert self.actual_interactions() == self.expected_interactions()
            assert self.actual_queues() == self.expected_queues()
            assert self.actual_agents() == self.expected_agents()
            raise


@asynccontextmanager
async def webhook_flow(settings, *, eventbridge: bool = False):
    """A simulator posting through the in-process ASGI app into the embedded queue, and a connector reading it."""
    settings.REDIS_URL = ""
    reset_hook_queue()
    targets.hook_targets.clear()
    connection = await sync_to_async(make_connection)()
    sim = SimulatorServer(port=0, queues=3, agents=12, rate=12.0, seed=5, tick=0.05, analytics_min_interval=0.2)
    await sim.start()
    front = AsgiFront()
    url = await front.start()
    queue_ids = tuple(sorted(sim.truth()["queues"]))
    spec = ConnectionSpec.from_connection(connection, queue_ids)
    floor = Floor()
    connector = WebhookConnector(spec, floor.apply, timing=FAST, queue=get_hook_queue())
    task = asyncio.create_task(connector.run())
    run = Running(sim, connector, floor)
    try:
        run.control(action="webhook_target", url=f"{url}/hooks/crm/", secret=SECRET, eventbridge=eventbridge)
        yield run
    finally:
        run.control(action="webhook_target", url="")
        await connector.close()
        await asyncio.gather(task, return_exceptions=True)
        await sim.stop()
        await front.stop()
        reset_hook_queue()
        targets.hook_targets.clear()


async def test_the_floor_converges_to_the_simulator_through_the_webhook(settings):
    async with webhook_flow(settings) as run:
        # Let contacts come, be answered and go while the records flow.
        await eventually(lambda: run.sim.webhooks.counters["items"] >= 40, within=SETTLE, what="traffic")
        await run.converged()
        await eventually(run.settled, within=SETTLE, what="every delivery applied once")
        assert run.connector.health.is_live()
        assert run.sim.webhooks.counters["refused"] == 0
        assert run.actual_interactions(), "some contacts should be live"


async def test_forged_stale_oversized_garbage_and_duplicate_deliveries_change_nothing(settings):
    async with webhook_flow(settings) as run:
        await eventually(lambda: run.sim.webhooks.counters["items"] >= 20, within=SETTLE, what="a few deliveries")
        await run.converged()
        await eventually(run.settled, within=SETTLE, what="every delivery applied once")
        before = run.actual_interactions()
        items = run.connector.items
        probes = ["forged_signature", "stale_timestamp", "oversized_body", "garbage_body", "duplicate", "duplicate"]
        for probe in probes:
            run.control(fault=f"webhook_{probe}")
        sender = run.sim.webhooks
        await eventually(lambda: len(sender.probe_results) == len(probes), within=SETTLE, what="the probes' replies")
        assert [(p["probe"], p["status"]) for p in sender.probe_results] == [
            ("forged_signature", 401),
            ("stale_timestamp", 401),
            ("oversized_body", 413),
            ("garbage_body", 400),
            ("duplicate", 204),
            ("duplicate", 204),
        ]
        # A real change after the probes: once it is on the Floor, anything they had queued would be too.
        queue_id = sorted(run.sim.truth()["queues"])[0]
        arrived = run.control(action="arrive", queue_id=queue_id)["result"]["contact_ids"][0]
        await eventually(
            lambda: run.floor.interaction(run.source, arrived) is not None, within=SETTLE, what="the new contact"
        )
        await run.converged()
        after = run.actual_interactions()
        assert {i: r for i, r in after.items() if i != arrived} == before
        assert not any(i.startswith("forged-") for i in after)
        # Every item applied was delivered once: the duplicates were acknowledged and dropped.
        await eventually(run.settled, within=SETTLE, what="the sender to count the last delivery")
        assert run.connector.items == items + 1
        assert run.connector.health.counters["stale"] == 0


async def test_eventbridge_notifications_bring_queues_and_agents_to_the_truth(settings):
    async with webhook_flow(settings, eventbridge=True) as run:
        queue_id = sorted(run.sim.truth()["queues"])[1]
        agent_id = next(a for a, t in run.sim.truth()["agents"].items() if queue_id in t["queue_ids"])
        await eventually(lambda: run.sim.webhooks.counters["items"] >= 150, within=SETTLE, what="traffic")
        run.control(action="set_presence", user_id=agent_id, presence="MEAL")
        await run.converged(notifications=True)
        assert run.floor.agent(run.source, agent_id).presence == "meal"
        counters = run.connector.health.counters
        assert counters["malformed"] == 0 and counters["unknown_topic"] == 0


# -- production: Daphne and Redis ---------------------------------------------------------------

SEED = """
from streams.models import Connection
c = Connection.of("webhook", name="CRM webhook", slug="crm", field_mapping=%(mapping)r, webhook_secret=%(secret)r)
c.save()
print(c.source_key)
"""


@pytest.mark.redis
async def test_through_a_real_daphne_and_redis_the_floor_converges(tmp_path):
    import subprocess
    import sys

    from tests.processes import ROOT

    prefix = unique_prefix()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "dashboard_project.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "REDIS_URL": REDIS_TEST_URL,
        "REDIS_PREFIX": prefix,
        "CHANNEL_LAYER_PREFIX": prefix,
        "PYTHONUNBUFFERED": "1",
    }

    def manage(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=scaled(60),
            check=True,
        )
        return done.stdout

    await asyncio.to_thread(manage, "migrate", "--noinput", "-v", "0")
    seeded = await asyncio.to_thread(manage, "shell", "-c", SEED % {"mapping": MAPPING, "secret": SECRET})
    source = seeded.strip().splitlines()[-1]
    daphne = Daphne(env, free_port(), tmp_path / "daphne.log")
    queue = RedisHookQueue(REDIS_TEST_URL, prefix=prefix, read_block=0.2)
    sim = SimulatorServer(port=0, queues=3, agents=12, rate=12.0, seed=7, tick=0.05)
    connector = task = None
    try:
        await asyncio.to_thread(daphne.start)
        await sim.start()
        queue_ids = tuple(sorted(sim.truth()["queues"]))
        spec = ConnectionSpec.of("webhook", source, queue_ids=queue_ids, field_mapping=MAPPING, slug="crm")
        floor = Floor()
        connector = WebhookConnector(spec, floor.apply, timing=FAST, queue=queue)
        task = asyncio.create_task(connector.run())
        run = Running(sim, connector, floor)
        run.control(action="webhook_target", url=f"{daphne.url}/hooks/crm/", secret=SECRET)
        await eventually(lambda: sim.webhooks.counters["items"] >= 40, within=SETTLE, what="traffic through Daphne")
        # The worker hands over: deliveries accepted meanwhile wait in Redis for the next one.
        await connector.close()
        await asyncio.gather(task, return_exceptions=True)
        handled = connector.items
        await eventually(
            lambda: sim.webhooks.counters["items"] > handled, within=SETTLE, what="deliveries while no worker reads"
        )
        connector = WebhookConnector(spec, floor.apply, timing=FAST, queue=queue)
        task = asyncio.create_task(connector.run())
        run.connector = connector
        run.control(fault="webhook_duplicate")
        await run.converged()
        await eventually(lambda: not sim.webhooks.describe()["outbox"], within=SETTLE, what="the outbox to drain")
        await eventually(
            lambda: handled + connector.items == sim.webhooks.counters["items"],
            within=SETTLE,
            what="every delivery applied once",
        )
        await eventually(lambda: len(sim.webhooks.probe_results) == 1, within=SETTLE, what="the duplicate's reply")
        assert [p["status"] for p in sim.webhooks.probe_results] == [204]
        assert handled + connector.items == sim.webhooks.counters["items"]
    finally:
        if connector is not None:
            await connector.close()
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
        await sim.stop()
        await asyncio.to_thread(daphne.stop)
        await queue.close()
        await delete_prefix(prefix)
