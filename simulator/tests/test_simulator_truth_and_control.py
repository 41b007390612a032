"""The simulator's truth and control endpoints, its clean stop, and ``manage.py simulate`` on its own."""

import asyncio
import signal
import sys

import aiohttp

from tests.processes import ROOT
from tests.simulator_util import bearer, get_token, new_channel, next_message, on_topic
from tests.timing import scaled


async def test_it_serves_truth_in_the_floor_shape(sim, http):
    headers = await bearer(http, sim)
    await new_channel(http, sim, headers, [f"v2.users.{next(iter(sim.model.agents))}.presence"])

    async with http.get(f"{sim.base_url}/simulator/truth") as r:
        truth = await r.json()

    queue = next(iter(truth["queues"].values()))
    agent = next(iter(truth["agents"].values()))
    assert set(queue) == {
        "name", "waiting", "interacting", "alerting", "longest_waiting_since", "on_queue_agents", "idle_agents",
        "interval_start", "offered", "answered", "abandoned", "sl_numerator", "sl_denominator",
    }  # fmt: skip
    assert set(agent) == {"name", "presence", "presence_since", "routing_status", "routing_since", "queue_ids"}
    assert agent["queue_ids"] == sorted(agent["queue_ids"])
    (channel,) = truth["channels"][sim.client_id].values()
    assert channel["sockets_open"] == 0 and channel["topics"] == 1
    assert truth["paused"] is False and truth["time"] > 0


async def test_it_pauses_and_resumes_through_control(make_sim, http):
    sim = await make_sim(rate=50.0)
    url = f"{sim.base_url}/simulator/control"

    async with http.post(url, json={"action": "pause"}) as r:
        assert r.status == 200 and (await r.json())["paused"] is True
    frozen = sim.truth()
    await asyncio.sleep(scaled(0.3))  # let several ticks pass: none may change anything
    assert sim.truth() == frozen
    async with http.post(url, json={"action": "resume"}) as r:
        assert (await r.json())["paused"] is False
    assert not sim.model.paused


async def test_it_lists_control_actions_and_refuses_unknown_ones(sim, http):
    url = f"{sim.base_url}/simulator/control"
    async with http.get(url) as r:
        listing = await r.json()
    replies = []
    for body in ({"action": "explode"}, {"action": "arrive", "queue_id": "nope"}, {"fault": "nope"}, {}, [1]):
        async with http.post(url, json=body) as r:
            replies.append((r.status, (await r.json())["ok"]))
    async with http.post(url, data=b"{") as r:
        replies.append((r.status, (await r.json())["ok"]))

    assert {"pause", "resume", "arrive", "set_presence", "socket_closing"} <= {a["action"] for a in listing["actions"]}
    assert "rest_error" in {f["fault"] for f in listing["faults"]}
    assert replies == [(400, False)] * 6


async def test_it_injects_a_rest_error_fault_once(sim, http):
    headers = await bearer(http, sim)
    async with http.post(
        f"{sim.base_url}/simulator/control", json={"fault": "rest_error", "status": 503, "retry_after": 2}
    ) as r:
        assert r.status == 200

    async with http.get(f"{sim.base_url}/api/v2/routing/queues", headers=headers) as r:
        faulted = (r.status, r.headers.get("Retry-After"), (await r.json())["status"])
    async with http.get(f"{sim.base_url}/api/v2/routing/queues", headers=headers) as r:
        recovered = r.status

    assert faulted == (503, "2", 503) and recovered == 200


async def test_it_fails_requests_with_revoked_tokens(sim, http):
    headers = await bearer(http, sim)
    async with http.post(f"{sim.base_url}/simulator/control", json={"fault": "revoke_tokens"}) as r:
        assert (await r.json())["result"] == {"revoked": 1}
    async with http.get(f"{sim.base_url}/api/v2/routing/queues", headers=headers) as r:
        assert r.status == 401
    assert await get_token(http, sim)


async def test_it_stops_cleanly_with_a_socket_open_and_twice(sim, http):
    headers = await bearer(http, sim)
    channel = await new_channel(http, sim, headers)
    ws = await http.ws_connect(channel["connectUri"])

    await asyncio.wait_for(sim.stop(), scaled(5))
    await sim.stop()

    message = await asyncio.wait_for(ws.receive(), scaled(3))
    assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    await ws.close()


async def test_it_publishes_conversations_and_detail_events_for_a_queue(sim, http):
    headers = await bearer(http, sim)
    queue = next(iter(sim.model.queues.values()))
    conversations = f"v2.routing.queues.{queue.id}.conversations"
    channel = await new_channel(http, sim, headers, [conversations, f"v2.detail.events.conversation.{queue.id}.*"])

    async with http.ws_connect(channel["connectUri"]) as ws:
        contact = sim.model.arrive(queue.id)
        started = await next_message(ws, on_topic(conversations))
        acd_start = await next_message(ws, on_topic(f"v2.detail.events.conversation.{queue.id}.acd.start"))

    purposes = {p["purpose"]: p for p in started["eventBody"]["participants"]}
    assert started["eventBody"]["id"] == contact.id
    assert purposes["customer"]["connectedTime"] and "endTime" not in purposes["customer"]
    assert purposes["acd"]["queueId"] == queue.id
    assert acd_start["eventBody"]["conversationId"] == contact.id
    assert acd_start["eventBody"]["eventTime"] == round(contact.start * 1000)


async def test_it_runs_alone_from_manage_py_until_sigterm(http):
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "manage.py",
        "simulate",
        "--port",
        "0",
        "--queues",
        "2",
        "--agents",
        "3",
        "--client-secret",
        "shh",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        cwd=ROOT,
    )
    try:
        lines = []
        async with asyncio.timeout(scaled(20)):
            while not any("Client secret" in line for line in lines):
                line = (await process.stdout.readline()).decode()
                assert line, f"the simulator exited before it was ready: {''.join(lines)!r}"
                lines.append(line)
        base_url = next(line.split()[-1] for line in lines if "Base URL" in line)
        async with http.get(f"{base_url}/simulator/truth") as r:
            truth = await r.json()
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), scaled(10))
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    assert len(truth["queues"]) == 2 and len(truth["agents"]) == 3
    assert any(line.split()[-1] == "shh" for line in lines if "Client secret" in line)
    assert code == 0


async def test_it_drops_sockets_without_a_close_frame_on_the_drop_sockets_fault(sim, http):
    headers = await bearer(http, sim)
    channel = await new_channel(http, sim, headers)

    async with http.ws_connect(channel["connectUri"]) as ws:
        async with http.post(f"{sim.base_url}/simulator/control", json={"fault": "drop_sockets"}) as r:
            assert (await r.json())["result"] == {"dropped": 1}
        message = await asyncio.wait_for(ws.receive(), scaled(3))

    assert message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
    assert ws.close_code not in (1000, 1001)
