"""The CXone connector against the real simulator: convergence, paging, ended contacts, tokens, auth."""

from __future__ import annotations

import asyncio
import socket
import time
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import urlsplit

import aiohttp
import pytest
from aiohttp import web

from simulator.server import SimulatorServer
from streams import sanity
from streams.oauth import TokenUnavailable
from streams.vendors.cxone import rest as cxone_rest
from streams.vendors.cxone.auth import CxoneAuth
from streams.vendors.cxone.connector import MIN_POLL_INTERVAL, CxoneConnector
from streams.vendors.cxone.queues import fetch_queues
from streams.vendors.cxone.rest import EPOCH, CxoneError, CxoneRest
from streams.vendors.registry import connector_class
from streams.vendors.spec import ConnectionSpec
from tests.cxone_util import CLIENT_SECRET, FAST, KEY_ID, KEY_SECRET, KEYS, POLL, converged, live, streaming
from tests.timing import FakeClock, eventually, scaled, scheduled_wait

# -- convergence -----------------------------------------------------------------------------------


async def test_it_converges_to_the_simulator_truth_with_campaigns_and_dispositions():
    async with streaming(rate=4.0, handle_mean=0.1, acw_range=(20.0, 20.0)) as run:
        await live(run)
        # Calls last 3 s; then wrap-up brings the first dispositions.
        await eventually(
            lambda: any(i.disposition for i in run.floor.interactions.values()), within=15, what="a disposition"
        )
        await converged(run)
        interactions = run.actual()["interactions"]
        assert interactions and all(i["campaign"] for i in interactions.values())
        assert {i["state"] for i in interactions.values()} >= {"wrapup"}
        health = run.connector.health
        assert health.reconnects == 0 and run.connector.snapshots == 1
        assert run.connector.polls > 3
        assert health.counters["malformed_record"] == 0 and health.counters["unwatched"] > 0


async def test_it_follows_changes_by_polling_without_a_new_snapshot():
    async with streaming(rate=0, presence_change_mean=0) as run:
        await live(run)
        queue_id = next(q for q in run.sim.model.queues if run.skill(q) in run.watched())
        agent_id = next(a for a, t in run.sim.truth()["agents"].items() if t["presence"] == "on_queue")
        run.control(action="set_presence", user_id=agent_id, presence="MEAL")
        run.control(action="arrive", queue_id=queue_id, count=3)
        await converged(run)
        assert run.floor.agent("c1", run.agent(agent_id)).presence == "meal"
        assert run.connector.snapshots == 1
        # Each poll continues from the last reply's lastPollTime: once the changes were heard, "304".
        unchanged = run.sim.cxone.counters.not_modified_by_list
        before = unchanged.get("agentStates", 0)
        await eventually(lambda: unchanged.get("agentStates", 0) >= before + 2, what="agent polls answered 304")


async def test_it_pages_through_and_reads_the_older_result_set_shape():
    async with streaming(page_size=3, rate=3.0) as run:
        run.control(fault="cxone_reply_shape", shape="resultSet")
        await live(run)
        polls = run.connector.polls
        # The model moves on under incremental polls.
        await eventually(lambda: run.connector.polls >= polls + 3, what="three more polls")
        await converged(run)
        # 20 agents a page of 3 at a time: seven pages for the snapshot's agents alone.
        assert run.connector.rest.calls >= 7 + 2 + 1
        assert run.connector.health.counters["malformed_record"] == 0


async def test_it_takes_added_and_dropped_skills_on_the_same_link():
    async with streaming(watch=1) as run:
        await live(run)
        every = tuple(sorted(str(q.number) for q in run.sim.model.queues.values()))
        run.connector.update(replace(run.connector.spec, queue_ids=every))
        await eventually(lambda: run.floor.source_queue_ids("c1") == set(every), what="the added skills")
        await converged(run)
        run.sim.resume()
        run.connector.update(replace(run.connector.spec, queue_ids=every[:2]))
        await eventually(lambda: run.floor.source_queue_ids("c1") == set(every[:2]), what="the dropped skills")
        await converged(run)
        assert run.connector.health.reconnects == 0


# -- contacts that end -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keep_ended", "full_contacts_every"),
    [(300.0, 60.0), (0.0, 1.0)],
    ids=["told-as-end-contact", "only-full-lists-tell"],
)
async def test_contacts_that_end_leave_the_floor(keep_ended, full_contacts_every):
    # Nobody is on queue and callers give up within a second or so: every contact ends by abandoning.
    # When the server lists ended contacts as EndContact (a simulator extra, kept KEEP_ENDED seconds), the
    # incremental polls end them, long before the next full contact list (a minute away); when it does not,
    # the full contact lists (every second here) end them.
    async with streaming(
        rate=0,
        on_queue_share=0.0,
        presence_change_mean=0,
        patience_mean=0.5,
        full_contacts_every=full_contacts_every,
    ) as run:
        run.sim.cxone.changes.keep_ended = keep_ended
        full_lists = []  # one entry per poll result handled that held the full contact list
        handle = run.connector.handle

        def counting(socket, result) -> None:
            if result.full_contacts:
                full_lists.append(result)
            handle(socket, result)

        run.connector.handle = counting
        await live(run)
        queue_id = next(q for q in run.sim.model.queues if run.skill(q) in run.watched())
        # Callers arrive while the model stands still, so the board sees them before they give up.
        run.sim.pause()
        contacts = run.control(action="arrive", queue_id=queue_id, count=3)["result"]["contact_ids"]
        numbers = {str(run.sim.model.contacts[c].number) for c in contacts}
        await eventually(lambda: numbers == run.floor.source_interaction_ids("c1"), what="the contacts")
        full_before = len(full_lists)
        run.sim.resume()
        await eventually(lambda: not run.floor.source_interaction_ids("c1"), what="the contacts to end")
        if keep_ended:
            assert len(full_lists) == full_before, "a full contact list ended them, not the EndContact records"
        else:
            assert len(full_lists) > full_before
        await converged(run)


async def test_a_full_contacts_poll_ends_contacts_no_increment_mentions():
    async with streaming(rate=0, on_queue_share=0.0, presence_change_mean=0, patience_mean=0.3) as run:
        # The simulator forgets ended contacts at once: incremental polls never say they ended.
        run.sim.cxone.changes.keep_ended = 0.0
        await live(run)
        queue_id = next(q for q in run.sim.model.queues if run.skill(q) in run.watched())
        run.sim.pause()
        run.control(action="arrive", queue_id=queue_id)
        await eventually(lambda: run.floor.source_interaction_ids("c1"), what="the contact")
        run.sim.resume()
        await eventually(lambda: not run.sim.model.contacts, what="the caller to give up")
        polls = run.connector.polls
        await eventually(lambda: run.connector.polls >= polls + 3, what="three more polls")
        assert run.floor.source_interaction_ids("c1"), "an incremental poll cannot have ended it"
        run.connector.full_contacts_every = POLL
        run.connector._full_contacts_at = 0.0
        await eventually(lambda: not run.floor.source_interaction_ids("c1"), what="the full poll to end it")
        assert run.connector.snapshots == 1


# -- snapshots and polls ---------------------------------------------------------------------------


async def test_a_poll_in_flight_when_a_resync_is_asked_for_is_handled_before_the_snapshot_not_after():
    async with streaming(rate=0, presence_change_mean=0) as run:
        await live(run)
        connector = run.connector
        poller = connector.link.sockets[0].ws
        agent_id = next(iter(run.sim.model.agents))
        number = run.agent(agent_id)
        fetch, fetched_meal, go_on = connector.rest.fetch, asyncio.Event(), asyncio.Event()

        async def held_after_the_meal(path, root, since, *, top):
            # The first poll to hear of the meal break holds on to it (and the poller's turn) until told.
            fetched = await fetch(path, root, since, top=top)
            meal = any(
                str(a.get("agentId")) == number and a.get("outStateDescription") == "Meal" for a in fetched.items
            )
            if meal and not fetched_meal.is_set():
                fetched_meal.set()
                await go_on.wait()
            return fetched

        connector.rest.fetch = held_after_the_meal
        run.control(action="set_presence", user_id=agent_id, presence="MEAL")
        await eventually(fetched_meal.is_set, what="a poll to fetch the meal break")
        # While that poll is in flight the agent moves on and a resync is asked for: it waits for the
        # poller's turn, holding nothing back yet.
        run.control(action="set_presence", user_id=agent_id, presence="TRAINING")
        connector.request_resync("test")
        await eventually(lambda: poller.turns_waiting == 1, what="the resync to wait for its turn")
        assert not connector.resyncs.holding
        go_on.set()
        await eventually(lambda: connector.snapshots == 2, what="the resync")
        # The meal break was delivered before the snapshot, which then put the agent in training.
        assert run.floor.agent("c1", number).presence == "training"
        await converged(run)


async def test_it_follows_server_relative_next_links():
    async with streaming(page_size=3) as run:
        run.control(fault="cxone_next_links", form="relative")
        await live(run)
        await converged(run)
        # 20 agents a page of 3 at a time: seven pages for the snapshot's agents alone.
        assert run.connector.rest.calls >= 7 + 2 + 1
        assert run.connector.health.reconnects == 0


API = "https://api-na1.niceincontact.com/inContactAPI/services/v31.0"


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        ("/inContactAPI/services/v31.0/agents/states?skip=4", f"{API}/agents/states?skip=4"),
        ("states?skip=4", f"{API}/agents/states?skip=4"),
        ("?skip=4", f"{API}/agents/states?skip=4"),
        (f"{API}/agents/states?skip=4", f"{API}/agents/states?skip=4"),
        ("https://API-NA1.niceincontact.com:443/x?skip=4", "https://API-NA1.niceincontact.com:443/x?skip=4"),
        ("http://api-na1.niceincontact.com/x?skip=4", None),  # the same host, but the token in clear
        ("http://api-na1.niceincontact.com:443/x?skip=4", None),
        ("https://api-na1.niceincontact.com:8443/x?skip=4", None),
        ("https://api-na1.niceincontact.com.evil.example/x", None),
        ("//evil.example/x?skip=4", None),
    ],
)
def test_next_links_resolve_against_their_page_and_stay_on_the_apis_origin(link, expected):
    rest = CxoneRest(API, None, None)
    current = f"{API}/agents/states"
    if expected is None:
        with pytest.raises(CxoneError, match="another origin"):
            rest.next_url(current, link)
    else:
        assert rest.next_url(current, link) == expected


def test_a_plain_http_api_takes_plain_http_links():
    # The simulator's API (an admin's explicit choice): its own links must work.
    rest = CxoneRest("http://localhost:8080/inContactAPI/services/v31.0", None, None)
    assert rest.next_url("http://localhost:8080/a", "/b?skip=1") == "http://localhost:8080/b?skip=1"


# -- what a fetch reads, and says it read -----------------------------------------------------------


class FixedToken:
    """Hands out one token: these tests are about paging, not signing in."""

    async def token(self) -> str:
        return "t"

    async def invalidate(self, value: str) -> None:
        return


@asynccontextmanager
async def http_server(handler):
    """Serve HANDLER for every path on 127.0.0.1 (a free port); yield the base URL."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.create_server(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        await runner.cleanup()


def page(items: int, total: int | None, next_skip: int | None) -> tuple[int, dict]:
    body = {"agentStates": [{"agentId": i + 1} for i in range(items)], "lastPollTime": "2026-01-02T03:04:05.000Z"}
    body["totalRecords"] = total
    body["_links"] = {
        "next": f"/inContactAPI/services/v31.0/agents/states?top=2&skip={next_skip}" if next_skip else None
    }
    return 200, body


@asynccontextmanager
async def scripted(replies: list[tuple[int, dict | None]], **limits):
    """Run an API answering the Nth call with the Nth of REPLIES; yield a CxoneRest calling it."""
    queue = list(replies)

    async def answer(request: web.Request) -> web.StreamResponse:
        status, body = queue.pop(0) if queue else (500, {"error": "script ran out"})
        return web.Response(status=status) if body is None else web.json_response(body, status=status)

    async with http_server(answer) as base, aiohttp.ClientSession() as session:
        yield CxoneRest(f"{base}/inContactAPI/services/v31.0", FixedToken(), session, **limits)


@pytest.mark.parametrize(
    ("replies", "limits", "complete", "skipped"),
    [
        ([page(2, 4, 2), page(2, 4, None)], {}, True, False),
        ([(304, None)], {}, True, False),  # nothing changed: a whole answer
        ([page(2, 5, 2), page(2, 4, None)], {}, True, True),  # shrank while paged: a record may be missed
        ([page(2, 5, None)], {}, True, True),  # fewer records than totalRecords
        ([page(2, None, 2), page(2, None, 4), page(2, None, 6)], {"max_pages": 2}, False, False),
        ([page(2, 9, 2), page(2, 9, 2)], {}, False, False),  # the same next link again
        ([page(2, 9, 2), page(0, 9, 4)], {}, False, False),  # an empty page that links on
        ([page(2, 9, 2), (304, None)], {}, False, False),  # 304 after the first page
    ],
    ids=[
        "whole",
        "not-modified",
        "shrank",
        "short-of-total",
        "too-many-pages",
        "link-again",
        "empty-page",
        "304-later",
    ],
)
async def test_a_fetch_says_whether_it_read_the_whole_list(replies, limits, complete, skipped):
    async with scripted(replies, **limits) as rest:
        fetched = await rest.fetch("/agents/states", "agentStates", EPOCH, top=2)
    assert (fetched.complete, fetched.may_have_skipped) == (complete, skipped)
    assert fetched.whole == (complete and not skipped)
    assert (fetched.problem is None) == complete


@pytest.mark.parametrize(
    ("replies", "limits", "error"),
    [
        ([page(2, 6, 2), page(2, 6, 4), page(2, 6, None)], {"max_records": 5}, "more than 5 records"),
        ([page(2, 6, 2), page(2, 6, 4), page(2, 6, None)], {"max_fetch_bytes": 500}, "more than 500 bytes"),
        ([(200, {"totalRecords": 0, "lastPollTime": "2026-01-02T03:04:05.000Z"})], {}, "holds no agentStates"),
    ],
    ids=["records", "bytes", "no-list"],
)
async def test_a_fetch_fails_clearly_past_its_limits_or_without_its_list(replies, limits, error):
    async with scripted(replies, **limits) as rest:
        with pytest.raises(CxoneError, match=error):
            await rest.fetch("/agents/states", "agentStates", EPOCH, top=2)


# -- tokens and credentials --------------------------------------------------------------------------


async def test_it_refreshes_the_token_before_it_expires():
    # The sign-in's clock and the simulator's token store share a clock the test moves: each token is
    # taken to its refresh point (half its life) and no further, so however slow a call is on a busy
    # machine, no call can meet an expired token unless the refresh itself is late.
    async with streaming(cxone_token_expires_in=600) as run:
        await live(run)
        auth = run.connector.auth
        clock = FakeClock(time.time())
        run.sim.cxone.tokens.clock = auth._clock = clock
        fetched = auth.fetched
        for refreshes in (1, 2):
            cached = await auth.cache.get(auth.key)
            clock.now = max(clock.now, cached.refresh_at) + 0.001
            # Fetched and cached: the next token's refresh point is known only then.
            await eventually(lambda n=refreshes: auth.fetched >= fetched + n, what=f"refresh {refreshes}")
        # Renewed at half-life, never late: no call ever met an expired token.
        assert run.sim.cxone.counters.unauthorized == 0
        assert auth.password_grants == 1 and run.sim.cxone.counters.refresh_grants >= 2
        assert any(e["kind"] == "token_refreshed" for e in run.connector.health.events)
        assert run.connector.health.reconnects == 0
        await converged(run)


async def test_a_refused_refresh_falls_back_to_signing_in_with_the_access_key():
    async with streaming() as run:
        await live(run)
        auth = run.connector.auth
        run.control(fault="cxone_revoke_tokens", refresh=True)
        await eventually(lambda: auth.password_grants == 2, what="a new sign-in")
        assert auth.refresh_grants == 1  # tried first, refused
        await converged(run)
        assert run.connector.health.reconnects == 0 and run.connector.health.is_live()


async def test_refused_credentials_show_as_auth_failed_and_wait_minutes():
    async with streaming(key_secret="wrong=secret") as run:
        await eventually(lambda: run.connector.health.state == "auth_failed", what="auth_failed")
        # The next sign-in waits for an admin (minutes), not the reconnect backoff.
        assert scheduled_wait(run.connector.health) == FAST.auth_retry
        assert run.sim.cxone.counters.token_requests == 1
        assert "wrong=secret" not in repr(run.connector.health.as_dict())
        assert f"retrying in {scaled(60):.0f} s" in run.connector.health.detail


async def test_a_403_from_the_api_shows_as_auth_failed_and_waits_minutes():
    async with streaming() as run:
        await live(run)
        # The token is good, but the API user lacks a permission: only an admin can help.
        run.control(fault="cxone_rest_error", status=403, count=100_000)
        await eventually(lambda: run.connector.health.state == "auth_failed", what="auth_failed")
        assert "403" in run.connector.health.detail
        # Straight from the poller to the long wait: no quick reconnect that would only be refused again.
        assert run.connector.health.reconnects == 1
        assert f"retrying in {scaled(60):.0f} s" in run.connector.health.detail


@pytest.mark.parametrize(
    ("path", "status", "state"),
    [
        ("/auth/token", 307, "auth_failed"),
        ("/.well-known/cxone-configuration", 302, "reconnecting"),
        ("/inContactAPI/", 302, "degraded"),
    ],
    ids=["token", "discovery", "api"],
)
async def test_redirects_are_never_followed(path, status, state):
    went_elsewhere: list[tuple[str, bytes]] = []

    async def elsewhere(request: web.Request) -> web.Response:
        went_elsewhere.append((request.path, await request.read()))
        return web.json_response({})

    async with http_server(elsewhere) as other, streaming() as run:
        # Armed before the connector's first call (its task has not run yet).
        run.control(fault="cxone_redirect", location=f"{other}/collect", path=path, status=status, count=100_000)
        await eventually(lambda: any(s == state and "redirect" in d for s, d in run.states), what=state)
        assert run.sim.cxone.counters.redirected >= 1
        # On a 307 the client would post the form again, access key secret and all.
        assert went_elsewhere == []


async def test_real_time_calls_go_to_the_discovered_api_and_sign_ins_to_the_login_host():
    async with streaming() as run:
        await live(run)
        polls = run.connector.polls
        await eventually(lambda: run.connector.polls >= polls + 2, what="two polls")
        login, api = urlsplit(run.sim.base_url).netloc, urlsplit(run.connector.rest.api_base).netloc
        assert api != login  # the simulator names another origin for the API, as NICE does
        counters = run.sim.cxone.counters
        assert set(counters.api_hosts) == {api} and set(counters.auth_hosts) == {login}


async def test_sign_in_logs_no_access_key_id_and_refuses_an_oversized_token_reply():
    sim = SimulatorServer(port=0, queues=1, agents=1, rate=0, client_secret=CLIENT_SECRET, **KEYS)
    base = await sim.start()
    try:
        async with aiohttp.ClientSession() as session:
            auth = CxoneAuth(base, sim.client_id, CLIENT_SECRET, KEY_ID, KEY_SECRET, session=session)
            assert KEY_ID not in repr(auth) and "floorview" not in repr(auth)
            assert await auth.sign_in()
            small = CxoneAuth(
                base, sim.client_id, CLIENT_SECRET, KEY_ID, KEY_SECRET, session=session, max_reply_bytes=300
            )
            with pytest.raises(TokenUnavailable, match="more than 300 bytes"):
                await small.sign_in()
    finally:
        await sim.stop()


async def test_credentials_refused_while_polling_end_in_auth_failed():
    async with streaming() as run:
        await live(run)
        run.control(fault="refuse_credentials")
        run.control(fault="cxone_revoke_tokens", refresh=True)
        await eventually(lambda: run.connector.health.state == "auth_failed", what="auth_failed")
        assert "refused" in run.connector.health.detail


# -- the rest ----------------------------------------------------------------------------------------


async def test_fetch_queues_lists_every_skill():
    sim = SimulatorServer(
        port=0, queues=12, agents=3, rate=0, client_secret=CLIENT_SECRET, cxone_access_key_secret=KEY_SECRET
    )
    base = await sim.start()
    try:
        spec = ConnectionSpec.of(
            "cxone",
            base_url=base,
            client_id=sim.client_id,
            client_secret=CLIENT_SECRET,
            access_key_id=sim.cxone_access_key_id,
            access_key_secret=KEY_SECRET,
            api_version="31",  # as an admin might write it: the paths say v31.0
        )
        skills = await fetch_queues(spec)
    finally:
        await sim.stop()
    assert {s["id"]: s["name"] for s in skills} == {str(q.number): q.name for q in sim.model.queues.values()}


async def test_it_closes_cleanly_and_idempotently():
    async with streaming() as run:
        await live(run)
        poller_tasks = [task for socket in run.connector.link.sockets for task in socket.tasks]
        await run.connector.close()
        await run.connector.close()
        assert run.connector.health.state == "disabled"
        # The loop ends with the close (no new link), and the poller of its last link ended with it.
        await asyncio.wait_for(run.task, scaled(5))
        assert poller_tasks and all(task.done() for task in poller_tasks)


def test_it_never_polls_faster_than_once_a_second():
    spec = ConnectionSpec.of("cxone", base_url="https://x", client_id="id", client_secret="s", poll_interval=0.01)
    connector = CxoneConnector(spec, lambda e: None)
    assert connector.interval == MIN_POLL_INTERVAL == 1.0
    slower = replace(spec, settings=replace(spec.settings, poll_interval=7.5))
    assert CxoneConnector(slower, lambda e: None).interval == 7.5


def test_the_registry_knows_cxone():
    assert connector_class("cxone") is CxoneConnector


async def test_the_queue_import_lists_cxone_skills():
    from streams.models import Connection
    from streams.queue_import import fetch_vendor_queues

    sim = SimulatorServer(port=0, queues=3, agents=2, rate=0, cxone_access_key_secret=KEY_SECRET)
    base = await sim.start()
    try:
        connection = Connection.of(
            "cxone",
            name="cx",
            base_url=base,
            client_id=sim.client_id,
            access_key_id=sim.cxone_access_key_id,
            client_secret=sim.client_secret,
            access_key_secret=KEY_SECRET,
        )
        skills = await fetch_vendor_queues(connection)
    finally:
        await sim.stop()
    assert sorted(s["id"] for s in skills) == sorted(str(q.number) for q in sim.model.queues.values())


async def test_a_poll_time_hours_ahead_is_counted_and_polling_goes_on_from_the_previous_one(monkeypatch):
    # A bogus lastPollTime three hours ahead, sent back as updatedSince, would hide every change for three hours.
    ahead = datetime.fromtimestamp(time.time() + 3 * 3600, UTC).isoformat().replace("+00:00", "Z")
    real = cxone_rest.parse_page

    def skewed(body, root):
        return real(body | {"lastPollTime": ahead} if isinstance(body, dict) else body, root)

    async with streaming() as run:
        await live(run)
        monkeypatch.setattr(cxone_rest, "parse_page", skewed)
        health = run.connector.health
        # Refused in the poller, and counted on the link's health (the poll runs outside handle()).
        await eventually(lambda: health.counters["no_poll_time"] >= 3, what="polls with the bad poll time")
        assert health.counters[sanity.BAD_TIME] >= 3
        assert ahead not in run.connector.cursors.values()
        monkeypatch.setattr(cxone_rest, "parse_page", real)
        await converged(run)
