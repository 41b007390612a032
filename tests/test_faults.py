"""Fault injection: the simulator's fault switches, and the connector surviving every fault in the matrix.

Each matrix case injects one fault through ``/simulator/control`` (the same
dispatcher the HTTP endpoint uses) into a simulator streaming to a real
connector and Floor, then checks three things: the connector survived (its
task still runs, nothing logged an unhandled error), it made a bounded number
of attempts (reconnects, token requests, channel creations: no spinning), and
the Floor converges to the truth within the backoff delay plus 2 s.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from simulator import control
from simulator.management.commands.simulate import parse_fault
from simulator.server import SimulatorServer
from streams.link.timing import Timing
from tests.simulator_util import basic, get_token, new_channel, next_message, on_topic
from tests.test_genesys_connector import FAST, Running, converged, eventually, live, streaming
from tests.timing import scaled

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# -- the matrix ------------------------------------------------------------------------------

Step = dict[str, Any] | Callable[[Running], Awaitable[None]]


@dataclass(frozen=True)
class Seen:
    """What the connector and the simulator had counted when the fault went in."""

    reconnects: int
    rollovers: int
    snapshots: int
    tokens: int  # token requests the simulator answered
    channels: int  # channels the simulator created
    counters: dict[str, int]

    @classmethod
    def now(cls, run: Running) -> Seen:
        c = run.connector
        return cls(
            c.health.reconnects,
            c.rollovers,
            c.snapshots,
            run.sim.api.counters.token_requests,
            run.sim.hub.channels_created,
            dict(c.health.counters),
        )


@dataclass(frozen=True)
class Case:
    """One fault: what to inject, how the connector shows it acted, and the most attempts it may make."""

    id: str
    steps: tuple[Step, ...]
    handled: Callable[[Running, Seen], bool]
    reconnects: int = 0
    tokens: int = 0
    channels: int = 0
    settle: float = 0.0  # waits the fault imposes on purpose (Retry-After, an outage), in seconds
    min_gap: float = 0.0  # at least this long from the fault to the next channel creation (Retry-After)
    noted: tuple[str, ...] = ()  # connection events the audit log must hold afterwards
    timing: Timing = field(default=FAST)


def reconnected(run: Running, seen: Seen) -> bool:
    return run.connector.health.reconnects > seen.reconnects


def rolled_over(run: Running, seen: Seen) -> bool:
    return run.connector.rollovers > seen.rollovers


def resynced(run: Running, seen: Seen) -> bool:
    return run.connector.snapshots > seen.snapshots


def counted(name: str, at_least: int) -> Callable[[Running, Seen], bool]:
    def check(run: Running, seen: Seen) -> bool:
        return run.connector.health.counters[name] - seen.counters.get(name, 0) >= at_least

    return check


def both(*checks: Callable[[Running, Seen], bool]) -> Callable[[Running, Seen], bool]:
    return lambda run, seen: all(check(run, seen) for check in checks)


async def tokens_expired(run: Running) -> None:
    """Wait until every token the simulator issued has run out (the connector still holds one)."""
    await eventually(lambda: run.sim.tokens.live() == 0, within=3, what="the tokens to expire")


# What the audit log shows for any reconnect: why the link closed, the wait, the new connection.
RECONNECT_NOTES = {"closed", "backoff_scheduled", "connected"}

DROP = {"fault": "drop_sockets"}
REVOKE_SILENTLY = {"fault": "revoke_tokens"}

CASES = [
    Case("drop", (DROP,), reconnected, reconnects=1, channels=1),
    Case("close-1001", ({"fault": "close_sockets", "code": 1001},), reconnected, reconnects=1, channels=1),
    Case("close-1011", ({"fault": "close_sockets", "code": 1011},), reconnected, reconnects=1, channels=1),
    # Make-before-break: a new link before the old one closes, and no reconnect at all.
    Case("socket-closing", ({"fault": "socket_closing", "delay": scaled(0.5)},), rolled_over, channels=1),
    Case(
        "stall",
        ({"fault": "stall"},),
        both(reconnected, lambda run, seen: "ping unanswered" in run.connector.health.last_error),
        reconnects=1,
        channels=1,
    ),
    Case(
        "token-revoked",
        ({"fault": "revoke_tokens", "notify": True},),
        both(rolled_over, resynced),
        tokens=1,
        channels=1,
        noted=("token_refreshed", "connected"),
    ),
    Case(
        "rest-401-once",
        (REVOKE_SILENTLY, DROP),
        reconnected,
        reconnects=1,
        tokens=1,
        channels=1,
        noted=("token_refreshed",),
    ),
    Case(
        "no-longer-subscribed",
        ({"fault": "no_longer_subscribed"},),
        both(resynced, lambda run, seen: channel_topics(run) > 0),
    ),
    Case(
        "rest-429-retry-after",
        ({"fault": "rest_error", "status": 429, "count": 1, "retry_after": 1}, DROP),
        reconnected,
        reconnects=1,
        channels=1,
        settle=1,
        min_gap=1,
    ),
    # Past max_retry_after the REST client gives up; the loop still waits the (capped) Retry-After.
    Case(
        "rest-429-too-long",
        ({"fault": "rest_error", "status": 429, "count": 1, "retry_after": 30}, DROP),
        reconnected,
        reconnects=2,
        channels=1,
        settle=1,
        min_gap=1,
        timing=replace(FAST, max_retry_after=1.0),
    ),
    Case(
        "token-429-retry-after",
        ({"fault": "rest_error", "status": 429, "path": "/oauth/token", "retry_after": 1}, REVOKE_SILENTLY, DROP),
        reconnected,
        reconnects=2,
        tokens=2,
        channels=1,
        settle=1,
        min_gap=1,
        noted=("token_refreshed",),
    ),
    Case(
        "token-503-burst",
        ({"fault": "rest_error", "status": 503, "count": 2, "path": "/oauth/token"}, REVOKE_SILENTLY, DROP),
        reconnected,
        reconnects=3,
        tokens=3,
        channels=1,
        noted=("token_refreshed",),
    ),
    Case(
        "rest-500-burst",
        ({"fault": "rest_error", "status": 500, "count": 3}, DROP),
        reconnected,
        reconnects=4,
        channels=1,
    ),
    # Six 502s outlast the client's five retries: one more reconnect, then the seventh call goes through.
    Case(
        "rest-502-burst",
        ({"fault": "rest_error", "status": 502, "count": 6, "retry_after": 0}, DROP),
        reconnected,
        reconnects=2,
        channels=1,
    ),
    Case(
        "rest-503-burst",
        ({"fault": "rest_error", "status": 503, "count": 3, "retry_after": 0}, DROP),
        lambda run, seen: reconnected(run, seen) and run.sim.faults.injected >= 3,
        reconnects=1,
        channels=1,
    ),
    Case("malformed-frames", ({"fault": "malformed_frames", "count": 5},), counted("malformed", 5)),
    Case("unknown-topics", ({"fault": "unknown_topics", "count": 3},), counted("unknown_topic", 3)),
    Case(
        "oversized-frame",
        ({"fault": "oversized_frame"},),
        both(counted("oversized_frame", 1), reconnected),
        reconnects=1,
        channels=1,
    ),
    Case("evicted", ({"fault": "evict_channel"},), reconnected, reconnects=1, channels=1),
    Case(
        "kicked-by-a-second-socket",
        ({"fault": "kick_socket", "hold": scaled(0.5)},),
        both(reconnected, lambda run, seen: "1000" in run.connector.health.last_error),
        reconnects=1,
        channels=1,
        settle=scaled(0.5),
    ),
    Case(
        "token-expires-mid-stream",
        ({"fault": "token_lifetime", "seconds": 1, "existing": True}, tokens_expired, DROP),
        reconnected,
        reconnects=1,
        tokens=3,  # one after the expiry, and one each time a 1 s token is past half its life
        channels=1,
        noted=("token_refreshed",),
    ),
    # Six 500s outlast the client's five retries: the snapshot after the reconnect fails once, is noted as
    # an error, and is retried on its own backoff.
    Case(
        "snapshot-fails",
        ({"fault": "rest_error", "status": 500, "count": 6, "retry_after": 0, "path": "/api/v2/analytics/"}, DROP),
        lambda run, seen: "snapshot failed" in run.connector.health.last_error,
        reconnects=1,
        channels=1,
        noted=("error",),
    ),
    Case(
        "unreachable",
        ({"fault": "unreachable", "seconds": scaled(1.0)},),
        both(reconnected, lambda run, seen: run.sim.faults.refused > 0),
        # Attempts every backoff_cap at most (0.375 to 0.5 s once grown) for the outage: a handful.
        reconnects=12,
        channels=1,
        settle=scaled(1.0),
    ),
]


def channel_topics(run: Running) -> int:
    """Return how many topics the connector's current channel holds at the simulator."""
    channel_id = run.connector.link.sockets[0].name if run.connector.link else None
    return run.sim.truth()["channels"][run.sim.client_id].get(channel_id, {}).get("topics", 0)


def connector_task() -> asyncio.Task:
    (task,) = [t for t in asyncio.all_tasks() if t.get_coro().__qualname__ == "Connector.run"]
    return task


async def inject(run: Running, steps: tuple[Step, ...]) -> None:
    for step in steps:
        if callable(step):
            await step(run)
        else:
            run.control(**step)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_the_connector_survives(case: Case, caplog):
    caplog.set_level(logging.WARNING)
    async with streaming(timing=case.timing, analytics_min_interval=0.2) as run:
        await live(run)
        run.connector.health.take_events()
        seen = Seen.now(run)
        started = time.monotonic()
        await inject(run, case.steps)
        if case.min_gap:
            await eventually(lambda: run.sim.hub.channels_created > seen.channels, within=5, what="a new channel")
            # Retry-After is the server's word in whole seconds: not scaled.
            assert time.monotonic() - started >= case.min_gap * 0.95
        await eventually(lambda: case.handled(run, seen), within=5, what=f"the connector to handle {case.id}")
        # Contacts that arrive while the link may be down: only a resync can bring them in.
        run.control(action="arrive", queue_id=sorted(run.watched())[0], count=2)
        run.control(fault="clear")
        recovery = case.timing.backoff_cap + case.settle + 2
        await eventually(run.connector.health.is_live, within=recovery, what="the link to be live again")
        await converged(run, within=recovery)

        connector = run.connector
        assert not connector_task().done()
        assert connector.health.counters["handler_error"] == connector.health.counters["sink_error"] == 0
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
        assert connector.health.reconnects - seen.reconnects <= case.reconnects
        assert run.sim.api.counters.token_requests - seen.tokens <= case.tokens
        assert run.sim.hub.channels_created - seen.channels <= case.channels
        await eventually(lambda: run.open_sockets() == 1, within=case.settle + 2, what="exactly one socket open")
        assert connector.health.is_live()
        noted = {event["kind"] for event in connector.health.take_events()}
        assert set(case.noted) | (RECONNECT_NOTES if case.reconnects else set()) <= noted


# -- the auth-failed path ------------------------------------------------------------------------

SLOW_AUTH = replace(FAST, auth_retry=scaled(1.5))


async def test_it_refreshes_once_after_a_401_then_waits_auth_retry_before_trying_again():
    async with streaming(timing=SLOW_AUTH) as run:
        await live(run)
        tokens = run.sim.api.counters.token_requests
        # The token gets 401; the fresh one gets 401 too: an auth failure, not a loop.
        run.control(fault="rest_error", status=401, count=2)
        run.control(fault="drop_sockets")
        await eventually(lambda: run.connector.health.state == "auth_failed", what="auth_failed")
        failed_at = time.monotonic()
        assert run.sim.api.counters.token_requests == tokens + 1
        assert f"retrying in {SLOW_AUTH.auth_retry:.0f} s" in run.connector.health.detail
        await live(run)
        assert time.monotonic() - failed_at >= SLOW_AUTH.auth_retry * 0.9
        assert run.sim.api.counters.token_requests == tokens + 2
        await converged(run)


async def test_it_retries_refused_credentials_only_every_auth_retry_and_recovers_once_they_work():
    async with streaming(timing=SLOW_AUTH) as run:
        await live(run)
        tokens = run.sim.api.counters.token_requests
        # Credentials revoked too: Genesys says token_revoked on the socket, and no new token comes.
        run.control(fault="refuse_credentials")
        run.control(fault="revoke_tokens", notify=True)
        await eventually(lambda: run.connector.health.state == "auth_failed", what="auth_failed")
        failed_at = time.monotonic()
        assert run.sim.api.counters.token_requests == tokens + 1
        await eventually(
            lambda: run.sim.api.counters.token_requests == tokens + 2, within=5, what="the slow second try"
        )
        assert time.monotonic() - failed_at >= SLOW_AUTH.auth_retry * 0.9
        assert run.connector.health.state == "auth_failed"
        run.control(fault="clear")
        await live(run)
        assert run.sim.api.counters.token_requests <= tokens + 3
        assert not connector_task().done()
        await converged(run)


# -- the switches themselves, over HTTP ----------------------------------------------------------


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def sim():
    server = SimulatorServer(client_secret="s3cret", rate=0.0, heartbeat_period=scaled(0.2))
    await server.start()
    yield server
    await server.stop()


async def post(http: aiohttp.ClientSession, sim, payload: dict) -> dict:
    async with http.post(f"{sim.base_url}/simulator/control", json=payload) as r:
        body = await r.json()
        assert r.status == 200, body
        return body["result"]


async def test_control_lists_every_fault_with_params_and_the_current_settings(sim, http):
    await post(http, sim, {"fault": "unreachable", "seconds": 30})
    await post(http, sim, {"fault": "token_lifetime", "seconds": 300})
    async with http.get(f"{sim.base_url}/simulator/control") as r:
        listing = await r.json()
    faults = {f["fault"]: f["params"] for f in listing["faults"]}
    assert set(control.FAULTS) == set(faults)
    assert {"stall", "close_sockets", "unreachable", "oversized_frame", "kick_socket", "socket_closing"} <= set(faults)
    assert "code" in faults["close_sockets"] and "seconds" in faults["unreachable"]
    settings = listing["settings"]
    assert settings["token_lifetime"] == 300
    assert 29 < settings["faults"]["unreachable"] <= 30
    await post(http, sim, {"fault": "clear"})
    assert sim.settings()["faults"]["unreachable"] is None and sim.tokens.expires_in == 86400


async def test_stall_silences_heartbeats_and_pongs_until_cleared_and_truth_counts_sockets(sim, http):
    headers = {"Authorization": f"Bearer {await get_token(http, sim)}"}
    channel = await new_channel(http, sim, headers)
    async with http.ws_connect(channel["connectUri"]) as ws:
        await next_message(ws, on_topic("channel.metadata"))
        truth = sim.truth()
        assert truth["sockets"][sim.client_id] == {"channels": 1, "sockets_open": 1, "stalled": 0}
        assert await post(http, sim, {"fault": "stall"}) == {"stalled": 1}
        await ws.send_str('{"message": "ping"}')
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.receive(), scaled(0.6))  # three heartbeat periods of silence
        assert sim.truth()["sockets"][sim.client_id]["stalled"] == 1
        await post(http, sim, {"fault": "clear"})
        await ws.send_str('{"message": "ping"}')
        pong = await next_message(ws, lambda m: m.get("eventBody", {}).get("message") == "pong")
    assert pong["topicName"] == "channel.metadata"


async def test_the_token_endpoint_takes_faults_and_expired_tokens_get_401(sim, http):
    await post(http, sim, {"fault": "rest_error", "status": 429, "path": "/oauth/token", "retry_after": 7})
    async with http.post(
        f"{sim.base_url}/oauth/token", data={"grant_type": "client_credentials"}, headers=basic(sim.client_id, "s3cret")
    ) as r:
        assert (r.status, r.headers["Retry-After"]) == (429, "7")
    token = await get_token(http, sim)
    await post(http, sim, {"fault": "token_lifetime", "seconds": 1, "existing": True})
    await eventually(lambda: sim.tokens.live() == 0, within=3, what="the token to expire")
    async with http.get(f"{sim.base_url}/api/v2/routing/queues", headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 401


async def test_unreachable_cuts_connections_and_ends_by_itself(sim, http):
    await post(http, sim, {"fault": "unreachable", "seconds": scaled(0.5)})
    with pytest.raises(aiohttp.ClientError):
        async with http.post(f"{sim.base_url}/oauth/token", data={"grant_type": "client_credentials"}):
            pass
    await eventually(lambda: not sim.faults.unreachable(), within=2, what="the outage to end")
    assert await get_token(http, sim)


@pytest.mark.parametrize("code", [1000, 1001, 1011])
async def test_close_sockets_closes_with_the_given_code(sim, http, code):
    headers = {"Authorization": f"Bearer {await get_token(http, sim)}"}
    channel = await new_channel(http, sim, headers)
    async with http.ws_connect(channel["connectUri"]) as ws:
        await next_message(ws, on_topic("channel.metadata"))
        assert await post(http, sim, {"fault": "close_sockets", "code": code}) == {"closed": 1}
        while (message := await asyncio.wait_for(ws.receive(), scaled(3))).type == aiohttp.WSMsgType.TEXT:
            pass
    assert (message.type, message.data) == (aiohttp.WSMsgType.CLOSE, code)


async def test_kick_socket_replaces_the_socket_with_a_second_one_closing_the_first_with_1000(sim, http):
    headers = {"Authorization": f"Bearer {await get_token(http, sim)}"}
    channel = await new_channel(http, sim, headers)
    async with http.ws_connect(channel["connectUri"]) as ws:
        await next_message(ws, on_topic("channel.metadata"))
        assert await post(http, sim, {"fault": "kick_socket", "hold": scaled(2)}) == {"kicked": 1}
        while (message := await asyncio.wait_for(ws.receive(), scaled(3))).type == aiohttp.WSMsgType.TEXT:
            pass
    assert (message.type, message.data) == (aiohttp.WSMsgType.CLOSE, 1000)
    await eventually(lambda: sim.truth()["sockets"][sim.client_id]["sockets_open"] == 1, what="the intruder")


def test_the_simulate_command_reads_fault_flags():
    assert parse_fault("stall") == {"fault": "stall"}
    assert parse_fault("rest_error:status=429,retry_after=5,path=/oauth/token") == {
        "fault": "rest_error",
        "status": 429,
        "retry_after": 5,
        "path": "/oauth/token",
    }


async def test_the_simulate_command_arms_faults_and_the_token_lifetime_from_its_flags(http):
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "manage.py",
        "simulate",
        "--port=0",
        "--queues=1",
        "--agents=1",
        "--token-lifetime=300",
        "--fault=rest_error:status=429,retry_after=5,path=/oauth/token",
        "--fault=refuse_credentials:seconds=60",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        cwd=PROJECT_ROOT,
    )
    try:
        async with asyncio.timeout(scaled(20)):
            while not (line := (await process.stdout.readline()).decode()).startswith("  Base URL"):
                assert line, "the simulator ended before printing its address"
        async with http.get(f"{line.split()[-1]}/simulator/control") as r:
            settings = (await r.json())["settings"]
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), scaled(10))
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert settings["token_lifetime"] == 300
    assert settings["faults"]["rest"] == [{"status": 429, "remaining": 1, "path": "/oauth/token", "retry_after": 5}]
    assert 50 < settings["faults"]["credentials_refused"] <= 60
