"""The Genesys connector: its REST client's rules, then the whole loop against the real simulator."""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime

import aiohttp
import pytest
from aiohttp import web

from simulator import control
from simulator.genesys import channels as genesys_channels
from simulator.server import SimulatorServer
from streams import sanity
from streams.floor import Floor
from streams.health import LinkHealth
from streams.link.timing import Timing
from streams.oauth import AuthFailed, TokenProvider, token_for
from streams.schema import QUEUE
from streams.vendors.genesys import reads, subscriptions
from streams.vendors.genesys.connector import GenesysConnector
from streams.vendors.genesys.queues import fetch_queues
from streams.vendors.genesys.rest import GenesysRest, RestError
from streams.vendors.registry import connector_class
from streams.vendors.spec import ConnectionSpec
from tests.timing import eventually, scaled

# -- the REST client, against a scripted server ----------------------------------------


class ScriptedApi:
    """A token endpoint plus one API path whose replies the test scripts in order."""

    def __init__(self) -> None:
        self.replies: list[tuple[int, dict, object]] = []
        self.token_requests = 0
        self.calls: list[tuple[str, str]] = []  # (Authorization, path with query)

    async def token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        return web.json_response({"access_token": f"t{self.token_requests}", "expires_in": 3600})

    async def api(self, request: web.Request) -> web.Response:
        self.calls.append((request.headers.get("Authorization", ""), str(request.rel_url)))
        status, headers, body = self.replies.pop(0) if self.replies else (200, {}, {"ok": True})
        return web.json_response(body, status=status, headers=headers)


@asynccontextmanager
async def scripted_api():
    api = ScriptedApi()
    app = web.Application()
    app.router.add_post("/oauth/token", api.token)
    app.router.add_route("*", "/api/v2/{tail:.*}", api.api)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    try:
        async with aiohttp.ClientSession() as session:
            tokens = TokenProvider(base, "id", "secret", session=session)
            yield api, GenesysRest(base, tokens, session, sleep=sleep), slept
    finally:
        await runner.cleanup()


async def test_it_sends_a_bearer_token():
    async with scripted_api() as (api, rest, _):
        assert await rest.request("GET", "/api/v2/routing/queues") == {"ok": True}
    assert api.calls[0][0] == "Bearer t1"


async def test_it_gets_a_new_token_once_on_401_and_retries_once():
    async with scripted_api() as (api, rest, _):
        api.replies = [(401, {}, {"code": "bad.credentials"})]
        assert await rest.request("GET", "/api/v2/routing/queues") == {"ok": True}
    assert [auth for auth, _ in api.calls] == ["Bearer t1", "Bearer t2"]
    assert api.token_requests == 2


async def test_it_treats_a_second_401_as_an_auth_failure():
    async with scripted_api() as (api, rest, _):
        api.replies = [(401, {}, {}), (401, {}, {}), (200, {}, {})]
        with pytest.raises(AuthFailed):
            await rest.request("GET", "/api/v2/routing/queues")
    assert len(api.calls) == 2  # no tight loop


@pytest.mark.parametrize("status", [429, 502, 503, 504])
async def test_it_retries_retryable_statuses_after_retry_after(status):
    async with scripted_api() as (api, rest, slept):
        api.replies = [(status, {"Retry-After": "7"}, {"code": "too.many.requests.retry.after"})]
        assert await rest.request("GET", "/api/v2/routing/queues") == {"ok": True}
    assert slept == [7.0]
    assert rest.retries == 1


async def test_it_waits_three_seconds_when_retry_after_is_absent():
    async with scripted_api() as (api, rest, slept):
        api.replies = [(503, {}, {})]
        await rest.request("GET", "/api/v2/routing/queues")
    assert slept == [3.0]


async def test_it_gives_up_when_retry_after_exceeds_180_seconds():
    async with scripted_api() as (api, rest, slept):
        api.replies = [(429, {"Retry-After": "181"}, {"code": "too.many.requests.retry.after"})]
        with pytest.raises(RestError) as raised:
            await rest.request("GET", "/api/v2/routing/queues")
    assert raised.value.status == 429
    assert slept == []


@pytest.mark.parametrize("status", [400, 403, 404, 500])
async def test_it_does_not_retry_other_errors(status):
    async with scripted_api() as (api, rest, slept):
        api.replies = [(status, {}, {"message": "no", "code": "some.code", "status": status})]
        with pytest.raises(RestError) as raised:
            await rest.request("GET", "/api/v2/routing/queues")
    assert (raised.value.status, raised.value.code) == (status, "some.code")
    assert len(api.calls) == 1 and slept == []


async def test_it_waits_for_the_rate_limit_window_when_the_allowance_is_used_up():
    async with scripted_api() as (api, rest, slept):
        limit = {"inin-ratelimit-allowed": "300", "inin-ratelimit-count": "300", "inin-ratelimit-reset": "12"}
        api.replies = [(200, limit, {"n": 1})]
        await rest.request("GET", "/api/v2/routing/queues")
        assert rest.rate_limit == {"allowed": 300.0, "count": 300.0, "reset": 12.0}
        await rest.request("GET", "/api/v2/routing/queues")
    assert len(slept) == 1 and 11.0 < slept[0] <= 12.0


async def test_it_waits_out_a_used_up_window_once_even_when_later_replies_lack_the_headers():
    async with scripted_api() as (api, rest, slept):
        limit = {"inin-ratelimit-allowed": "300", "inin-ratelimit-count": "300", "inin-ratelimit-reset": "12"}
        api.replies = [(200, limit, {"n": 1}), (200, {}, {"n": 2}), (200, {}, {"n": 3})]
        for _ in range(3):
            await rest.request("GET", "/api/v2/routing/queues")
    assert len(slept) == 1


async def test_it_follows_next_uri_through_every_page():
    async with scripted_api() as (api, rest, _):
        api.replies = [
            (200, {}, {"entities": [1], "pageNumber": 1, "nextUri": "/api/v2/routing/queues?pageSize=1&pageNumber=2"}),
            (200, {}, {"entities": [2], "pageNumber": 2, "nextUri": "/api/v2/routing/queues?pageSize=1&pageNumber=3"}),
            (200, {}, {"entities": [3], "pageNumber": 3}),
        ]
        pages = [page async for page in rest.pages("/api/v2/routing/queues", {"pageSize": 1})]
    assert [p["entities"] for p in pages] == [[1], [2], [3]]
    assert api.calls[1][1] == "/api/v2/routing/queues?pageSize=1&pageNumber=2"


async def test_it_pages_by_page_count_when_there_is_no_next_uri():
    async with scripted_api() as (api, rest, _):
        api.replies = [
            (200, {}, {"entities": [1], "pageNumber": 1, "pageCount": 2}),
            (200, {}, {"entities": [2], "pageNumber": 2, "pageCount": 2}),
        ]
        pages = [page async for page in rest.pages("/api/v2/routing/queues", [("pageSize", 1), ("id", "a")])]
    assert len(pages) == 2
    assert api.calls[1][1] == "/api/v2/routing/queues?pageSize=1&id=a&pageNumber=2"


async def test_it_keeps_channel_ids_out_of_error_texts():
    async with scripted_api() as (api, rest, _):
        api.replies = [(404, {}, {"code": "not.found"})]
        with pytest.raises(RestError) as raised:
            await rest.request("PUT", "/api/v2/notifications/channels/secret-channel-id/subscriptions", json=[])
    assert "secret-channel-id" not in str(raised.value)
    assert "/api/v2/notifications/channels/{id}/subscriptions" in str(raised.value)


async def test_it_never_sends_the_token_to_another_host():
    async with scripted_api() as (api, rest, _):
        api.replies = [(200, {}, {"entities": [], "nextUri": "https://elsewhere.example/api/v2/x"})]
        with pytest.raises(RestError):
            _ = [page async for page in rest.pages("/api/v2/routing/queues")]
    assert len(api.calls) == 1


async def test_it_reports_an_unreachable_api_as_a_rest_error():
    async with aiohttp.ClientSession() as session:
        tokens = TokenProvider("http://127.0.0.1:9", "id", "secret", session=session)
        await tokens.cache.set(tokens.key, token_for("t", 3600, time.time()))
        rest = GenesysRest("http://127.0.0.1:9", tokens, session)
        with pytest.raises(RestError):
            await asyncio.wait_for(rest.request("GET", "/api/v2/routing/queues"), scaled(10))


# -- the whole connector, against the real simulator ------------------------------------

FAST = Timing(
    heartbeat_period=scaled(0.5),
    ping_interval=scaled(0.2),
    ping_timeout=scaled(0.5),
    open_timeout=scaled(5),
    rest_timeout=scaled(5),
    backoff_first=scaled(0.05),
    backoff_min=scaled(0.1),
    backoff_cap=scaled(0.5),
    healthy_after=scaled(2),
    auth_retry=scaled(60),
)


class Running:
    """A simulator, a connector streaming from it into a real Floor, and what the link went through."""

    def __init__(self, sim: SimulatorServer, connector: GenesysConnector, floor: Floor, states: list[str]) -> None:
        self.sim = sim
        self.connector = connector
        self.floor = floor
        self.states = states

    @property
    def source(self) -> str:
        return self.connector.spec.source

    def watched(self) -> set[str]:
        return set(self.connector.spec.queue_ids)

    def open_sockets(self) -> int:
        channels = self.sim.truth()["channels"].get(self.sim.client_id, {})
        return sum(c["sockets_open"] for c in channels.values())

    def control(self, **payload) -> dict:
        return control.dispatch(self.sim, payload)

    def expected(self) -> dict:
        """Return the truth as the Floor should hold it: watched queues and their members."""
        truth, watched = self.sim.truth(), self.watched()
        agents = {}
        for agent_id, agent in truth["agents"].items():
            queues = sorted(set(agent["queue_ids"]) & watched)
            if queues:
                agents[agent_id] = agent | {"queue_ids": queues}
        return {"queues": {q: truth["queues"][q] for q in watched}, "agents": agents}

    def actual(self) -> dict:
        def strip(state) -> dict:
            # What the vendor reports: the figures the Floor counts itself (rolling ones) are no vendor's truth.
            data = state.as_dict()
            del data["id"]
            for spec in QUEUE.rolling:
                data.pop(spec.name, None)
            return data

        return {
            "queues": {q: strip(self.floor.queue(self.source, q)) for q in self.floor.source_queue_ids(self.source)},
            "agents": {a: strip(self.floor.agent(self.source, a)) for a in self.floor.source_agent_ids(self.source)},
        }


async def converged(run: Running, within: float = 10.0) -> None:
    """Pause the model and wait until the Floor holds exactly the truth."""
    run.sim.pause()
    deadline = time.monotonic() + scaled(within)
    while run.actual() != run.expected():
        if time.monotonic() > deadline:
            assert run.actual() == run.expected()
        await asyncio.sleep(0.05)


@asynccontextmanager
async def streaming(
    *,
    queues: int = 4,
    agents: int = 20,
    rate: float = 2.0,
    watch: int | None = None,
    timing: Timing = FAST,
    secret: str | None = None,
    api_base: str | None = None,
    **sim_options,
):
    """Run a simulator and a connector (watching the first WATCH queues) streaming into a Floor."""
    sim = SimulatorServer(
        port=0, queues=queues, agents=agents, rate=rate, seed=1, heartbeat_period=timing.heartbeat_period, **sim_options
    )
    base = await sim.start()
    queue_ids = tuple(sorted(sim.truth()["queues"]))[:watch]
    spec = ConnectionSpec.of(
        "genesys",
        base_url=api_base or base,
        client_id=sim.client_id,
        client_secret=secret or sim.client_secret,
        queue_ids=queue_ids,
    )
    floor = Floor()
    states: list[str] = []
    health = LinkHealth()
    health.on_change = lambda h: states.append(h.state)
    connector = connector_class("genesys")(spec, floor.apply, health=health, timing=timing)
    task = asyncio.create_task(connector.run())
    try:
        yield Running(sim, connector, floor, states)
    finally:
        await connector.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await sim.stop()


async def live(run: Running) -> None:
    """Wait until the connector reports its link live."""
    await eventually(run.connector.health.is_live, what="the link to be live")


async def test_it_converges_to_the_simulator_truth():
    async with streaming() as run:
        await live(run)
        await asyncio.sleep(scaled(1))  # let contacts come and go on the live stream
        await converged(run)
        health = run.connector.health
        assert health.reconnects == 0
        assert health.ping_p50 is not None and health.ping_p95 >= health.ping_p50
        assert run.connector.snapshots == 1
        assert health.counters["malformed"] == 0


async def test_it_keeps_membership_changes_that_arrive_while_the_snapshot_is_read():
    async with streaming(rate=0) as run:
        await live(run)
        truth = run.sim.truth()
        queue_id = sorted(run.watched())[0]
        agent_id = next(a for a, t in truth["agents"].items() if queue_id in t["queue_ids"] and len(t["queue_ids"]) > 1)
        members_of = run.connector._members_of

        async def leave_after_reading(queue):
            members = await members_of(queue)
            if queue == queue_id and run.connector.snapshots == 1:
                # The agent leaves after REST listed them: the socket's word is the newer one.
                run.control(action="set_membership", user_id=agent_id, queue_id=queue_id, joined=False)
                await eventually(
                    lambda: any(getattr(e, "agent_id", None) == agent_id for e in run.connector.buffered()),
                    what="the leave to arrive during the snapshot",
                )
            return members

        run.connector._members_of = leave_after_reading
        run.connector.request_resync("test")
        await eventually(lambda: run.connector.snapshots == 2, what="the second snapshot")
        run.connector._members_of = members_of
        assert agent_id not in run.connector.members[queue_id]
        run.control(action="set_membership", user_id=agent_id, queue_id=queue_id, joined=True)
        await converged(run)
        assert queue_id in run.floor.agent("c1", agent_id).queue_ids


async def test_it_follows_the_stream_after_the_snapshot():
    async with streaming(rate=0) as run:
        await live(run)
        queue_id = sorted(run.watched())[0]
        agent_id = next(a for a, t in run.sim.truth()["agents"].items() if queue_id in t["queue_ids"])
        run.control(action="set_presence", user_id=agent_id, presence="MEAL")
        run.control(action="arrive", queue_id=queue_id, count=3)
        await converged(run)
        assert run.floor.agent("c1", agent_id).presence == "meal"
        assert run.connector.snapshots == 1  # the changes came over the socket


async def test_it_survives_socket_closing_with_make_before_break():
    async with streaming() as run:
        await live(run)
        run.control(action="socket_closing", delay=scaled(3))
        await eventually(lambda: run.connector.rollovers == 1, what="a rollover")
        await eventually(lambda: run.open_sockets() == 1, what="exactly one socket open")
        await eventually(lambda: run.connector.snapshots == 2, what="the snapshot after the switch")
        channels = run.sim.truth()["channels"][run.sim.client_id].values()
        # The old channel was unsubscribed: the vendor no longer publishes to it.
        assert sorted(c["topics"] for c in channels)[0] == 0
        assert "reconnecting" not in run.states and run.connector.health.reconnects == 0
        await converged(run)
        # The old socket's scheduled close must not disturb the new link.
        await asyncio.sleep(scaled(3.2))
        assert run.connector.health.is_live() and run.connector.health.reconnects == 0
        assert run.open_sockets() == 1


async def test_a_failed_rollover_keeps_the_link_and_its_backoff():
    async with streaming() as run:
        await live(run)
        run.control(fault="rest_error", status=400, count=1, path="/api/v2/notifications/channels")
        run.connector.request_rollover("test")
        await eventually(lambda: "rollover failed" in run.connector.health.last_error, what="the failed rollover")
        # The current link streams on, and its reconnect backoff is untouched.
        assert run.connector.health.is_live() and run.connector.backoff.attempts == 0
        await eventually(lambda: run.connector.rollovers == 1, what="the retried rollover")
        assert run.connector.health.reconnects == 0
        await converged(run)


async def test_it_rolls_channels_over_before_they_expire(monkeypatch):
    # Channels that live 2 s: each is replaced halfway through its life, without a gap.
    monkeypatch.setattr(genesys_channels, "CHANNEL_LIFETIME", scaled(2.0))
    async with streaming() as run:
        await live(run)
        await eventually(lambda: run.connector.rollovers >= 2, what="two rollovers")
        assert run.connector.health.reconnects == 0 and "reconnecting" not in run.states
        await eventually(lambda: run.open_sockets() == 1, what="exactly one socket open")
        await converged(run)


async def test_it_reconnects_with_a_snapshot_after_the_socket_drops():
    async with streaming() as run:
        await live(run)
        run.control(fault="drop_sockets")
        await eventually(lambda: run.connector.health.reconnects == 1, what="a reconnect")
        await live(run)
        assert "reconnecting" in run.states
        assert run.connector.snapshots == 2
        await converged(run)
        assert run.open_sockets() == 1


@pytest.mark.parametrize(
    ("ping_interval", "reason"),
    [(scaled(0.2), "ping unanswered"), (0.0, "no heartbeat or pong")],
    ids=["by-ping", "by-heartbeat"],
)
async def test_it_detects_a_silent_link_and_reconnects(ping_interval, reason):
    async with StallProxy() as proxy:
        timing = replace(FAST, ping_interval=ping_interval)
        async with streaming(timing=timing, api_base=proxy.url) as run:
            await proxy.aim(run.sim.port)
            await live(run)
            started = time.monotonic()
            proxy.stall_sockets()  # the socket stays open but nothing gets through any more
            await eventually(lambda: run.connector.health.reconnects == 1, what="the dead link to be noticed")
            noticed = time.monotonic() - started
            # Within about two heartbeat periods (1 s here), not after a TCP timeout.
            assert noticed < scaled(2.0)
            assert reason in run.connector.health.last_error
            await live(run)
            await converged(run)


async def test_it_takes_added_queues_without_dropping_the_link():
    async with streaming(watch=2) as run:
        await live(run)
        all_queues = tuple(sorted(run.sim.truth()["queues"]))
        run.connector.update(replace(run.connector.spec, queue_ids=all_queues))
        await eventually(lambda: run.floor.source_queue_ids("c1") == set(all_queues), what="the new queues")
        await converged(run)
        assert run.connector.sockets_opened == 1
        assert run.connector.health.reconnects == 0 and "reconnecting" not in run.states


async def test_it_drops_queues_no_longer_watched():
    async with streaming() as run:
        await live(run)
        kept = tuple(sorted(run.watched()))[:1]
        run.connector.update(replace(run.connector.spec, queue_ids=kept))
        await eventually(lambda: run.floor.source_queue_ids("c1") == set(kept), what="the queues to go")
        await converged(run)


async def test_it_subscribes_an_agent_who_joins_a_watched_queue():
    async with streaming(watch=1, rate=0) as run:
        await live(run)
        (queue_id,) = run.watched()
        newcomer = next(a for a, t in run.sim.truth()["agents"].items() if queue_id not in t["queue_ids"])
        assert run.floor.agent("c1", newcomer) is None
        run.control(action="set_membership", user_id=newcomer, queue_id=queue_id, joined=True)
        await eventually(lambda: run.floor.agent("c1", newcomer) is not None, what="the newcomer")
        await eventually(lambda: run.floor.agent("c1", newcomer).name is not None, what="the newcomer's state")
        # Its own topic is live now: a presence change arrives over the socket.
        run.control(action="set_presence", user_id=newcomer, presence="TRAINING")
        await eventually(lambda: run.floor.agent("c1", newcomer).presence == "training", what="the presence")
        await converged(run)
        assert run.connector.snapshots == 1
        # Leaving the only watched queue removes the agent's row.
        run.sim.resume()
        run.control(action="set_membership", user_id=newcomer, queue_id=queue_id, joined=False)
        await eventually(lambda: run.floor.agent("c1", newcomer) is None, what="the agent to leave")
        await converged(run)


async def test_it_keeps_streaming_when_a_watched_queue_is_gone():
    async with streaming(rate=0) as run:
        real = run.connector.spec.queue_ids
        run.connector.update(replace(run.connector.spec, queue_ids=(*real, "deleted-queue")))
        await live(run)
        await eventually(lambda: "deleted-queue" in run.floor.source_queue_ids("c1"), what="the resync")
        assert run.connector.health.counters["queue_not_found"] >= 1
        assert run.connector.health.reconnects == 0
        truth = run.sim.truth()["queues"]
        for queue_id in real:
            row = run.floor.queue("c1", queue_id).as_dict()
            assert row["name"] == truth[queue_id]["name"]


async def test_it_splits_more_than_a_thousand_topics_across_channels():
    async with streaming(queues=1, agents=1100, rate=0, presence_change_mean=0) as run:
        await live(run)
        channels = run.sim.truth()["channels"][run.sim.client_id]
        assert sorted(c["topics"] for c in channels.values()) == [102, 1000]
        assert run.open_sockets() == 2
        await converged(run)


async def test_it_refreshes_the_token_when_the_server_revokes_it():
    async with streaming() as run:
        await live(run)
        first = run.connector.tokens.requests
        run.control(fault="revoke_tokens")
        run.connector.update(replace(run.connector.spec, queue_ids=tuple(sorted(run.watched()))[:2]))
        await eventually(lambda: run.connector.tokens.requests == first + 1, what="a new token")
        await converged(run)
        assert run.connector.health.reconnects == 0


async def test_it_rolls_over_on_token_revoked_and_resubscribes_on_no_longer_subscribed():
    async with streaming() as run:
        await live(run)
        socket = run.connector.link.sockets[0]
        run.connector.handle(socket, frame("v2.system.no_longer_subscribed." + socket.name))
        await eventually(lambda: run.connector.snapshots == 2, what="a resync")
        requests = run.connector.tokens.requests
        run.connector.handle(socket, frame("v2.system.token_revoked." + socket.name))
        await eventually(lambda: run.connector.rollovers == 1, what="a rollover")
        assert run.connector.tokens.requests == requests + 1
        await eventually(lambda: run.open_sockets() == 1, what="one socket")
        await converged(run)
        assert run.connector.health.reconnects == 0


async def test_it_converges_after_a_storm_of_faults():
    async with streaming(rate=5.0) as run:
        await live(run)
        truth = run.sim.truth()
        queue_id = sorted(run.watched())[0]
        agents = sorted(truth["agents"])
        storm = [
            {"action": "socket_closing", "delay": scaled(0.3)},
            {"fault": "rest_error", "status": 500, "count": 1, "path": "/api/v2/analytics/"},
            {"action": "set_membership", "user_id": agents[0], "queue_id": queue_id, "joined": False},
            {"fault": "drop_sockets"},
            {"action": "set_membership", "user_id": agents[1], "queue_id": queue_id, "joined": True},
            {"fault": "rest_error", "status": 503, "count": 1, "path": "/api/v2/routing/", "retry_after": 0},
            {"action": "socket_closing", "delay": 0},
            {"fault": "revoke_tokens"},
        ]
        for payload in storm:
            run.control(**payload)
            await asyncio.sleep(scaled(0.25))
        await live(run)
        await converged(run)
        await eventually(lambda: run.open_sockets() == 1, what="exactly one socket open")


async def test_it_counts_and_skips_malformed_and_unknown_frames():
    async with streaming(rate=0) as run:
        await live(run)
        socket = run.connector.link.sockets[0]
        before = dict(run.floor.queues)
        for junk in ("{", "[]", frame("v2.analytics.queues.x.observations", body="oops"), frame("v2.weird.topic")):
            run.connector.handle(socket, junk)
        counters = run.connector.health.counters
        assert (counters["malformed"], counters["unknown_topic"]) == (3, 1)
        assert run.floor.queues == before
        assert run.connector.health.is_live()


async def test_it_shows_degraded_while_the_snapshot_fails_and_recovers_on_the_same_link():
    async with streaming() as run:
        run.control(fault="rest_error", status=500, count=2, path="/api/v2/analytics/queues/observations")
        await live(run)
        assert "degraded" in run.states
        assert run.connector.health.reconnects == 0 and run.connector.sockets_opened == 1
        await converged(run)


async def test_it_waits_minutes_after_an_auth_failure_instead_of_looping():
    async with streaming(secret="wrong") as run:
        await eventually(lambda: run.connector.health.state == "auth_failed", what="auth_failed")
        await asyncio.sleep(scaled(0.5))
        assert run.connector.tokens.requests == 1
        assert "wrong" not in run.connector.health.as_dict().__repr__()
        assert f"retrying in {scaled(60):.0f} s" in run.connector.health.detail


async def test_it_closes_cleanly_and_idempotently():
    async with streaming() as run:
        await live(run)
        await run.connector.close()
        await run.connector.close()
        await eventually(lambda: run.open_sockets() == 0, what="the socket to close")
        assert run.connector.health.state == "disabled"


async def test_fetch_queues_lists_every_page():
    sim = SimulatorServer(port=0, queues=60, agents=5, rate=0)
    base = await sim.start()
    try:
        spec = ConnectionSpec.of("genesys", base_url=base, client_id=sim.client_id, client_secret=sim.client_secret)
        queues = await fetch_queues(spec)
    finally:
        await sim.stop()
    truth = sim.truth()["queues"]
    assert {q["id"]: q["name"] for q in queues} == {q: t["name"] for q, t in truth.items()}


def test_the_spec_never_shows_its_secret():
    spec = ConnectionSpec.of("genesys", base_url="https://api.x", client_id="id", client_secret="hunter2")
    assert "hunter2" not in repr(spec)


def test_the_registry_knows_genesys_and_refuses_strangers():
    assert connector_class("genesys") is GenesysConnector
    with pytest.raises(ValueError):
        connector_class("carrier-pigeon")


def frame(topic: str, body=None) -> str:
    return json.dumps({"topicName": topic, "version": "2", "eventBody": {} if body is None else body})


class StallProxy:
    """A TCP proxy in front of the simulator that can silence its notification sockets without closing them."""

    def __init__(self) -> None:
        self.target_port: int | None = None
        self.server: asyncio.Server | None = None
        self.sockets: list[dict] = []
        self.url = ""

    async def __aenter__(self) -> StallProxy:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        self._aimed = asyncio.Event()
        return self

    async def __aexit__(self, *exc) -> None:
        self.server.close()
        for conn in self.sockets:
            conn["writer"].close()

    async def aim(self, port: int) -> None:
        self.target_port = port
        self._aimed.set()

    def stall_sockets(self) -> None:
        for conn in self.sockets:
            conn["stalled"] = True

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._aimed.wait()
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        first = await reader.read(65536)
        conn = {"stalled": False, "writer": writer}
        if first.startswith(b"GET /channels/"):
            self.sockets.append(conn)
        up_writer.write(first)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    if not conn["stalled"]:
                        dst.write(data)
                        await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                if not conn["stalled"]:
                    dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def test_a_bad_time_read_while_welcoming_a_new_member_is_counted_on_the_link(monkeypatch):
    real = reads.parse_members

    def garbled(source, page):
        # Every member's presence dated "garbage": the member is kept, the date left out and counted.
        for entity in page.get("entities", []):
            if isinstance(entity.get("presence"), dict):
                entity["presence"]["modifiedDate"] = "garbage"
        return real(source, page)

    async with streaming(watch=1, rate=0) as run:
        await live(run)
        (queue_id,) = run.watched()
        newcomer = next(a for a, t in run.sim.truth()["agents"].items() if queue_id not in t["queue_ids"])
        before = run.connector.health.counters[sanity.BAD_TIME]
        monkeypatch.setattr(reads, "parse_members", garbled)
        run.control(action="set_membership", user_id=newcomer, queue_id=queue_id, joined=True)
        await eventually(lambda: run.floor.agent("c1", newcomer) is not None, what="the newcomer")
        await eventually(lambda: run.floor.agent("c1", newcomer).presence is not None, what="the newcomer's state")
        # The welcome's REST read runs in maintenance, outside handle() and snapshot(): still counted.
        assert run.connector.health.counters[sanity.BAD_TIME] > before
        assert run.connector.snapshots == 1


class ChannelApi:
    """Genesys' channel-creation call, answering with the given ``expires``."""

    def __init__(self, expires) -> None:
        self.expires = expires

    async def request(self, method: str, path: str, *, params=None, json=None):
        assert (method, path) == ("POST", "/api/v2/notifications/channels")
        return {"id": "ch1", "connectUri": "wss://streaming.example.com/channels/ch1", "expires": self.expires}


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize(
    ("ahead", "kept"),
    [(3600, True), (47 * 3600, True), (-60, False), (30 * 86_400, False), (None, False)],
    ids=["an-hour", "47-hours", "past", "a-month", "garbage"],
)
async def test_a_channel_expiry_outside_the_next_48_hours_is_taken_as_24_hours(ahead, kept):
    spec = ConnectionSpec.of("genesys")
    connector = GenesysConnector(spec, lambda event: None, health=LinkHealth())
    before = time.time()
    connector.rest = ChannelApi("garbage" if ahead is None else _iso(round(before) + ahead))
    opened = {}

    async def connect_socket(uri, *, name, expires_at, data):
        opened["expires_at"] = expires_at

    connector.connect_socket = connect_socket
    with sanity.counting(connector.health.count):
        await connector._open_channel([])
    after = time.time()
    if kept:
        assert opened["expires_at"] == round(before) + ahead
    else:
        # Neither due at once (a loop of channels and snapshots) nor never: the usual 24 hours.
        lifetime = subscriptions.CHANNEL_LIFETIME
        assert before + lifetime <= opened["expires_at"] <= after + lifetime
    assert connector.health.counters[sanity.BAD_TIME] == (0 if kept else 1)


async def test_a_socket_holds_only_a_few_unread_frames():
    # websockets' default (16 frames of up to 4 MiB) would let one socket hold 64 MiB unread.
    async with streaming(rate=0) as run:
        await live(run)
        (socket,) = run.connector.link.sockets
        assert socket.ws.recv_messages.high <= 4
