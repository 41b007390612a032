"""The Genesys simulator's notification channels and their sockets, over real HTTP and WebSocket."""

import asyncio
import time

import aiohttp

from simulator.presence import presence_id
from simulator.timefmt import parse_iso
from tests.simulator_util import bearer, metrics_by_name, new_channel, next_message, on_topic
from tests.timing import scaled


def channel_url(sim, channel_id: str, suffix: str = "") -> str:
    return f"{sim.base_url}/api/v2/notifications/channels/{channel_id}{suffix}"


async def test_it_evicts_the_least_recently_used_idle_channel_for_the_21st(sim, http):
    headers = await bearer(http, sim)
    channels = [await new_channel(http, sim, headers) for _ in range(20)]
    async with http.ws_connect(channels[0]["connectUri"]) as busy:
        async with http.get(channel_url(sim, channels[1]["id"], "/subscriptions"), headers=headers) as r:
            assert r.status == 200  # using channel 1 makes channel 2 the least recently used idle one

        await new_channel(http, sim, headers)

        statuses = {}
        for index in (0, 1, 2, 3):
            async with http.head(channel_url(sim, channels[index]["id"]), headers=headers) as r:
                statuses[index] = r.status
        assert not busy.closed
    assert statuses == {0: 200, 1: 200, 2: 404, 3: 200}
    assert len(sim.truth()["channels"][sim.client_id]) == 20


async def test_it_closes_the_socket_of_an_evicted_channel(sim, http):
    headers = await bearer(http, sim)
    channels = [await new_channel(http, sim, headers) for _ in range(20)]
    sockets = [await http.ws_connect(c["connectUri"]) for c in channels]
    try:
        await new_channel(http, sim, headers)
        message = await asyncio.wait_for(sockets[0].receive(), scaled(3))
        assert message.type == aiohttp.WSMsgType.CLOSE and message.data == 1001
    finally:
        for ws in sockets:
            await ws.close()


async def test_it_refuses_more_than_1000_topics_on_a_channel(sim, http):
    headers = await bearer(http, sim)
    channel = await new_channel(http, sim, headers)
    url = channel_url(sim, channel["id"], "/subscriptions")
    topics = [{"id": f"v2.users.user-{i}.presence"} for i in range(1001)]

    async with http.put(url, headers=headers, json=topics[:1000]) as r:
        accepted = r.status
    async with http.post(url, headers=headers, json=topics[1000:]) as r:
        refused = r.status
    async with http.put(url, headers=headers, json=topics) as r:
        refused_put = r.status

    assert (accepted, refused, refused_put) == (200, 400, 400)
    assert sim.truth()["channels"][sim.client_id][channel["id"]]["topics"] == 1000


async def test_it_rejects_unknown_topics_with_403_unless_told_to_ignore_errors(sim, http):
    headers = await bearer(http, sim)
    channel = await new_channel(http, sim, headers)
    url = channel_url(sim, channel["id"], "/subscriptions")
    queue_id = next(iter(sim.model.queues))
    topics = [{"id": f"v2.analytics.queues.{queue_id}.observations"}, {"id": "v2.secret.stuff"}]

    async with http.put(url, headers=headers, json=topics) as r:
        forbidden = r.status
    async with http.get(url, headers=headers) as r:
        after_403 = (await r.json())["entities"]
    async with http.put(url + "?ignoreErrors=true", headers=headers, json=topics) as r:
        partial = (await r.json())["entities"]
    async with http.get(url, headers=headers) as r:
        kept = [e["id"] for e in (await r.json())["entities"]]

    assert forbidden == 403 and after_403 == []
    assert [(e["id"], e["state"]) for e in partial] == [(topics[0]["id"], "Permitted"), ("v2.secret.stuff", "Rejected")]
    assert kept == [topics[0]["id"]]


async def test_it_extends_a_channel_when_it_is_subscribed_again(sim, http):
    headers = await bearer(http, sim)
    channel = await new_channel(http, sim, headers)
    sim.hub.channels[channel["id"]].expires -= 3600

    await new_channel(http, sim, headers)  # unrelated traffic does not extend it
    before = sim.hub.channels[channel["id"]].expires
    async with http.post(
        channel_url(sim, channel["id"], "/subscriptions"), headers=headers, json=[{"id": "v2.users.u1.presence"}]
    ) as r:
        assert r.status == 200

    assert sim.hub.channels[channel["id"]].expires >= before + 3600 - 1


async def test_it_answers_head_with_404_for_a_deleted_channel(sim, http):
    headers = await bearer(http, sim)
    channel = await new_channel(http, sim, headers)

    async with http.delete(channel_url(sim, channel["id"]), headers=headers) as r:
        assert r.status in (200, 204)
    async with http.head(channel_url(sim, channel["id"]), headers=headers) as r:
        assert r.status == 404
    async with http.get(f"{sim.base_url}/channels/{channel['id']}") as r:
        assert r.status == 404


# -- sockets ----------------------------------------------------------------------------


async def test_it_keeps_one_socket_per_channel(sim, http):
    headers = await bearer(http, sim)
    channel = await new_channel(http, sim, headers)

    async with http.ws_connect(channel["connectUri"]) as first, http.ws_connect(channel["connectUri"]) as second:
        kicked = await asyncio.wait_for(first.receive(), scaled(3))
        await second.send_str('{"message": "ping"}')
        pong = await next_message(second, lambda d: True)

    assert kicked.type == aiohttp.WSMsgType.CLOSE and kicked.data == 1000
    assert pong == {"topicName": "channel.metadata", "eventBody": {"message": "pong"}}


async def test_it_sends_heartbeats_every_period(make_sim, http):
    sim = await make_sim(heartbeat_period=scaled(0.1))
    headers = await bearer(http, sim)
    channel = await new_channel(http, sim, headers)

    async with http.ws_connect(channel["connectUri"]) as ws:
        started = time.monotonic()
        for _ in range(3):
            beat = await next_message(ws, on_topic("channel.metadata"), within=1)
            assert beat["eventBody"] == {"message": "WebSocket Heartbeat"}
        elapsed = time.monotonic() - started

    assert scaled(0.25) <= elapsed < scaled(1.5)


async def test_it_subscribes_over_the_socket_and_ignores_junk_frames(sim, http):
    headers = await bearer(http, sim)
    channel = await new_channel(http, sim, headers)
    user_id = next(iter(sim.model.agents))

    async with http.ws_connect(channel["connectUri"]) as ws:
        await ws.send_str("this is not json")
        await ws.send_bytes(b"\x00\x01")
        await ws.send_json({"message": "subscribe", "topics": [f"v2.users.{user_id}.presence"], "correlationId": "c1"})
        reply = await next_message(ws, lambda d: d.get("correlationId") == "c1")
        await ws.send_json({"message": "subscribe", "topics": ["v2.nope"], "correlationId": "c2"})
        refused = await next_message(ws, lambda d: d.get("correlationId") == "c2")
        sim.model.set_presence(user_id, "MEETING")
        event = await next_message(ws, on_topic(f"v2.users.{user_id}.presence"))

    assert reply["result"] == "200" and reply["status"] == "subscribed"
    assert refused["result"] == "403"
    assert event["eventBody"]["presenceDefinition"]["systemPresence"] == "MEETING"
    assert sim.api.counters.bad_frames == 2


async def test_it_notifies_subscribed_user_topics_after_a_control_action(sim, http):
    headers = await bearer(http, sim)
    user_id = next(iter(sim.model.agents))
    combined = f"v2.users.{user_id}?presence&routingStatus"
    topics = [f"v2.users.{user_id}.{k}" for k in ("presence", "routingStatus", "activity")] + [combined]
    channel = await new_channel(http, sim, headers, topics)

    async with http.ws_connect(channel["connectUri"]) as ws:
        async with http.post(
            f"{sim.base_url}/simulator/control",
            json={"action": "set_presence", "user_id": user_id, "presence": "BREAK"},
        ) as r:
            assert r.status == 200
            reply = await r.json()
        latest = {}
        while set(latest) != set(topics):
            message = await next_message(ws, lambda d: d.get("topicName") in topics)
            latest[message["topicName"]] = message
    presence, routing, activity, both = (latest[t] for t in topics)

    agent = sim.model.agents[user_id]
    assert reply["result"]["agent"]["presence"] == "break"
    assert presence["version"] == "2" and "CorrelationId" in presence["metadata"]
    assert presence["eventBody"]["presenceDefinition"] == presence["eventBody"]["presenceDefinition"] | {
        "id": presence_id("break"),
        "systemPresence": "BREAK",
    }
    assert parse_iso(presence["eventBody"]["modifiedDate"]) == agent.presence_since
    assert routing["eventBody"]["routingStatus"]["status"] == "OFF_QUEUE"
    assert parse_iso(routing["eventBody"]["routingStatus"]["startTime"]) == agent.routing_since
    assert activity["eventBody"]["activeQueueIds"] == sorted(agent.queue_ids)
    assert both["eventBody"]["presence"]["presenceDefinition"]["systemPresence"] == "BREAK"


async def test_it_notifies_membership_changes(sim, http):
    headers = await bearer(http, sim)
    user_id = next(iter(sim.model.agents))
    queue_id = next(q for q in sim.model.queues if q not in sim.model.agents[user_id].queue_ids)
    channel = await new_channel(http, sim, headers, [f"v2.routing.queues.{queue_id}.users"])

    async with http.ws_connect(channel["connectUri"]) as ws:
        async with http.post(
            f"{sim.base_url}/simulator/control",
            json={"action": "set_membership", "user_id": user_id, "queue_id": queue_id, "joined": True},
        ) as r:
            assert r.status == 200
        message = await next_message(ws, on_topic(f"v2.routing.queues.{queue_id}.users"))

    assert message["eventBody"] == {"id": user_id, "user": {"id": user_id}, "queueId": queue_id, "joined": True}


async def test_it_publishes_queue_observations_at_most_once_per_interval_with_the_last_state(make_sim, http):
    sim = await make_sim(analytics_min_interval=scaled(0.3))
    headers = await bearer(http, sim)
    queue = next(iter(sim.model.queues.values()))
    for user_id in queue.member_ids:
        sim.model.set_presence(user_id, "AWAY")
    topic = f"v2.analytics.queues.{queue.id}.observations"
    channel = await new_channel(http, sim, headers, [topic])

    def spans_an_instant(data):
        start, _, end = data["eventBody"]["data"][0]["interval"].partition("/")
        return start == end

    def instant(data):
        # Contact counts come grouped by queue and media type; agent counts by queue alone.
        media_group = data.get("eventBody", {}).get("group") == {"queueId": queue.id, "mediaType": queue.media_type}
        return data.get("topicName") == topic and media_group and spans_an_instant(data)

    async with http.ws_connect(channel["connectUri"]) as ws:
        for _ in range(3):
            sim.model.arrive(queue.id)
        first = await next_message(ws, instant)
        received_first = time.monotonic()
        last = await next_message(ws, instant)
        gap = time.monotonic() - received_first
        aggregates = await next_message(ws, lambda d: d.get("topicName") == topic and not spans_an_instant(d))

    def waiting(message):
        return metrics_by_name(message["eventBody"]["data"][0]["metrics"])["oWaiting"]["stats"]["count"]

    assert (waiting(first), waiting(last)) == (1, 3)
    assert gap >= scaled(0.3) * 0.5
    longest = metrics_by_name(last["eventBody"]["data"][0]["metrics"])["oLongestWaiting"]
    assert parse_iso(longest["observations"][0]["observationDate"]) == queue.waiting[0].start
    offered = metrics_by_name(aggregates["eventBody"]["data"][0]["metrics"])["nOffered"]["stats"]["count"]
    assert offered in (1, 3)


async def test_it_warns_then_closes_with_1001_on_socket_closing(sim, http):
    headers = await bearer(http, sim)
    channel = await new_channel(http, sim, headers)

    async with http.ws_connect(channel["connectUri"]) as ws:
        async with http.post(
            f"{sim.base_url}/simulator/control",
            json={"action": "socket_closing", "channel_id": channel["id"], "delay": scaled(0.2)},
        ) as r:
            assert (await r.json())["result"] == {"sockets": 1}
        warning = await next_message(ws, on_topic("v2.system.socket_closing"))
        closed = await asyncio.wait_for(ws.receive(), scaled(3))

    assert warning["version"] == "2"
    assert closed.type == aiohttp.WSMsgType.CLOSE and closed.data == 1001
