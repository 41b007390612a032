"""Reading CXone's replies: the mapping tables, both reply shapes, and fuzzing (only ParseError may escape)."""

from __future__ import annotations

import base64
import contextlib
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.events import UNSET, AgentStatus, InteractionUpdate
from streams.vendors.cxone import contacts as cxone_contacts
from streams.vendors.cxone.connector import CxoneConnector, api_base
from streams.vendors.cxone.parsers import agent_presence, agent_status, contact_update, parse_page, skill_stats
from streams.vendors.cxone.poller import PollResult
from streams.vendors.cxone.rest import CxoneError, Fetched
from streams.vendors.cxone.values import ParseError, api_version, entity_id, jwt_claims, parse_time
from streams.vendors.spec import ConnectionSpec

WATCHED = frozenset({"11", "12"})


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ({"agentStateName": "Available"}, ("on_queue", "IDLE")),
        ({"agentStateName": "InboundContact"}, ("on_queue", "INTERACTING")),
        ({"agentStateName": "OutboundConsult"}, ("on_queue", "INTERACTING")),
        ({"agentStateName": "Dialer"}, ("on_queue", "INTERACTING")),
        ({"agentStateName": "Unavailable", "isACW": True, "outStateDescription": "ACW"}, ("on_queue", "INTERACTING")),
        ({"agentStateName": "Unavailable", "outStateDescription": "Refused"}, ("on_queue", "NOT_RESPONDING")),
        ({"agentStateName": "Unavailable", "outStateDescription": "Lunch"}, ("lunch", "OFF_QUEUE")),
        ({"agentStateName": "Unavailable", "outStateDescription": ""}, ("unavailable", "OFF_QUEUE")),
        ({"agentStateName": "LoggedIn"}, ("available", "OFF_QUEUE")),
        ({"agentStateName": "LoggedOut"}, ("offline", "OFF_QUEUE")),
        ({"agentStateName": "SomethingNew"}, ("something_new", "OFF_QUEUE")),  # streams.states spells it
    ],
)
def test_agent_states_map_onto_presence_and_routing(record, expected):
    assert agent_presence(record) == expected


def test_an_agent_state_becomes_an_agent_of_every_watched_skill():
    status = agent_status(
        "c1",
        {
            "agentId": 5001,
            "firstName": "Ada",
            "lastName": "Lovelace",
            "agentStateName": "Unavailable",
            "outStateDescription": "Lunch",
            "startDate": "2026-01-02T03:04:05.678Z",
        },
        WATCHED,
    )
    assert (status.agent_id, status.name, status.presence, status.routing_status) == (
        "5001",
        "Ada Lovelace",
        "lunch",
        "OFF_QUEUE",
    )
    assert status.queue_ids == WATCHED
    assert status.presence_since == status.routing_since == parse_time("2026-01-02T03:04:05.678Z")


def test_skill_activity_maps_onto_queue_stats_and_leaves_the_rest_unset():
    stats = skill_stats(
        "c1",
        {
            "skillId": 11,
            "skillName": "Sales",
            "queueCount": 3,
            "earliestQueueTime": "2026-01-02T03:04:05Z",
            "agentsLoggedIn": 9,
            "agentsAvailable": 2,
            "agentsUnavailable": 4,
            "agentsWorking": 3,
            "agentsACW": 1,
            "inSLA": 8,
            "outSLA": 2,
        },
    )
    assert (stats.queue_id, stats.name, stats.waiting, stats.interacting) == ("11", "Sales", 3, 3)
    assert (stats.on_queue_agents, stats.idle_agents) == (5, 2)
    assert (stats.sl_numerator, stats.sl_denominator) == (8, 10)
    assert stats.longest_waiting_since == parse_time("2026-01-02T03:04:05Z")
    assert stats.alerting is UNSET and stats.offered is UNSET and stats.interval_start is UNSET


def test_an_empty_queue_has_no_longest_waiting_time():
    assert skill_stats("c1", {"skillId": 11, "earliestQueueTime": None}).longest_waiting_since is None
    assert skill_stats("c1", {"skillId": 11}).longest_waiting_since is UNSET


@pytest.mark.parametrize(
    ("fields", "state"),
    [
        ({"stateName": "InQueue"}, "waiting"),
        ({"stateName": "Routing"}, "alerting"),
        ({"stateName": "Active"}, "connected"),
        ({"stateName": "Holding"}, "held"),
        ({"stateName": "ACW"}, "wrapup"),
        ({"stateName": "Dialing"}, "dialing"),
        ({"stateName": "Mystery", "contactStateCategory": "With Agent"}, "connected"),
        ({"stateName": "Mystery"}, "mystery"),
    ],
)
def test_contact_states_map_onto_interaction_states(fields, state):
    assert contact_update("c1", {"contactId": 7} | fields).state == state


def test_a_contact_carries_campaign_disposition_and_agent():
    update = contact_update(
        "c1",
        {
            "contactId": 700001,
            "skillId": 11,
            "agentId": 5001,
            "firstName": "Ada",
            "lastName": "Lovelace",
            "mediaTypeName": "Phone Call",
            "stateName": "Active",
            "campaignName": "Spring Offers",
            "dispositionName": "Sale",
            "startDate": "2026-01-02T03:04:05.1234567Z",
        },
    )
    assert (update.interaction_id, update.queue_id, update.media, update.state) == (
        "700001",
        "11",
        "voice",
        "connected",
    )
    assert (update.agent_id, update.agent_name) == ("5001", "Ada Lovelace")
    assert (update.campaign, update.disposition) == ("Spring Offers", "Sale")
    assert update.started_at == parse_time("2026-01-02T03:04:05.123Z")
    waiting = contact_update("c1", {"contactId": 1, "skillId": 11, "agentId": 0, "stateName": "InQueue"})
    assert (waiting.agent_id, waiting.agent_name, waiting.disposition) == (None, None, None)


@pytest.mark.parametrize("bad", ["\u00b9", "\u0663", "1" * 5000, "0", "-3", "", 0, True, None, 2.5])
def test_ids_are_positive_ascii_numbers(bad):
    with pytest.raises(ParseError):
        entity_id(bad)
    assert entity_id(" 0042 ") == entity_id(42) == entity_id(42.0) == "42"


def test_end_contact_ends_the_interaction():
    update = contact_update("c1", {"contactId": 7, "stateName": "EndContact", "skillId": 11})
    assert update.ended is True


def test_both_reply_shapes_read_alike():
    records = [{"skillId": 1}, {"skillId": 2}]
    flat = {"totalRecords": 2, "_links": {"next": "/x?skip=2"}, "lastPollTime": "2026-01-02T03:04:05.000Z"}
    wrapped = {"resultSet": dict(flat, skillActivity=records)}
    assert parse_page(dict(flat, skillActivity=records), "skillActivity") == parse_page(wrapped, "skillActivity")
    page = parse_page(wrapped, "skillActivity")
    assert (page.items, page.next_link, page.total) == (records, "/x?skip=2", 2)
    assert page.last_poll_time == "2026-01-02T03:04:05.000Z"


def test_it_refuses_replies_it_cannot_use():
    no_list = {"totalRecords": 0, "lastPollTime": "2026-01-02T03:04:05.000Z"}
    for body in ([], "x", {"skillActivity": "nope"}, no_list, {"resultSet": no_list}):
        with pytest.raises(ParseError):
            parse_page(body, "skillActivity")
    assert parse_page({"skillActivity": None}, "skillActivity").items == []


def test_an_unreadable_poll_time_keeps_the_records_but_gives_no_poll_time():
    page = parse_page({"skillActivity": [{"skillId": 1}], "lastPollTime": "yesterday"}, "skillActivity")
    assert page.items == [{"skillId": 1}] and page.last_poll_time is None


@pytest.mark.parametrize(
    ("given", "expected"),
    [("31", "v31.0"), ("v31", "v31.0"), ("31.0", "v31.0"), ("V30.1", "v30.1"), (" v32.0 ", "v32.0"), ("", "v31.0")],
)
def test_api_versions_are_written_as_cxones_paths_want(given, expected):
    assert api_version(given) == expected
    assert api_base("https://api-na1.niceincontact.com/", given).endswith(f"/inContactAPI/services/{expected}")


@pytest.mark.parametrize("given", ["latest", "v31.0.1", "x31", "v", "3\u0663", "v1234"])
def test_what_is_no_api_version_is_refused(given):
    with pytest.raises(ParseError):
        api_version(given)
    with pytest.raises(CxoneError, match="API version"):
        api_base("https://api-na1.niceincontact.com", given)


def test_it_reads_id_token_claims():
    claims = {"tenantId": "t-1", "area": "na1"}
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert jwt_claims(f"h.{payload}.s") == claims
    for bad in ("", "a.b", "a.!!!.c", f"a.{base64.urlsafe_b64encode(b'[1]').decode()}.c", None):
        with pytest.raises(ParseError):
            jwt_claims(bad)


# -- fuzzing: whatever arrives, nothing but ParseError escapes ------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
KNOWN_KEYS = [
    *("agentId", "agentStateName", "outStateDescription", "isACW", "firstName", "lastName", "startDate"),
    *("skillId", "skillName", "queueCount", "earliestQueueTime", "agentsLoggedIn", "agentsAvailable"),
    *("agentsUnavailable", "agentsWorking", "agentsACW", "inSLA", "outSLA", "contactId", "stateName"),
    *("contactStateCategory", "mediaTypeName", "campaignName", "dispositionName"),
]
timestamps = st.one_of(
    st.text(max_size=40),
    st.datetimes().map(lambda d: d.isoformat() + "Z"),
    st.sampled_from(["2026-01-02T03:04:05.1234567Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59+14:00"]),
)
records = st.dictionaries(st.sampled_from(KNOWN_KEYS), json_values | timestamps, max_size=12)


def only_parse_errors(call, *args) -> None:
    with contextlib.suppress(ParseError):
        call(*args)


@settings(max_examples=300, deadline=None)
@given(records | json_values)
def test_record_parsers_raise_nothing_but_parse_error(record):
    only_parse_errors(skill_stats, "c1", record)
    only_parse_errors(agent_status, "c1", record, WATCHED)
    only_parse_errors(contact_update, "c1", record)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["agentStates", "skillActivity", "activeContacts"]),
    json_values
    | st.fixed_dictionaries(
        {"lastPollTime": json_values | timestamps, "_links": json_values, "skillActivity": json_values}
    )
    | st.fixed_dictionaries({"resultSet": json_values}),
)
def test_the_page_parser_raises_nothing_but_parse_error(root, body):
    only_parse_errors(parse_page, body, root)


@settings(max_examples=200, deadline=None)
@given(timestamps | json_values)
def test_the_time_parser_raises_nothing_but_parse_error(value):
    only_parse_errors(parse_time, value)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60) | st.binary(max_size=60).map(lambda b: "h." + base64.urlsafe_b64encode(b).decode() + ".s"))
def test_the_jwt_reader_raises_nothing_but_parse_error(token):
    only_parse_errors(jwt_claims, token)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(records, max_size=6), st.lists(records, max_size=6), st.lists(records, max_size=6), st.booleans())
def test_the_connector_counts_and_skips_whatever_a_poll_brings(agents, skills, contacts, full):
    events = []
    spec = ConnectionSpec.of("cxone", base_url="http://x", client_id="id", queue_ids=tuple(WATCHED))
    connector = CxoneConnector(spec, events.append)
    result = PollResult(
        fetched={"agents": Fetched(agents), "skills": Fetched(skills), "contacts": Fetched(contacts)},
        full_contacts=full,
    )
    connector.handle(None, result)  # must not raise
    assert all(getattr(e, "source", None) == "c1" for e in events)


# -- what the connector makes of a poll: cursors, and contacts that end --------------------------


def make_connector(events: list) -> CxoneConnector:
    spec = ConnectionSpec.of("cxone", base_url="http://x", client_id="id", client_secret="secret", queue_ids=("11",))
    return CxoneConnector(spec, events.append)


def live_contact(number: int) -> dict:
    return {"contactId": number, "skillId": 11, "stateName": "Active", "mediaTypeName": "Phone Call"}


def contacts_poll(records: list, *, full: bool = True, complete: bool = True) -> PollResult:
    return PollResult(fetched={"contacts": Fetched(records, complete=complete)}, full_contacts=full)


def ended(events: list) -> set[str]:
    return {e.interaction_id for e in events if isinstance(e, InteractionUpdate) and e.ended is True}


def test_a_cursor_moves_on_only_from_a_list_read_whole():
    events: list = []
    connector = make_connector(events)
    agent = {"agentId": 5, "agentStateName": "Available"}
    old, new = "2026-01-01T00:00:00.000Z", "2026-01-02T00:00:00.000Z"
    connector.cursors = {"agents": old}
    page = parse_page({"agentStates": [agent], "lastPollTime": "yesterday"}, "agentStates")
    unreadable = Fetched(page.items, page.last_poll_time, complete=True)
    connector.handle(None, PollResult(fetched={"agents": unreadable}))
    # The records count; polling goes on from where it was.
    assert connector.cursors == {"agents": old} and any(isinstance(e, AgentStatus) for e in events)
    for partial in (Fetched([agent], new, complete=False), Fetched([agent], new, complete=True, may_have_skipped=True)):
        connector.handle(None, PollResult(fetched={"agents": partial}))
        assert connector.cursors == {"agents": old}
    connector.handle(None, PollResult(fetched={"agents": Fetched([agent], new, complete=True)}))
    assert connector.cursors == {"agents": new}
    counters = connector.health.counters
    assert (counters["no_poll_time"], counters["incomplete_list"], counters["list_shifted"]) == (1, 1, 1)


def test_a_contact_ends_only_when_two_complete_full_lists_in_a_row_lack_it():
    events: list = []
    connector = make_connector(events)
    connector.handle(None, contacts_poll([live_contact(1), live_contact(2), live_contact(3)], full=False))
    connector.handle(None, contacts_poll([live_contact(1)]))
    assert ended(events) == set()  # once may be a record skipped by paging
    assert connector._full_contacts_at == 0.0  # so the next poll looks again in full
    connector.handle(None, contacts_poll([live_contact(1)], complete=False))
    assert ended(events) == set()  # a list cut short says nothing of what it lacks
    connector.handle(None, contacts_poll([live_contact(1), live_contact(3)], full=False))  # 3 is heard of
    connector.handle(None, contacts_poll([live_contact(1)]))
    assert ended(events) == {"2"}  # 3 was listed in between: it starts over
    connector.handle(None, contacts_poll([live_contact(1)]))
    assert ended(events) == {"2", "3"}


def test_a_broken_record_neither_ends_its_contact_nor_keeps_others_from_ending(monkeypatch):
    events: list = []
    connector = make_connector(events)
    connector.handle(None, contacts_poll([live_contact(1), live_contact(2), live_contact(3)], full=False))
    readable = cxone_contacts.contact_update

    def unreadable_one(source, item):
        if item.get("contactId") == 1:
            raise ParseError("a field of contact 1 cannot be read")
        return readable(source, item)

    monkeypatch.setattr(cxone_contacts, "contact_update", unreadable_one)
    every_time = [live_contact(1), {"contactId": "junk", "stateName": "Active"}, live_contact(3)]
    for _ in range(2):
        connector.handle(None, contacts_poll(every_time))
    assert ended(events) == {"2"}
    assert connector.health.counters["malformed_record"] == 4
