"""The Genesys simulator over real HTTP and WebSocket on 127.0.0.1, with aiohttp's client."""

import asyncio
import signal
import sys
import time

import aiohttp
import pytest

from simulator.presence import presence_id
from simulator.server import SimulatorServer
from simulator.timefmt import parse_iso
from tests.processes import ROOT
from tests.simulator_util import basic, bearer, get_token, metrics_by_name, new_channel, next_message, on_topic
from tests.timing import scaled

QUIET = {"rate": 0.0, "presence_change_mean": 0.0, "not_responding_probability": 0.0, "on_queue_share": 1.0}


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def make_sim():
    """Start simulators (quiet unless told otherwise) and stop them all afterwards."""
    started = []

    async def make(**options) -> SimulatorServer:
        sim = SimulatorServer(client_secret="s3cret", **(QUIET | options))
        await sim.start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        await sim.stop()


@pytest.fixture
async def sim(make_sim):
    return await make_sim()


def channel_url(sim, channel_id: str, suffix: str = "") -> str:
    return f"{sim.base_url}/api/v2/notifications/channels/{channel_id}{suffix}"


# -- OAuth and auth ---------------------------------------------------------------


async def test_it_issues_a_token_with_the_configured_lifetime(make_sim, http):
    sim = await make_sim(token_expires_in=3600)

    async with http.post(
        f"{sim.base_url}/oauth/token", data={"grant_type": "client_credentials"}, headers=basic(sim.client_id, "s3cret")
    ) as response:
        body = await response.json()

    assert response.status == 200
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600 and len(body["access_token"]) > 20


async def test_it_refuses_bad_credentials_and_other_grants(sim, http):
    url = f"{sim.base_url}/oauth/token"
    async with http.post(url, data={"grant_type": "client_credentials"}, headers=basic(sim.client_id, "nope")) as r:
        assert r.status == 401 and (await r.json())["error"] == "invalid_client"
    async with http.post(url, data={"grant_type": "client_credentials"}) as r:
        assert r.status == 401 and (await r.json())["error"] == "invalid_client"
    async with http.post(url, data={"grant_type": "password"}, headers=basic(sim.client_id, "s3cret")) as r:
        assert r.status == 400 and (await r.json())["error"] == "unsupported_grant_type"


async def test_it_answers_unknown_and_expired_tokens_with_401(sim, http):
    url = f"{sim.base_url}/api/v2/routing/queues"
    async with http.get(url, headers={"Authorization": "Bearer not-a-token"}) as r:
        body = await r.json()
        assert r.status == 401
        assert set(body) >= {"message", "code", "status", "contextId", "details", "errors"}
    async with http.get(url) as r:
        assert r.status == 401

    headers = await bearer(http, sim)
    async with http.get(url, headers=headers) as r:
        assert r.status == 200
    sim.tokens.clock = lambda: time.time() + 86401  # a day later, the token has expired
    async with http.get(url, headers=headers) as r:
        assert r.status == 401


async def test_it_rate_limits_each_token_with_429_and_retry_after(make_sim, http):
    sim = await make_sim(rate_limit_per_minute=3)
    headers = await bearer(http, sim)
    url = f"{sim.base_url}/api/v2/routing/queues"

    counts = []
    for _ in range(3):
        async with http.get(url, headers=headers) as r:
            assert r.status == 200
            assert r.headers["inin-ratelimit-allowed"] == "3"
            counts.append(r.headers["inin-ratelimit-count"])
    async with http.get(url, headers=headers) as r:
        body = await r.json()
        limited, retry_after = r.status, r.headers.get("Retry-After")
    async with http.get(url, headers=await bearer(http, sim)) as r:
        other_token = r.status

    assert counts == ["1", "2", "3"]
    assert limited == 429 and body["code"] == "too.many.requests.retry.after" and body["status"] == 429
    assert retry_after is not None and 1 <= int(retry_after) <= 60
    assert other_token == 200


# -- routing REST ------------------------------------------------------------------


async def test_it_pages_queues_until_the_last_page(make_sim, http):
    sim = await make_sim(queues=7)
    headers = await bearer(http, sim)

    names, pages, url = [], [], f"{sim.base_url}/api/v2/routing/queues?pageSize=3&pageNumber=1"
    while url:
        async with http.get(url, headers=headers) as r:
            page = await r.json()
        pages.append(page)
        names += [e["name"] for e in page["entities"]]
        url = sim.base_url + page["nextUri"] if "nextUri" in page else None

    assert names == [q.name for q in sim.model.queues.values()]
    assert [p["pageNumber"] for p in pages] == [1, 2, 3]
    assert all(p["total"] == 7 and p["pageCount"] == 3 and p["pageSize"] == 3 for p in pages)
    assert pages[-1]["lastUri"] == pages[-1]["selfUri"]
    entity = pages[0]["entities"][0]
    assert {"id", "name", "mediaSettings", "memberCount"} <= set(entity)

    wanted = sorted(sim.model.queues)[:2]
    async with http.get(f"{sim.base_url}/api/v2/routing/queues?id={wanted[0]}&id={wanted[1]}", headers=headers) as r:
        filtered = await r.json()
    assert sorted(e["id"] for e in filtered["entities"]) == wanted and filtered["total"] == 2


async def test_it_pages_members_without_totals_and_expands_status_and_presence(sim, http):
    headers = await bearer(http, sim)
    queue = max(sim.model.queues.values(), key=lambda q: len(q.member_ids))
    sample = sorted(queue.member_ids)[0]
    sim.model.set_presence(sample, "Break")

    entities, url = (
        [],
        f"{sim.base_url}/api/v2/routing/queues/{queue.id}/members?pageSize=2&expand=routingStatus,presence",
    )
    while url:
        async with http.get(url, headers=headers) as r:
            page = await r.json()
        assert "total" not in page and "pageCount" not in page
        entities += page["entities"]
        url = sim.base_url + page["nextUri"] if "nextUri" in page else None

    assert {e["id"] for e in entities} == queue.member_ids
    member = next(e for e in entities if e["id"] == sample)
    agent = sim.model.agents[sample]
    assert member["user"] == member["user"] | {"id": sample, "name": agent.name}
    assert member["joined"] is True
    assert member["routingStatus"]["status"] == "OFF_QUEUE"
    assert parse_iso(member["routingStatus"]["startTime"]) == agent.routing_since
    assert member["presence"]["presenceDefinition"]["systemPresence"] == "Break"
    assert parse_iso(member["presence"]["modifiedDate"]) == agent.presence_since


async def test_it_returns_presences_in_bulk_and_routing_status_per_user(sim, http):
    headers = await bearer(http, sim)
    ids = list(sim.model.agents)[:3]
    sim.model.set_presence(ids[0], "ON_QUEUE")

    async with http.get(
        f"{sim.base_url}/api/v2/users/presences/purecloud/bulk?id={','.join(ids)}", headers=headers
    ) as r:
        bulk = await r.json()
    too_many = ",".join(f"u{i}" for i in range(51))
    async with http.get(f"{sim.base_url}/api/v2/users/presences/purecloud/bulk?id={too_many}", headers=headers) as r:
        refused = r.status
    async with http.get(f"{sim.base_url}/api/v2/users/{ids[0]}/routingstatus", headers=headers) as r:
        status = await r.json()
    async with http.get(f"{sim.base_url}/api/v2/users/nobody/routingstatus", headers=headers) as r:
        missing = r.status

    assert [p["userId"] for p in bulk] == ids
    assert bulk[0]["presenceDefinition"]["systemPresence"] == "OnQueue"
    assert refused == 400 and missing == 404
    assert status["userId"] == ids[0] and status["status"] == sim.model.agents[ids[0]].routing_status


# -- analytics REST ------------------------------------------------------------------


async def test_it_answers_observation_queries_grouped_by_queue_and_media_type(sim, http):
    headers = await bearer(http, sim)
    queue = next(iter(sim.model.queues.values()))
    for user_id in queue.member_ids:
        sim.model.set_presence(user_id, "AWAY")
    first = sim.model.arrive(queue.id)
    sim.model.arrive(queue.id)
    query = {
        "filter": {"type": "or", "predicates": [{"dimension": "queueId", "value": queue.id}]},
        "metrics": ["oWaiting", "oLongestWaiting", "oOnQueueUsers", "oUserRoutingStatuses", "oUserPresences"],
        "detailMetrics": ["oWaiting"],
    }

    async with http.post(
        f"{sim.base_url}/api/v2/analytics/queues/observations/query", headers=headers, json=query
    ) as r:
        results = (await r.json())["results"]

    assert r.status == 200
    groups = {tuple(sorted(res["group"].items())): metrics_by_name(res["data"]) for res in results}
    users = groups[(("queueId", queue.id),)]
    conversations = groups[(("mediaType", queue.media_type), ("queueId", queue.id))]
    assert users["oOnQueueUsers"]["stats"]["count"] == 0
    assert users["oUserRoutingStatuses:OFF_QUEUE"]["stats"]["count"] == len(queue.member_ids)
    assert users[f"oUserPresences:{presence_id('away')}"]["stats"]["count"] == len(queue.member_ids)
    assert conversations["oWaiting"]["stats"]["count"] == 2
    assert conversations["oWaiting"]["observations"][0]["conversationId"] == first.id
    longest = conversations["oLongestWaiting"]
    assert parse_iso(longest["observations"][0]["observationDate"]) == first.start
    assert longest["stats"]["calculatedMetricValue"] >= 0


async def test_it_refuses_malformed_analytics_queries_with_400(sim, http):
    headers = await bearer(http, sim)
    url = f"{sim.base_url}/api/v2/analytics/queues/observations/query"
    queue_id = next(iter(sim.model.queues))
    bad_bodies = [
        {"metrics": ["oWaiting"]},  # no filter
        {"filter": {"type": "or", "predicates": [{"dimension": "queueId", "value": queue_id}]}, "metrics": ["nope"]},
        [1, 2, 3],
    ]
    statuses = []
    for body in bad_bodies:
        async with http.post(url, headers=headers, json=body) as r:
            statuses.append(r.status)
    async with http.post(url, headers=headers, data=b"{not json") as r:
        statuses.append(r.status)

    assert statuses == [400, 400, 400, 400]
    assert sim.api.counters.bad_requests == 4


async def test_it_answers_aggregate_queries_with_the_current_interval(sim, http):
    headers = await bearer(http, sim)
    queue = next(iter(sim.model.queues.values()))
    sim.model.arrive(queue.id)
    truth = sim.model.queue_truth(queue.id)
    query = {
        "interval": "2000-01-01T00:00:00.000Z/2100-01-01T00:00:00.000Z",
        "groupBy": ["queueId"],
        "filter": {"type": "or", "predicates": [{"dimension": "queueId", "value": queue.id}]},
        "metrics": ["nOffered", "tAnswered", "tAbandon", "oServiceLevel"],
    }

    async with http.post(f"{sim.base_url}/api/v2/analytics/queues/aggregates/query", headers=headers, json=query) as r:
        results = (await r.json())["results"]

    # Genesys splits aggregates by media type even when grouped by queueId alone.
    assert [res["group"] for res in results] == [{"queueId": queue.id, "mediaType": queue.media_type}]
    data = results[0]["data"][0]
    assert parse_iso(data["interval"].split("/")[0]) == truth["interval_start"]
    metrics = metrics_by_name(data["metrics"])
    assert metrics["nOffered"]["stats"]["count"] == truth["offered"] == 1
    assert metrics["tAnswered"]["stats"]["count"] == truth["answered"]
    assert metrics["oServiceLevel"]["stats"]["denominator"] == truth["sl_denominator"]


async def test_it_answers_routing_activity_queries_given_metric_or_name(sim, http):
    headers = await bearer(http, sim)
    queue = next(iter(sim.model.queues.values()))
    flt = {"type": "or", "predicates": [{"dimension": "queueId", "value": queue.id}]}
    url = f"{sim.base_url}/api/v2/analytics/routing/activity/query"

    bodies = []
    for key in ("metric", "name"):
        query = {"metrics": [{key: "oUserRoutingStatuses", "details": True}], "groupBy": ["queueId"], "filter": flt}
        async with http.post(url, headers=headers, json=query) as r:
            assert r.status == 200
            bodies.append(await r.json())

    assert bodies[0]["results"] == bodies[1]["results"]
    result = bodies[0]["results"][0]
    assert result["group"] == {"queueId": queue.id}
    assert metrics_by_name(result["data"])["oUserRoutingStatuses:IDLE"]["stats"]["count"] == len(queue.member_ids)
    assert {e["userId"] for e in result["entities"]} == queue.member_ids


async def test_it_agrees_with_its_truth_while_busy(make_sim, http):
    sim = await make_sim(rate=40.0, agents=12, queues=3, on_queue_share=0.7, presence_change_mean=20.0)
    headers = await bearer(http, sim)
    busy = asyncio.Event()
    sim.model.listeners.append(lambda changes: busy.set() if len(sim.model.contacts) >= 10 else None)
    await asyncio.wait_for(busy.wait(), scaled(5))
    sim.pause()
    truth = sim.truth()
    flt = {"type": "or", "predicates": [{"dimension": "queueId", "value": q} for q in truth["queues"]]}
    query = {
        "filter": flt,
        "metrics": ["oWaiting", "oInteracting", "oAlerting", "oOnQueueUsers", "oUserRoutingStatuses"],
    }

    async with http.post(
        f"{sim.base_url}/api/v2/analytics/queues/observations/query", headers=headers, json=query
    ) as r:
        results = (await r.json())["results"]

    seen = {}
    for res in results:
        seen.setdefault(res["group"]["queueId"], {}).update(metrics_by_name(res["data"]))
    assert sum(q["waiting"] + q["interacting"] + q["alerting"] for q in truth["queues"].values()) > 0
    for queue_id, expected in truth["queues"].items():
        metrics = seen[queue_id]
        assert metrics["oWaiting"]["stats"]["count"] == expected["waiting"]
        assert metrics["oInteracting"]["stats"]["count"] == expected["interacting"]
        assert metrics["oAlerting"]["stats"]["count"] == expected["alerting"]
        assert metrics["oOnQueueUsers"]["stats"]["count"] == expected["on_queue_agents"]
        assert metrics["oUserRoutingStatuses:IDLE"]["stats"]["count"] == expected["idle_agents"]


# -- notification channels ----------------------------------------------------------


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


# -- truth and control -------------------------------------------------------------------


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
