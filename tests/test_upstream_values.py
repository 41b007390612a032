"""Absurd figures and times from upstream: refused per field (or record), counted, never the batch, never a frozen row.

Each case goes through a real parser entry point: CXone's record parsers,
Genesys' frame parser, the generic feeds' ``RecordFolder``, and a webhook
delivery read by the webhook connector's own loop.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import aiohttp
import pytest
from aiohttp import web

from streams import sanity
from streams.events import UNSET, reported
from streams.feeds.mapping import FieldMapping, RecordError, RecordFolder
from streams.floor import Floor
from streams.health import LinkHealth
from streams.hooks.memory_queue import MemoryHookQueue
from streams.hooks.queue import HookItem
from streams.link.timing import Timing
from streams.oauth import TokenProvider, TokenUnavailable
from streams.vendors.cxone.auth import CxoneAuth
from streams.vendors.cxone.parsers import agent_status, contact_update, parse_page, poll_time, skill_stats
from streams.vendors.cxone.values import ParseError, entity_id
from streams.vendors.genesys.connector import GenesysConnector
from streams.vendors.genesys.parsers import parse_frame
from streams.vendors.genesys.replies import parse_aggregate_results, parse_members, parse_observation_results
from streams.vendors.spec import ConnectionSpec
from streams.vendors.webhook.connector import WebhookConnector
from tests.timing import eventually

# The cases the issue names, as JSON text: 1e400 decodes as infinity, which no json.dumps writes.
BAD_FIGURES = {"1e300": "1e300", "1e400": "1e400", "negative": "-3", "NaN": "NaN", "string": '"5"', "bool": "true"}
FAR_FUTURE_MS = 99_999_999_999_999  # 5138-11-16: the record in the issue
FAR_FUTURE = "5138-11-16T09:46:39.999Z"


MARK = "<raw>"


def decoded(text: str):
    return json.loads(text)


def spliced(value, text: str) -> str:
    """Return VALUE as JSON with TEXT put raw where the string MARK was (so 1e400 stays 1e400 on the wire)."""
    return json.dumps(value).replace(json.dumps(MARK), text)


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


# -- the rule --------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", BAD_FIGURES.values(), ids=BAD_FIGURES.keys())
def test_a_count_or_a_duration_out_of_range_is_refused_and_counted(text):
    health = LinkHealth()
    with sanity.counting(health.count):
        assert sanity.count(decoded(text)) is None
        assert sanity.duration_ms(decoded(text)) is None
    assert health.counters[sanity.BAD_FIGURE] == 2


def test_sane_counts_and_durations_pass_and_absent_ones_are_not_counted():
    health = LinkHealth()
    with sanity.counting(health.count):
        assert [sanity.count(v) for v in (0, 7, 7.0, sanity.MAX_COUNT)] == [0, 7, 7, sanity.MAX_COUNT]
        assert sanity.count(2.5) is None and sanity.count(sanity.MAX_COUNT + 1) is None
        assert sanity.duration_ms(1500.5) == 1500.5
        assert sanity.count(None) is None and sanity.duration_ms(None) is None
    assert health.counters[sanity.BAD_FIGURE] == 2  # 2.5 and one above the bound
    # Outside any counting block a refusal still refuses.
    assert sanity.count(math.inf) is None


def test_times_outside_the_window_are_refused_and_ordering_times_ahead_are_taken_as_now():
    now = 2_000_000_000.0
    health = LinkHealth()
    with sanity.counting(health.count):
        assert sanity.moment(now - 3600, now=now) == now - 3600
        assert sanity.moment(now + sanity.MAX_AHEAD, now=now) == now + sanity.MAX_AHEAD
        assert sanity.moment(now + sanity.MAX_AHEAD + 1, now=now) is None
        assert sanity.moment(FAR_FUTURE_MS / 1000, now=now) is None
        assert sanity.moment(0.0, now=now) is None  # 1970: nothing on a board began then
        assert sanity.moment(math.nan, now=now) is None
        assert health.counters[sanity.BAD_TIME] == 4
        assert sanity.ordering(FAR_FUTURE_MS / 1000, now=now) == now
        assert sanity.ordering(5.0, now=now) == 5.0  # old is merely stale, not refused
        assert sanity.ordering(math.inf, now=now) is None
    assert health.counters[sanity.FUTURE_TIME] == 1 and health.counters[sanity.BAD_TIME] == 5


# -- CXone -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", BAD_FIGURES.values(), ids=BAD_FIGURES.keys())
def test_a_cxone_skill_with_a_bad_count_keeps_its_other_figures(text):
    item = {"skillId": 11, "skillName": "Sales", "queueCount": decoded(text), "agentsAvailable": 2}
    item |= {"agentsLoggedIn": 5, "agentsUnavailable": 1, "inSLA": 3, "outSLA": decoded(text)}
    health = LinkHealth()
    with sanity.counting(health.count):
        stats = skill_stats("c1", item)
    # The bad count and the service level that needs it are left out; the rest applies.
    assert reported(stats) == {"name": "Sales", "idle_agents": 2, "on_queue_agents": 4}
    assert health.counters[sanity.BAD_FIGURE] == 2


def test_a_cxone_id_of_1e300_is_no_id():
    for value in (1e300, 10**30, math.inf):
        with pytest.raises(ParseError):
            entity_id(value)
    assert entity_id(12345.0) == "12345"


def test_cxone_times_in_the_year_5138_are_left_out_and_counted():
    now = time.time()
    health = LinkHealth()
    with sanity.counting(health.count):
        contact = contact_update("c1", {"contactId": 9, "stateName": "Active", "startDate": FAR_FUTURE})
        agent = agent_status(
            "c1", {"agentId": 4, "agentStateName": "Available", "startDate": FAR_FUTURE}, frozenset({"11"})
        )
        skill = skill_stats("c1", {"skillId": 11, "queueCount": 1, "earliestQueueTime": FAR_FUTURE})
        fine = contact_update("c1", {"contactId": 9, "stateName": "Active", "startDate": iso(now - 60)})
    assert contact.started_at is UNSET and contact.state == "connected"
    assert agent.presence_since is UNSET and agent.routing_since is UNSET and agent.routing_status == "IDLE"
    assert skill.longest_waiting_since is UNSET and skill.waiting == 1
    assert fine.started_at == pytest.approx(now - 60, abs=0.01)
    assert health.counters[sanity.BAD_TIME] == 3
    # A poll time in the year 5138 is not continued from (no change would ever be heard of again).
    assert poll_time(FAR_FUTURE) is None and poll_time(iso(now)) == iso(now)


# -- Genesys ---------------------------------------------------------------------------------------


def test_a_cxone_poll_time_ahead_of_our_clock_is_no_cursor():
    health = LinkHealth()
    with sanity.counting(health.count):
        assert poll_time(iso(time.time() + 3 * 3600)) is None  # hours ahead: no change heard for hours
        assert poll_time(iso(time.time() + 1)) is not None  # a clock a little ahead is fine
    assert health.counters[sanity.BAD_TIME] == 1


@pytest.mark.parametrize("total", [str(10**30), "1e400", "-1", "2.5", '"7"'])
def test_a_cxone_total_out_of_range_is_unknown_and_counted(total):
    body = spliced({"agentStates": [{"agentId": 1}], "totalRecords": MARK}, total)
    health = LinkHealth()
    with sanity.counting(health.count):
        page = parse_page(json.loads(body), "agentStates")
    assert page.total is None and len(page.items) == 1
    assert health.counters[sanity.BAD_FIGURE] == 1


def observation_frame(queue: str, interval: str, metrics_json: str) -> str:
    """Return an observations frame as JSON text, METRICS_JSON spliced in raw."""
    body = {"group": {"queueId": queue}, "data": [{"interval": interval, "metrics": MARK}]}
    return spliced({"topicName": f"v2.analytics.queues.{queue}.observations", "eventBody": body}, metrics_json)


@pytest.mark.parametrize("text", BAD_FIGURES.values(), ids=BAD_FIGURES.keys())
def test_a_genesys_frame_with_a_bad_count_is_malformed_and_counted_not_an_error(text):
    instant = iso(time.time() - 5)
    metrics = spliced(
        [{"metric": "oWaiting", "stats": {"count": MARK}}, {"metric": "oInteracting", "stats": {"count": 2}}], text
    )
    health = LinkHealth()
    with sanity.counting(health.count):
        notice = parse_frame("c1", observation_frame("q1", f"{instant}/{instant}", metrics))
    assert notice.kind == "malformed"
    assert health.counters[sanity.BAD_FIGURE] == 1


def test_a_genesys_wait_of_1e400_ms_leaves_the_longest_wait_out_and_keeps_the_counts():
    instant = iso(time.time() - 5)
    metrics = (
        '[{"metric": "oWaiting", "stats": {"count": 3}},'
        ' {"metric": "oLongestWaiting", "stats": {"count": 1, "calculatedMetricValue": 1e400}}]'
    )
    health = LinkHealth()
    with sanity.counting(health.count):
        notice = parse_frame("c1", observation_frame("q1", f"{instant}/{instant}", metrics))
    assert notice.kind == "events"
    assert reported(notice.events[0].stats) == {"waiting": 3}
    assert health.counters[sanity.BAD_FIGURE] == 1


def test_a_genesys_presence_dated_5138_keeps_the_presence_but_not_the_date():
    body = {"presence": {"presenceDefinition": {"systemPresence": "BREAK"}, "modifiedDate": FAR_FUTURE}}
    health = LinkHealth()
    with sanity.counting(health.count):
        notice = parse_frame("c1", json.dumps({"topicName": "v2.users.u1.activity", "eventBody": body}))
    assert reported(notice.events[0]) == {"presence": "break"}
    assert health.counters[sanity.BAD_TIME] == 1


@pytest.mark.parametrize("date", [FAR_FUTURE, 1e16, "garbage"], ids=["5138", "1e16-ms", "garbage"])
def test_a_genesys_presence_with_a_bad_date_keeps_the_presence(date):
    body = {"presence": {"presenceDefinition": {"systemPresence": "BREAK"}, "modifiedDate": date}}
    health = LinkHealth()
    with sanity.counting(health.count):
        notice = parse_frame("c1", json.dumps({"topicName": "v2.users.u1.activity", "eventBody": body}))
    assert notice.kind == "events" and reported(notice.events[0]) == {"presence": "break"}
    assert health.counters[sanity.BAD_TIME] == 1


def test_a_genesys_wait_dated_5138_costs_the_longest_wait_only():
    instant = iso(time.time() - 5)
    dated = {"observations": [{"observationDate": FAR_FUTURE}]}
    metrics = json.dumps(
        [
            {"metric": "oWaiting", "stats": {"count": 3}, **dated},
            {"metric": "oLongestWaiting", "stats": {"count": 1}, **dated},
        ]
    )
    health = LinkHealth()
    with sanity.counting(health.count):
        notice = parse_frame("c1", observation_frame("q1", f"{instant}/{instant}", metrics))
    assert notice.kind == "events"
    assert reported(notice.events[0].stats) == {"waiting": 3}
    assert health.counters[sanity.BAD_TIME] == 2


# -- Genesys REST replies: one bad record costs that record ----------------------------------------

NOW_ISO = iso(time.time() - 60)


def genesys_metric(name: str, stats: dict, **extra) -> dict:
    return {"metric": name, "stats": stats, **extra}


def observations_reply(bad_metrics: list) -> dict:
    good = [genesys_metric("oWaiting", {"count": 2}), genesys_metric("oOnQueueUsers", {"count": 4})]
    return {
        "results": [{"group": {"queueId": "bad"}, "data": bad_metrics}, {"group": {"queueId": "good"}, "data": good}]
    }


def aggregates_reply(bad_metrics: list) -> dict:
    def result(queue: str, metrics: list) -> dict:
        return {
            "group": {"queueId": queue},
            "data": [{"interval": f"{NOW_ISO}/{iso(time.time() + 600)}", "metrics": metrics}],
        }

    return {"results": [result("bad", bad_metrics), result("good", [genesys_metric("nOffered", {"count": 5})])]}


MEMBERS_REPLY = {
    "entities": [
        {"id": "u-bad", "presence": {"presenceDefinition": {"systemPresence": 5}}},  # no presence at all
        {"id": "u-1e16", "presence": {"presenceDefinition": {"systemPresence": "BREAK"}, "modifiedDate": 1e16}},
        {"id": "u-garbage", "routingStatus": {"status": "IDLE", "startTime": "garbage"}},
    ]
}

BAD_QUEUE_FIGURES = {
    "1e300": [genesys_metric("oWaiting", {"count": 1e300})],
    "negative": [genesys_metric("oInteracting", {"count": -1})],
    "no-date": [genesys_metric("oLongestWaiting", {"count": 1}, observations="x")],
}


@pytest.mark.parametrize("metrics", BAD_QUEUE_FIGURES.values(), ids=BAD_QUEUE_FIGURES.keys())
def test_one_bad_queue_in_the_observations_reply_costs_that_queue_only(metrics):
    health = LinkHealth()
    with sanity.counting(health.count):
        parts = parse_observation_results("c1", observations_reply(metrics), time.time())
    assert [(p.stats.queue_id, reported(p.stats)) for p in parts] == [("good", {"waiting": 2, "on_queue_agents": 4})]
    assert health.counters[sanity.MALFORMED_RECORD] == 1


def test_one_bad_interval_in_the_aggregates_reply_costs_that_interval_only():
    health = LinkHealth()
    with sanity.counting(health.count):
        parts = parse_aggregate_results("c1", aggregates_reply([genesys_metric("tAnswered", {"count": 1e300})]))
    assert [(p.stats.queue_id, p.stats.offered) for p in parts] == [("good", 5)]
    assert health.counters[sanity.MALFORMED_RECORD] == 1 and health.counters[sanity.BAD_FIGURE] == 1


@pytest.mark.parametrize(
    "service_level",
    [{"numerator": 9, "denominator": 4}, {"numerator": -1, "denominator": 4}, {"numerator": 1, "denominator": 1e300}],
    ids=["above-100%", "negative", "1e300"],
)
def test_a_bad_service_level_costs_its_numerator_and_denominator_only(service_level):
    metrics = [genesys_metric("nOffered", {"count": 7}), genesys_metric("oServiceLevel", service_level)]
    health = LinkHealth()
    with sanity.counting(health.count):
        parts = parse_aggregate_results("c1", aggregates_reply(metrics))
    bad = next(p.stats for p in parts if p.stats.queue_id == "bad")
    assert bad.offered == 7 and bad.sl_numerator is UNSET and bad.sl_denominator is UNSET
    assert health.counters[sanity.BAD_FIGURE] == 1 and health.counters[sanity.MALFORMED_RECORD] == 0


def test_a_member_with_a_bad_date_keeps_its_state_and_a_malformed_member_costs_itself_only():
    health = LinkHealth()
    with sanity.counting(health.count):
        members = {m.agent_id: reported(m.status) for m in parse_members("c1", MEMBERS_REPLY)}
    assert members == {
        "u-1e16": {"presence": "break"},
        "u-garbage": {"routing_status": "IDLE"},
    }
    assert health.counters[sanity.BAD_TIME] == 2 and health.counters[sanity.MALFORMED_RECORD] == 1


class StubGenesysRest:
    """Genesys' REST API as the connector calls it: canned replies by path."""

    def __init__(self, replies: dict) -> None:
        self.replies = replies

    async def request(self, method: str, path: str, *, params=None, json=None):
        return self.replies[path]

    async def pages(self, path: str, params=None):
        yield self.replies[path]


async def test_a_genesys_snapshot_with_one_bad_queue_and_one_bad_member_succeeds():
    spec = ConnectionSpec.of(
        "genesys",
        base_url="http://genesys.invalid",
        client_id="id",
        client_secret="secret",
        queue_ids=("bad", "good"),
    )
    connector = GenesysConnector(spec, lambda event: None, health=LinkHealth())
    bad_figures = [genesys_metric("oWaiting", {"count": 1e300})]
    connector.rest = StubGenesysRest(
        {
            "/api/v2/routing/queues": {"entities": [{"id": "bad", "name": "Bad"}, {"id": "good", "name": "Good"}]},
            "/api/v2/analytics/queues/observations/query": observations_reply(bad_figures),
            "/api/v2/analytics/queues/aggregates/query": aggregates_reply(
                [genesys_metric("tAnswered", {"count": 1e300})]
            ),
            "/api/v2/routing/queues/bad/members": MEMBERS_REPLY,
            "/api/v2/routing/queues/good/members": {"entities": []},
        }
    )
    with sanity.counting(connector.health.count):
        snapshot = await connector.snapshot()
    assert snapshot.queues["good"].waiting == 2 and snapshot.queues["good"].offered == 5
    assert snapshot.queues["bad"].name == "Bad"
    assert set(snapshot.agents) == {"u-1e16", "u-garbage"}
    assert connector.health.counters[sanity.MALFORMED_RECORD] == 3  # a queue, an interval, a member


# -- generic feeds: the field mapping --------------------------------------------------------------


NOW = 1_800_000_000.0  # the folder's clock in the tests below: no test depends on how fast it runs
NOW_MS = NOW * 1000


def test_a_record_stamped_5138_does_not_freeze_its_row():
    folder = RecordFolder("c1", FieldMapping(), clock=lambda: NOW)
    health = LinkHealth()
    with sanity.counting(health.count):
        first = folder.fold({"interaction_id": "i1", "timestamp": FAR_FUTURE_MS, "state": "waiting"})
        real = folder.fold({"interaction_id": "i1", "timestamp": NOW_MS + 1000, "state": "connected"})
    assert first.event is not None and first.event.state == "waiting"
    # The next real update applies: it is not "older" than the year 5138.
    assert real.dropped is None and real.event.state == "connected"
    assert health.counters[sanity.FUTURE_TIME] == 1
    # Ordering still works for real records.
    stale = folder.fold({"interaction_id": "i1", "timestamp": NOW_MS, "state": "held"})
    assert stale.dropped == "stale"


def test_a_record_stamped_5138_does_not_drop_real_records_stamped_before_it_was_processed():
    # A backlog: records stamped a minute ago are folded after one from the year 5138.
    folder = RecordFolder("c1", FieldMapping(), clock=lambda: NOW)
    folder.fold({"interaction_id": "i1", "timestamp": FAR_FUTURE_MS, "state": "waiting"})
    backlog = folder.fold({"interaction_id": "i1", "timestamp": NOW_MS - 60_000, "state": "connected"})
    assert backlog.dropped is None and backlog.event.state == "connected"
    # The real record moved the cursor: what is older than it is stale.
    assert folder.fold({"interaction_id": "i1", "timestamp": NOW_MS - 90_000}).dropped == "stale"


def test_a_record_that_fails_after_it_was_ordered_moves_no_cursor():
    folder = RecordFolder("c1", FieldMapping(), clock=lambda: NOW)
    with pytest.raises(RecordError):
        folder.fold({"interaction_id": "i1", "timestamp": NOW_MS, "queue_id": math.inf})  # 1e400 decoded
    earlier = folder.fold({"interaction_id": "i1", "timestamp": NOW_MS - 1000, "state": "waiting"})
    assert earlier.dropped is None and earlier.event.state == "waiting"


@pytest.mark.parametrize("text", BAD_FIGURES.values(), ids=BAD_FIGURES.keys())
def test_a_record_with_a_bad_start_keeps_its_other_fields(text):
    folder = RecordFolder("c1", FieldMapping())
    record = json.loads(spliced({"interaction_id": "i1", "state": "waiting", "payload": {"started_at": MARK}}, text))
    health = LinkHealth()
    with sanity.counting(health.count):
        event = folder.fold(record).event
    assert event.state == "waiting" and event.started_at is UNSET
    assert health.counters[sanity.BAD_TIME] == 1


def test_a_record_whose_id_is_1e400_is_refused():
    with pytest.raises(RecordError):
        RecordFolder("c1", FieldMapping()).fold(json.loads('{"interaction_id": 1e400}'))


# -- a webhook delivery, through the connector's loop ------------------------------------------------


async def delivered(items: list[str]) -> tuple[Floor, WebhookConnector]:
    """Run ITEMS through a webhook connector's own loop as one delivery; return the Floor and the connector."""
    queue = MemoryHookQueue()
    await queue.offer("c1", [HookItem(text) for text in items])
    floor = Floor()
    spec = ConnectionSpec.of("webhook", queue_ids=("q1",))
    conn = WebhookConnector(spec, floor.apply, timing=Timing(backoff_first=0.01), health=LinkHealth(), queue=queue)
    task = asyncio.create_task(conn.run())
    try:
        await eventually(lambda: conn.items == len(items), what="the whole delivery to be handled")
    finally:
        await conn.close()
        await asyncio.gather(task, return_exceptions=True)
    return floor, conn


async def test_one_bad_item_in_a_webhook_delivery_costs_that_item_only():
    now = time.time()
    stamp = int(now * 1000)

    def record(n: int, interaction: str, **fields) -> str:
        base = {"id": f"r{n}", "type": "interaction.updated", "timestamp": stamp + n, "state": "waiting"}
        return json.dumps(base | {"interaction_id": interaction, "queue_id": "q1"} | fields)

    def envelope(count: str) -> str:
        instant = iso(now - 1)
        metrics = spliced([{"metric": "oWaiting", "stats": {"count": MARK}}], count)
        frame = observation_frame("q1", f"{instant}/{instant}", metrics)
        return spliced(
            {"version": "0", "source": "aws.partner/genesys.com/x", "detail-type": "t", "detail": MARK}, frame
        )

    items = [
        record(1, "good-1"),
        envelope("1e400"),  # OverflowError once took the whole delivery with it
        record(2, "good-2", payload={"started_at": 1e300}),  # the start is left out, the record applies
        record(3, "future", timestamp=FAR_FUTURE_MS),  # applies, ordered as now
        '{"interaction_id": 1e400, "queue_id": "q1"}',  # refused: "inf" is no id
        envelope("1e300"),
        envelope("4"),
        record(4, "future", timestamp=stamp + 60_000, state="connected"),  # a real update after the 5138 one
    ]
    floor, conn = await delivered(items)
    assert floor.source_interaction_ids("c1") == {"good-1", "good-2", "future"}
    assert floor.interaction("c1", "good-2").started_at is None
    assert floor.interaction("c1", "future").state == "connected"
    assert floor.queue("c1", "q1").waiting == 4
    counters = conn.health.counters
    assert counters["handler_error"] == 0
    assert counters[sanity.BAD_FIGURE] == 2 and counters["malformed"] == 2
    assert counters[sanity.BAD_TIME] == 1 and counters[sanity.FUTURE_TIME] == 1
    assert counters["bad_record"] == 1


async def test_a_webhook_notification_from_5138_or_a_malformed_one_moves_no_topic_cursor():
    now = time.time()
    instant = iso(now - 1)

    def envelope(stamp: str, count: str) -> str:
        metrics = spliced([{"metric": "oWaiting", "stats": {"count": MARK}}], count)
        detail = json.loads(observation_frame("q1", f"{instant}/{instant}", '"' + MARK + '"')) | {"timestamp": stamp}
        frame = json.dumps(detail).replace(json.dumps(MARK), metrics)
        return spliced(
            {"version": "0", "source": "aws.partner/genesys.com/x", "detail-type": "t", "detail": MARK}, frame
        )

    items = [
        envelope(FAR_FUTURE, "1"),
        envelope(iso(now - 30), "2"),  # stamped before the 5138 one was processed: still applies
        envelope(iso(now - 10), "1e300"),  # malformed: it moves no cursor
        envelope(iso(now - 20), "4"),  # so this one applies
    ]
    floor, conn = await delivered(items)
    assert conn.health.counters["stale"] == 0
    assert floor.queue("c1", "q1").waiting == 4


# -- token lifetimes -------------------------------------------------------------------------------


@asynccontextmanager
async def token_endpoint(reply: str):
    """Serve REPLY (JSON text) as every token reply, Genesys' and CXone's; yield the base URL."""

    async def token(request: web.Request) -> web.Response:
        return web.Response(text=reply, content_type="application/json")

    app = web.Application()
    app.router.add_post("/oauth/token", token)
    app.router.add_post("/auth/token", token)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("text", ["1e400", "0", "-5", "NaN", '"3600"', "true"])
async def test_a_token_lifetime_out_of_range_is_no_token(text):
    reply = spliced({"access_token": "tok", "expires_in": MARK}, text)
    async with token_endpoint(reply) as base, aiohttp.ClientSession() as session:
        # A token "valid for ever" would never be renewed: refused like a missing lifetime.
        with pytest.raises(TokenUnavailable, match="expires_in"):
            await TokenProvider(base, "id", "secret", session=session).token()
        with pytest.raises(TokenUnavailable, match="expires_in"):
            await CxoneAuth(base, "app", "secret", "key", "key-secret", session=session).sign_in()


@pytest.mark.parametrize("text", ["1e300", str(2 * 366 * 86_400)], ids=["1e300", "two-years"])
async def test_a_very_long_token_lifetime_is_taken_as_a_day(text):
    # A token URL that issues long-lived tokens still connects; its token is renewed within a day.
    reply = spliced({"access_token": "tok", "expires_in": MARK}, text)
    now = 1_800_000_000.0
    async with token_endpoint(reply) as base, aiohttp.ClientSession() as session:
        genesys = await TokenProvider(base, "id", "secret", session=session, clock=lambda: now)._fetch()
        cxone = await CxoneAuth(base, "app", "secret", "key", "key-secret", session=session, clock=lambda: now)._fetch()
    for token in (genesys, cxone):
        assert token.value == "tok"
        assert token.expires_at == now + sanity.MAX_LIFETIME_S and token.refresh_at < token.expires_at
