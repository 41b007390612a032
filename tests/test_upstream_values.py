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
from datetime import UTC, datetime

import aiohttp
import pytest
from aiohttp import web

from streams import sanity
from streams.connectors.base import ConnectionSpec, Timing
from streams.connectors.cxone_auth import CxoneAuth
from streams.connectors.cxone_parsers import ParseError, agent_status, contact_update, entity_id, poll_time, skill_stats
from streams.connectors.genesys_parsers import parse_frame
from streams.connectors.webhook import WebhookConnector
from streams.events import UNSET, reported
from streams.floor import Floor
from streams.health import LinkHealth
from streams.hook_queue import HookItem, MemoryHookQueue
from streams.mapping import FieldMapping, RecordError, RecordFolder
from streams.oauth import TokenProvider, TokenUnavailable
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


# -- generic feeds: the field mapping --------------------------------------------------------------


def test_a_record_stamped_5138_does_not_freeze_its_row():
    folder = RecordFolder("c1", FieldMapping())
    health = LinkHealth()
    now_ms = time.time() * 1000
    with sanity.counting(health.count):
        first = folder.fold({"interaction_id": "i1", "timestamp": FAR_FUTURE_MS, "state": "waiting"})
        real = folder.fold({"interaction_id": "i1", "timestamp": now_ms + 1000, "state": "connected"})
    assert first.event is not None and first.event.state == "waiting"
    # The next real update applies: it is not "older" than the year 5138.
    assert real.dropped is None and real.event.state == "connected"
    assert health.counters[sanity.FUTURE_TIME] == 1
    # Ordering still works for real records.
    stale = folder.fold({"interaction_id": "i1", "timestamp": now_ms, "state": "held"})
    assert stale.dropped == "stale"


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
    queue = MemoryHookQueue()
    await queue.offer("c1", [HookItem(text) for text in items])
    floor = Floor()
    spec = ConnectionSpec(
        source="c1", kind="webhook", api_base="", login_base="", client_id="", client_secret="", queue_ids=("q1",)
    )
    conn = WebhookConnector(spec, floor.apply, timing=Timing(backoff_first=0.01), health=LinkHealth(), queue=queue)
    task = asyncio.create_task(conn.run())
    try:
        await eventually(lambda: conn.items == len(items), what="the whole delivery to be handled")
    finally:
        await conn.close()
        await asyncio.gather(task, return_exceptions=True)
    assert floor.source_interaction_ids("c1") == {"good-1", "good-2", "future"}
    assert floor.interaction("c1", "good-2").started_at is None
    assert floor.interaction("c1", "future").state == "connected"
    assert floor.queue("c1", "q1").waiting == 4
    counters = conn.health.counters
    assert counters["handler_error"] == 0
    assert counters[sanity.BAD_FIGURE] == 2 and counters["malformed"] == 2
    assert counters[sanity.BAD_TIME] == 1 and counters[sanity.FUTURE_TIME] == 1
    assert counters["bad_record"] == 1


# -- token lifetimes -------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["1e400", "1e300", "-5", "NaN", '"3600"', "true"])
async def test_a_token_lifetime_out_of_range_is_no_token(text):
    reply = spliced({"access_token": "tok", "expires_in": MARK}, text)

    async def token(request: web.Request) -> web.Response:
        return web.Response(text=reply, content_type="application/json")

    app = web.Application()
    app.router.add_post("/oauth/token", token)
    app.router.add_post("/auth/token", token)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    try:
        async with aiohttp.ClientSession() as session:
            # A token "valid for ever" would never be renewed: refused like a missing lifetime.
            with pytest.raises(TokenUnavailable, match="expires_in"):
                await TokenProvider(base, "id", "secret", session=session).token()
            with pytest.raises(TokenUnavailable, match="expires_in"):
                await CxoneAuth(base, "app", "secret", "key", "key-secret", session=session).sign_in()
    finally:
        await runner.cleanup()
