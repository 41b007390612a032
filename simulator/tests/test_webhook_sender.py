"""The simulator's webhook sender: signing, batching, the retry policy of a real platform, EventBridge envelopes."""

from __future__ import annotations

import json
import time
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from simulator import control
from simulator.server import SimulatorServer
from simulator.webhooks import EVENTBRIDGE_SOURCE
from streams.hooks.bodies import is_envelope, parse_body
from streams.hooks.signatures import signature
from tests.timing import eventually

SECRET = "sender-secret"


class Receiver:
    """A webhook endpoint whose replies the test scripts; it records every delivery."""

    def __init__(self) -> None:
        self.replies: list[tuple[int, dict]] = []
        self.deliveries: list[tuple[bytes, dict]] = []
        self.arrived: list[float] = []  # monotonic time of each delivery

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.deliveries.append((body, dict(request.headers)))
        self.arrived.append(time.monotonic())
        status, headers = self.replies.pop(0) if self.replies else (204, {})
        return web.Response(status=status, headers=headers)


@asynccontextmanager
async def sending(*, eventbridge: bool = False, rate: float = 0.0):
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/hooks/crm/", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/hooks/crm/"
    sim = SimulatorServer(port=0, queues=2, agents=6, rate=rate, seed=2, tick=0.02, analytics_min_interval=0.1)
    sim.webhooks.retry_first = 0.02
    await sim.start()
    try:
        yield sim, receiver, url
    finally:
        await sim.stop()
        await runner.cleanup()


def items_of(body: bytes) -> list[dict]:
    return json.loads(body)


async def test_deliveries_are_signed_and_timestamped_as_the_view_expects():
    async with sending() as (sim, receiver, url):
        queue_id = next(iter(sim.model.queues))
        control.dispatch(sim, {"action": "webhook_target", "url": url, "secret": SECRET})
        control.dispatch(sim, {"action": "arrive", "queue_id": queue_id, "count": 2})
        await eventually(lambda: receiver.deliveries, what="a delivery")
        body, headers = receiver.deliveries[0]
        assert headers["X-Floorview-Signature"] == signature(SECRET, body)
        assert abs(int(headers["X-Floorview-Timestamp"]) - time.time()) < 5
        records = parse_body(body)
        assert {r["interaction_id"] for r in records} <= set(sim.model.contacts)
        assert SECRET not in json.dumps(control.dispatch(sim, {"fault": "clear"}))


async def test_the_live_contacts_go_first_each_with_an_id_of_its_own():
    async with sending() as (sim, receiver, url):
        queue_id = next(iter(sim.model.queues))
        contacts = control.dispatch(sim, {"action": "arrive", "queue_id": queue_id, "count": 3})["result"]
        control.dispatch(sim, {"action": "webhook_target", "url": url, "secret": SECRET})
        await eventually(lambda: receiver.deliveries, what="the first picture")
        records = items_of(receiver.deliveries[0][0])
        assert {r["interaction_id"] for r in records} == set(contacts["contact_ids"])
        assert len({r["id"] for r in records}) == len(records)


async def test_a_5xx_is_retried_with_the_same_body_and_a_4xx_is_dropped():
    async with sending() as (sim, receiver, url):
        queue_id = next(iter(sim.model.queues))
        receiver.replies = [(503, {}), (500, {}), (204, {}), (400, {})]
        control.dispatch(sim, {"action": "webhook_target", "url": url, "secret": SECRET})
        control.dispatch(sim, {"action": "arrive", "queue_id": queue_id})
        await eventually(lambda: len(receiver.deliveries) == 3, what="two retries")
        bodies = [body for body, _ in receiver.deliveries]
        assert bodies[0] == bodies[1] == bodies[2]  # same record ids: the receiver knows what it has
        control.dispatch(sim, {"action": "arrive", "queue_id": queue_id})
        await eventually(lambda: sim.webhooks.counters["refused"] == 1, what="the refused batch")
        control.dispatch(sim, {"action": "arrive", "queue_id": queue_id})
        await eventually(lambda: len(receiver.deliveries) == 5, what="the next batch")
        assert receiver.deliveries[4][0] != receiver.deliveries[3][0]  # the refused one was not sent again
        assert sim.webhooks.counters["retries"] == 2


async def test_a_429_is_retried_after_its_retry_after():
    async with sending() as (sim, receiver, url):
        receiver.replies = [(429, {"Retry-After": "1"})]
        control.dispatch(sim, {"action": "webhook_target", "url": url, "secret": SECRET})
        control.dispatch(sim, {"action": "arrive", "queue_id": next(iter(sim.model.queues))})
        await eventually(lambda: len(receiver.deliveries) == 2, what="the retry")
        assert receiver.deliveries[0][0] == receiver.deliveries[1][0]
        # Its own backoff would have come back after about 20 ms: it waited as it was told.
        assert receiver.arrived[1] - receiver.arrived[0] >= 0.95
        # The sender counts the batch once the receiver's reply is back, a moment after it arrived.
        await eventually(lambda: sim.webhooks.counters["batches"] == 1, what="the acknowledged batch")


async def test_eventbridge_wraps_genesys_notifications_in_envelopes():
    async with sending() as (sim, receiver, url):
        control.dispatch(sim, {"action": "webhook_target", "url": url, "secret": SECRET, "eventbridge": True})
        agent_id = next(iter(sim.model.agents))
        control.dispatch(sim, {"action": "set_presence", "user_id": agent_id, "presence": "BREAK"})
        await eventually(
            lambda: any(
                isinstance(i, dict)
                and i.get("detail", {}).get("topicName") == f"v2.users.{agent_id}.activity"
                and i["detail"]["eventBody"]["presence"]["presenceDefinition"]["systemPresence"] == "BREAK"
                for body, _ in receiver.deliveries
                for i in items_of(body)
            ),
            what="the activity notification",
        )
        envelopes = [i for body, _ in receiver.deliveries for i in items_of(body) if is_envelope(i)]
        kinds = {e["detail-type"] for e in envelopes}
        assert kinds == {"v2.analytics.queues.{id}.observations", "v2.users.{id}.activity"}
        for envelope in envelopes:
            assert envelope["source"] == EVENTBRIDGE_SOURCE and envelope["version"] == "0"
            assert set(envelope["detail"]) >= {"topicName", "version", "eventBody", "metadata", "timestamp"}
        assert len({e["id"] for e in envelopes}) == len(envelopes)


@pytest.mark.parametrize(
    "payload",
    [
        {"action": "webhook_target", "url": "ftp://x", "secret": "s"},
        {"action": "webhook_target", "url": "http://127.0.0.1:9/hooks/x/"},
        {"fault": "webhook_duplicate"},
    ],
)
async def test_control_refuses_what_cannot_be_done(payload):
    async with sending() as (sim, _receiver, _url):
        with pytest.raises(control.ControlError):
            control.dispatch(sim, payload)
