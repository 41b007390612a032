"""The CXone simulator over real HTTP on 127.0.0.1: sign-in, discovery, and the Real-Time Data API."""

from __future__ import annotations

import base64
import json
import time
from email.utils import parsedate_to_datetime
from urllib.parse import quote, urljoin

import aiohttp
import pytest

from simulator import control
from simulator.server import SimulatorServer
from simulator.timefmt import parse_iso
from tests.timing import FakeClock, eventually, scaled

QUIET = {"rate": 0.0, "presence_change_mean": 0.0, "not_responding_probability": 0.0}
# Both secrets hold characters that mean something in a form or in Basic auth.
CLIENT_SECRET = "cl=ient+sec/ret:x"
KEY_ID = "key-id=1"
KEY_SECRET = "k3y=se&cret+=="
SERVICES = "/inContactAPI/services/v31.0"


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def make_sim():
    started = []

    async def make(**options) -> SimulatorServer:
        sim = SimulatorServer(
            client_secret=CLIENT_SECRET,
            cxone_access_key_id=KEY_ID,
            cxone_access_key_secret=KEY_SECRET,
            **(QUIET | options),
        )
        await sim.start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        await sim.stop()


@pytest.fixture
async def sim(make_sim):
    return await make_sim()


def encoded_basic(client_id: str, secret: str) -> dict[str, str]:
    """Return CXone's Basic header: each part URL-encoded, then base64."""
    pair = f"{quote(client_id, safe='')}:{quote(secret, safe='')}"
    return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}


async def sign_in(http, sim, **form) -> tuple[int, dict]:
    data = {"grant_type": "password", "username": KEY_ID, "password": KEY_SECRET} | form
    async with http.post(
        f"{sim.base_url}/auth/token", data=data, headers=encoded_basic(sim.client_id, CLIENT_SECRET)
    ) as reply:
        return reply.status, await reply.json()


async def bearer(http, sim) -> dict[str, str]:
    status, body = await sign_in(http, sim)
    assert status == 200, body
    return {"Authorization": f"Bearer {body['access_token']}"}


def api_url(sim) -> str:
    """Return the origin cxone-configuration names for the API: the loopback's other name, same port."""
    return sim.base_url.replace("127.0.0.1", "localhost")


async def get(http, sim, path: str, headers: dict, **params) -> tuple[int, dict | None]:
    url = path if path.startswith("http") else f"{api_url(sim)}{SERVICES}{path}"
    async with http.get(url, headers=headers, params=params or None) as reply:
        return reply.status, (await reply.json() if reply.status != 304 else None)


def claims_of(id_token: str) -> dict:
    payload = id_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


# -- sign-in and discovery ------------------------------------------------------------------------


async def test_it_signs_in_with_an_access_key_whose_secret_holds_url_characters(sim, http):
    status, body = await sign_in(http, sim)
    assert status == 200, body
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert body["access_token"] and body["refresh_token"]
    claims = claims_of(body["id_token"])
    assert {"tenantId", "icBUId", "icClusterId", "area", "iat", "exp"} <= claims.keys()
    assert claims["exp"] - claims["iat"] == 3600


async def test_it_accepts_the_client_credentials_in_the_form_body(sim, http):
    data = {
        "grant_type": "password",
        "username": KEY_ID,
        "password": KEY_SECRET,
        "client_id": sim.client_id,
        "client_secret": CLIENT_SECRET,
    }
    async with http.post(f"{sim.base_url}/auth/token", data=data) as reply:
        assert reply.status == 200, await reply.text()


@pytest.mark.parametrize(
    ("form", "headers", "status", "error"),
    [
        ({"password": "wrong"}, None, 400, "invalid_grant"),
        ({"username": "nobody"}, None, 400, "invalid_grant"),
        ({"grant_type": "client_credentials"}, None, 400, "unsupported_grant_type"),
        ({}, {"Authorization": "Basic " + base64.b64encode(b"floorview-demo:wrong").decode()}, 401, "invalid_client"),
    ],
    ids=["wrong-secret", "unknown-key", "no-client-credentials-grant", "wrong-client"],
)
async def test_it_refuses_bad_sign_ins_with_cxones_error_body(sim, http, form, headers, status, error):
    data = {"grant_type": "password", "username": KEY_ID, "password": KEY_SECRET} | form
    headers = headers or encoded_basic(sim.client_id, CLIENT_SECRET)
    async with http.post(f"{sim.base_url}/auth/token", data=data, headers=headers) as reply:
        body = await reply.json()
    assert reply.status == status
    assert body["error"] == error and body["errorDescription"]


async def test_a_refresh_token_works_once(sim, http):
    _, first = await sign_in(http, sim)
    form = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    status, second = await sign_in(http, sim, **form)
    assert status == 200 and second["access_token"] != first["access_token"]
    status, again = await sign_in(http, sim, **form)
    assert (status, again["error"]) == (400, "invalid_grant")
    assert sim.cxone.counters.refresh_grants == 1


async def test_discovery_names_the_token_endpoint_and_the_tenants_api(sim, http):
    async with http.get(f"{sim.base_url}/.well-known/openid-configuration") as reply:
        openid = await reply.json()
    assert openid["token_endpoint"] == f"{sim.base_url}/auth/token"
    assert openid["token_endpoint_auth_methods_supported"] == ["client_secret_basic"]
    _, body = await sign_in(http, sim)
    tenant = claims_of(body["id_token"])["tenantId"]
    url = f"{sim.base_url}/.well-known/cxone-configuration"
    async with http.get(url, params={"tenantId": tenant}) as reply:
        config = await reply.json()
    # As at NICE, the API is another origin than the sign-in; here the same server under its other name.
    assert config["api_endpoint"] == api_url(sim) != sim.base_url and config["tenantId"] == tenant
    assert config["auth_endpoint"] == sim.base_url
    async with http.get(url.replace("127.0.0.1", "localhost"), params={"tenantId": tenant}) as reply:
        assert (await reply.json())["api_endpoint"] == sim.base_url  # and the other way round
    async with http.get(url, params={"tenantId": "someone-else"}) as reply:
        assert reply.status == 404 and (await reply.json())["error"]
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert (await get(http, sim, "/agents/states", headers))[0] == 200
    counters = sim.cxone.counters
    assert set(counters.api_hosts) == {api_url(sim).removeprefix("http://")}
    assert set(counters.auth_hosts) == {sim.base_url.removeprefix("http://"), api_url(sim).removeprefix("http://")}


# -- the real-time calls --------------------------------------------------------------------------


async def test_real_time_calls_need_a_live_bearer_token(sim, http):
    status, body = await get(http, sim, "/agents/states", {})
    assert status == 401 and body["error"] and body["errorDescription"]
    clock = sim.cxone.tokens.clock = FakeClock(time.time())  # the token store's clock, moved by hand
    control.dispatch(sim, {"fault": "cxone_token_lifetime", "seconds": 1, "existing": True})
    headers = await bearer(http, sim)
    assert (await get(http, sim, "/agents/states", headers))[0] == 200
    clock.now += 1.0  # the token's whole life
    assert (await get(http, sim, "/agents/states", headers))[0] == 401


async def test_updated_since_returns_only_what_changed_and_304_when_nothing_did(sim, http):
    headers = await bearer(http, sim)
    status, body = await get(http, sim, "/agents/states", headers, updatedSince="1970-01-01T00:00:00.000Z")
    assert status == 200 and body["totalRecords"] == len(sim.model.agents) == len(body["agentStates"])
    since = body["lastPollTime"]
    assert abs(parse_iso(since) - sim.cxone.clock()) < scaled(5)
    assert (await get(http, sim, "/agents/states", headers, updatedSince=since))[0] == 304
    agent = sorted(sim.model.agents.values(), key=lambda a: a.number)[0]
    control.dispatch(sim, {"action": "set_presence", "user_id": agent.id, "presence": "MEAL"})
    status, body = await get(http, sim, "/agents/states", headers, updatedSince=since)
    assert status == 200
    (state,) = body["agentStates"]
    assert (state["agentId"], state["agentStateName"], state["outStateDescription"]) == (
        agent.number,
        "Unavailable",
        "Meal",
    )
    assert parse_iso(state["startDate"]) == agent.presence_since


async def test_it_pages_with_top_and_skip_following_links_next(make_sim, http):
    sim = await make_sim(agents=11)
    headers = await bearer(http, sim)
    url, seen, pages = f"{api_url(sim)}{SERVICES}/agents/states?top=4&updatedSince=1970-01-01T00:00:00.000Z", [], 0
    while url:
        status, body = await get(http, sim, url, headers)
        assert status == 200 and body["totalRecords"] == 11
        seen += [a["agentId"] for a in body["agentStates"]]
        url = body["_links"]["next"]
        pages += 1
    assert pages == 3
    assert sorted(seen) == sorted(a.number for a in sim.model.agents.values())


async def test_it_writes_server_relative_links_when_told(make_sim, http):
    sim = await make_sim(agents=11)
    headers = await bearer(http, sim)
    control.dispatch(sim, {"fault": "cxone_next_links", "form": "relative"})
    url, seen = f"{api_url(sim)}{SERVICES}/agents/states?top=4&updatedSince=1970-01-01T00:00:00.000Z", []
    for _ in range(5):
        status, body = await get(http, sim, url, headers)
        assert status == 200
        seen += [a["agentId"] for a in body["agentStates"]]
        link = body["_links"]["next"]
        if link is None:
            break
        assert link.startswith(f"{SERVICES}/agents/states?") and "skip=" in link
        url = urljoin(url, link)
    assert sorted(seen) == sorted(a.number for a in sim.model.agents.values())
    control.dispatch(sim, {"fault": "clear"})
    _, body = await get(http, sim, "/agents/states", headers, top="4")
    assert body["_links"]["next"].startswith(api_url(sim))


async def test_it_answers_in_the_older_result_set_shape_when_told(sim, http):
    headers = await bearer(http, sim)
    control.dispatch(sim, {"fault": "cxone_reply_shape", "shape": "resultSet"})
    status, body = await get(http, sim, "/skills/activity", headers)
    assert status == 200 and set(body) == {"resultSet"}
    inner = body["resultSet"]
    assert inner["lastPollTime"] and len(inner["skillActivity"]) == len(sim.model.queues)
    control.dispatch(sim, {"fault": "clear"})
    status, body = await get(http, sim, "/skills/activity", headers)
    assert "skillActivity" in body and "resultSet" not in body


async def test_skills_carry_the_queue_figures_and_its_campaign(make_sim, http):
    sim = await make_sim(queues=2, agents=6, on_queue_share=0.0)
    headers = await bearer(http, sim)
    queue = sorted(sim.model.queues.values(), key=lambda q: q.number)[0]
    control.dispatch(sim, {"action": "arrive", "queue_id": queue.id, "count": 3})
    _, body = await get(http, sim, "/skills/activity", headers, updatedSince="1970-01-01T00:00:00.000Z")
    skill = next(s for s in body["skillActivity"] if s["skillId"] == queue.number)
    truth = sim.truth()["queues"][queue.id]
    assert (skill["skillName"], skill["queueCount"]) == (truth["name"], truth["waiting"]) == (queue.name, 3)
    assert parse_iso(skill["earliestQueueTime"]) == truth["longest_waiting_since"]
    assert skill["campaignName"] == queue.campaign_name and isinstance(skill["campaignId"], int)
    assert skill["agentsAvailable"] == 0  # nobody is on queue


async def test_contacts_carry_campaign_then_disposition_and_end_as_end_contact(make_sim, http):
    sim = await make_sim(queues=1, agents=1, on_queue_share=1.0, handle_mean=0.1, acw_range=(30.0, 30.0))
    headers = await bearer(http, sim)
    (queue,) = sim.model.queues.values()
    _, before = await get(http, sim, "/agents/states", headers)
    start = before["lastPollTime"]
    contact = sim.model.arrive(queue.id)
    _, body = await get(http, sim, "/contacts/active", headers, updatedSince=start)
    (record,) = body["activeContacts"]
    assert record["contactId"] == contact.number and record["campaignName"] == queue.campaign_name
    assert "dispositionName" not in record
    # Run the model ahead: the agent answers, hangs up after 3 s, and picks a disposition in wrap-up.
    sim.model.step(sim.model.now + 10)
    assert contact.state == "acw"
    _, body = await get(http, sim, "/contacts/active", headers, updatedSince=start)
    (record,) = body["activeContacts"]
    assert record["stateName"] == "ACW" and record["dispositionName"] == contact.disposition
    before_end = body["lastPollTime"]
    sim.model.step(sim.model.now + 31)  # the end of wrap-up
    assert contact.state == "ended"
    _, body = await get(http, sim, "/contacts/active", headers, updatedSince=before_end)
    (record,) = body["activeContacts"]
    assert (record["contactId"], record["stateName"]) == (contact.number, "EndContact")
    # A poller that asks after the end is not told again. (One that asks within the same millisecond
    # is: lastPollTime is cut to the millisecond, so a poll time is never later than what it covers.)
    ended_ms = int(sim.cxone.clock() * 1000)
    await eventually(lambda: int(sim.cxone.clock() * 1000) > ended_ms, what="the next millisecond")
    _, later = await get(http, sim, "/agents/states", headers)
    assert (await get(http, sim, "/contacts/active", headers, updatedSince=later["lastPollTime"]))[0] == 304


async def test_it_injects_throttling_with_retry_after(sim, http):
    headers = await bearer(http, sim)
    control.dispatch(sim, {"fault": "cxone_rest_error", "status": 429, "retry_after": 7, "count": 1})
    async with http.get(f"{api_url(sim)}{SERVICES}/agents/states", headers=headers) as reply:
        assert reply.status == 429 and reply.headers["Retry-After"] == "7"
        assert (await reply.json())["error"]
    assert (await get(http, sim, "/agents/states", headers))[0] == 200


async def test_it_sends_retry_after_as_an_http_date_when_told(sim, http):
    headers = await bearer(http, sim)
    control.dispatch(sim, {"fault": "cxone_retry_after_form", "form": "date"})
    control.dispatch(sim, {"fault": "cxone_rest_error", "status": 429, "retry_after": 7, "count": 1})
    asked = time.time()
    async with http.get(f"{api_url(sim)}{SERVICES}/agents/states", headers=headers) as reply:
        answered = time.time()
        assert reply.status == 429
        date = parsedate_to_datetime(reply.headers["Retry-After"]).timestamp()
    # Served at some moment between asking and the answer, plus 7 s rounded up to the whole second.
    assert date == int(date) and asked + 7 <= date <= answered + 8, (date - asked, answered - asked)


async def test_it_redirects_when_told(sim, http):
    control.dispatch(sim, {"fault": "cxone_redirect", "location": "http://127.0.0.1:9/elsewhere", "count": 1})
    async with http.post(f"{sim.base_url}/auth/token", data={"grant_type": "password"}, allow_redirects=False) as r:
        assert (r.status, r.headers["Location"]) == (307, "http://127.0.0.1:9/elsewhere")
    assert (await sign_in(http, sim))[0] == 200  # the count was one
    assert sim.cxone.counters.redirected == 1


async def test_it_refuses_credentials_when_told_and_until_cleared(sim, http):
    control.dispatch(sim, {"fault": "refuse_credentials"})
    status, body = await sign_in(http, sim)
    assert (status, body["error"]) == (401, "invalid_client")
    control.dispatch(sim, {"fault": "clear"})
    assert (await sign_in(http, sim))[0] == 200


async def test_unknown_versions_and_bad_parameters_are_refused(sim, http):
    headers = await bearer(http, sim)
    async with http.get(f"{api_url(sim)}/inContactAPI/services/latest/agents/states", headers=headers) as reply:
        assert reply.status == 404
    status, body = await get(http, sim, "/agents/states", headers, updatedSince="yesterday")
    assert status == 400 and body["error"] == "InvalidParameter"
    status, body = await get(http, sim, "/agents/states", headers, top="-1")
    assert status == 400
