"""The Genesys simulator's analytics queries (observations, aggregates, routing activity), over real HTTP."""

import asyncio

from simulator.presence import presence_id
from simulator.timefmt import parse_iso
from tests.simulator_util import bearer, metrics_by_name
from tests.timing import scaled


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
