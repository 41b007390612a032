"""The Genesys simulator's OAuth, auth, rate limits and routing REST, over real HTTP on 127.0.0.1."""

import time

from simulator.timefmt import parse_iso
from tests.simulator_util import basic, bearer


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
