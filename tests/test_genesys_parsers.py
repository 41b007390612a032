"""Genesys topic messages and REST replies → typed events; bad input is reported, never raised."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams import sanity
from streams.events import UNSET, AgentStatus, QueueMembership, QueueStats, reported
from streams.floor import Floor
from streams.health import LinkHealth
from streams.vendors.genesys.parsers import Notice, parse_frame
from streams.vendors.genesys.replies import (
    parse_aggregate_results,
    parse_members,
    parse_observation_results,
    parse_queue_entities,
)
from streams.vendors.genesys.values import ParseError, parse_interval, parse_time, system_presence

Q = "6a1b2c3d-0000-4000-8000-00000000000a"
U = "7b1b2c3d-0000-4000-8000-00000000000b"
T0 = "2026-11-22T08:00:00.000Z"
T0_EPOCH = 1795334400.0


def frame(topic: str, body) -> str:
    return json.dumps({"topicName": topic, "version": "2", "eventBody": body, "metadata": {"CorrelationId": "c1"}})


def observation(data) -> str:
    return frame(f"v2.analytics.queues.{Q}.observations", {"group": {"queueId": Q}, "data": data})


def metric(name, count, **extra):
    return {"metric": name, "stats": {"count": count, **extra.pop("stats", {})}, **extra}


# -- values -------------------------------------------------------------------------


def test_it_reads_iso_times_exactly_to_the_millisecond():
    assert parse_time(T0) == T0_EPOCH
    assert parse_time("2026-11-22T08:00:00.123Z") == 1795334400.123
    assert parse_time("2026-11-22T09:00:00.123+01:00") == 1795334400.123
    assert parse_time(1795334400123) == 1795334400.123  # detail events: epoch ms
    assert parse_time(None) is None


@given(st.integers(min_value=0, max_value=4_000_000_000_000))
def test_it_round_trips_every_millisecond_instant(millis):
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=millis)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis % 1000:03d}Z"
    assert parse_time(text) == round(millis) / 1000


def test_it_refuses_times_that_are_not_times():
    for bad in ("yesterday", "", "2026-13-01T00:00:00Z", True, {}):
        with pytest.raises(ParseError):
            parse_time(bad)


def test_it_reads_intervals_the_same_however_often_it_has_seen_them():
    # Intervals and times are cached: the second reading must be the first one's, and an error is never kept.
    for _ in range(2):
        assert parse_interval(f"{T0}/{T0}") == (T0_EPOCH, T0_EPOCH)
        assert parse_interval(f"{T0}/2026-11-22T08:30:00.000Z") == (T0_EPOCH, T0_EPOCH + 1800)
        assert parse_time("2026-11-22T09:00:00.123+01:00") == 1795334400.123
        for bad in (f"{T0}/soon", f"soon/{T0}", "/", f"{T0}", f"{T0}/{T0}/{T0}", None, ["a/b"]):
            with pytest.raises(ParseError):
                parse_interval(bad)
        with pytest.raises(ParseError):
            parse_time("yesterday")


def test_it_folds_presence_spellings_to_the_floors():
    assert system_presence("ON_QUEUE") == "on_queue"
    assert system_presence("OnQueue") == "on_queue"
    assert system_presence("on_queue") == "on_queue"
    assert system_presence("BREAK") == "break"
    assert system_presence("Available") == "available"
    assert system_presence("WorkingFromHome") == "working_from_home"  # unknown, still readable


# -- frames -------------------------------------------------------------------------


def test_it_tells_heartbeats_and_pongs_apart():
    heartbeat = frame("channel.metadata", {"message": "WebSocket Heartbeat"})
    pong = frame("channel.metadata", {"message": "pong"})
    assert parse_frame("c1", heartbeat).kind == "heartbeat"
    assert parse_frame("c1", pong).kind == "pong"


def test_it_reads_instant_observations():
    notice = parse_frame(
        "c1",
        observation(
            [
                {
                    "interval": f"{T0}/{T0}",
                    "metrics": [
                        metric("oWaiting", 3),
                        metric("oInteracting", 2),
                        metric("oAlerting", 1),
                        metric("oOnQueueUsers", 5),
                        metric("oUserRoutingStatuses", 2, qualifier="IDLE"),
                        metric("oUserRoutingStatuses", 3, qualifier="INTERACTING"),
                        metric(
                            "oLongestWaiting",
                            1,
                            stats={"calculatedMetricValue": 42_500},
                            observations=[{"observationDate": "2026-11-22T07:59:17.500Z", "conversationId": "x"}],
                        ),
                    ],
                }
            ]
        ),
    )
    assert notice.kind == "events"
    (part,) = notice.events
    assert part.media_type == ""
    stats = part.stats
    assert stats == QueueStats(
        source="c1",
        queue_id=Q,
        waiting=3,
        interacting=2,
        alerting=1,
        on_queue_agents=5,
        idle_agents=2,
        longest_waiting_since=T0_EPOCH - 42.5,
    )
    # Aggregates were not in this message: they stay unreported.
    assert stats.offered is UNSET and stats.interval_start is UNSET


def test_it_derives_longest_wait_from_the_duration_when_no_observation_date_is_given():
    notice = parse_frame(
        "c1",
        observation(
            [
                {
                    "interval": "2026-11-22T08:00:10.000Z/2026-11-22T08:00:10.000Z",
                    "metrics": [
                        metric("oWaiting", 1),
                        metric("oLongestWaiting", 1, stats={"calculatedMetricValue": 4_250}),
                    ],
                }
            ]
        ),
    )
    assert notice.events[0].stats.longest_waiting_since == T0_EPOCH + 5.75


def test_it_clears_longest_wait_and_idle_agents_when_they_are_zero():
    notice = parse_frame(
        "c1",
        observation(
            [
                {
                    "interval": f"{T0}/{T0}",
                    "metrics": [
                        metric("oWaiting", 0),
                        metric("oLongestWaiting", 0),
                        metric("oUserRoutingStatuses", 4, qualifier="INTERACTING"),
                    ],
                }
            ]
        ),
    )
    stats = notice.events[0].stats
    assert stats.waiting == 0
    assert stats.longest_waiting_since is None
    assert stats.idle_agents == 0  # IDLE missing from the statuses observed: nobody idle


def test_it_passes_over_metrics_no_field_shows_but_still_checks_every_entry():
    presences = [metric("oUserPresences", 4, qualifier=f"presence-{n}") for n in range(10)]
    statuses = [
        metric("oUserRoutingStatuses", n, qualifier=q) for n, q in ((2, "idle"), (5, "INTERACTING"), (1, "IDLE"))
    ]
    data = [{"interval": f"{T0}/{T0}", "metrics": [metric("oOnQueueUsers", 8), *presences, *statuses]}]
    stats = parse_frame("c1", observation(data)).events[0].stats
    assert reported(stats) == {"on_queue_agents": 8, "idle_agents": 3}
    # A bad entry is a bad message, whether or not it is a metric the Floor shows.
    for bad in ("not a metric", metric("oUserRoutingStatuses", -1, qualifier="INTERACTING")):
        data = [{"interval": f"{T0}/{T0}", "metrics": [*presences, bad, *statuses]}]
        assert parse_frame("c1", observation(data)).kind == "malformed"


def test_it_reads_interval_aggregates_apart_from_instant_observations():
    notice = parse_frame(
        "c1",
        observation(
            [
                {
                    "interval": f"{T0}/2026-11-22T08:30:00.000Z",
                    "metrics": [
                        metric("nOffered", 12),
                        metric("tAnswered", 9, stats={"sum": 90_000, "max": 30_000}),
                        metric("tAbandon", 2),
                        {
                            "metric": "oServiceLevel",
                            "stats": {"ratio": 0.7, "numerator": 7, "denominator": 11, "target": 0.8},
                        },
                    ],
                }
            ]
        ),
    )
    (part,) = notice.events
    stats = part.stats
    assert stats == QueueStats(
        source="c1",
        queue_id=Q,
        interval_start=T0_EPOCH,
        offered=12,
        answered=9,
        abandoned=2,
        sl_numerator=7,
        sl_denominator=11,
    )
    assert stats.waiting is UNSET


def test_it_reads_user_activity_with_socket_spelling():
    body = {
        "id": U,
        "routingStatus": {"status": "INTERACTING", "startTime": "2026-11-22T08:00:01.250Z"},
        "presence": {
            "presenceDefinition": {"id": "p1", "systemPresence": "ON_QUEUE"},
            "modifiedDate": "2026-11-22T07:30:00.000Z",
        },
        "outOfOffice": {"active": False},
        "activeQueueIds": [Q],
    }
    (status,) = parse_frame("c1", frame(f"v2.users.{U}.activity", body)).events
    assert status == AgentStatus(
        source="c1",
        agent_id=U,
        presence="on_queue",
        presence_since=T0_EPOCH - 1800,
        routing_status="INTERACTING",
        routing_since=T0_EPOCH + 1.25,
    )


def test_it_reads_presence_and_routing_status_topics_and_the_combined_one():
    presence = {"source": "PURECLOUD", "presenceDefinition": {"systemPresence": "BREAK"}, "modifiedDate": T0}
    (status,) = parse_frame("c1", frame(f"v2.users.{U}.presence", presence)).events
    assert (status.presence, status.presence_since, status.routing_status) == ("break", T0_EPOCH, UNSET)

    routing = {"routingStatus": {"status": "IDLE", "startTime": T0}}
    (status,) = parse_frame("c1", frame(f"v2.users.{U}.routingStatus", routing)).events
    assert (status.routing_status, status.routing_since, status.presence) == ("IDLE", T0_EPOCH, UNSET)

    combined = {"presence": presence, "routingStatus": {"status": "OFF_QUEUE", "startTime": T0}}
    (status,) = parse_frame("c1", frame(f"v2.users.{U}?presence&routingStatus", combined)).events
    assert (status.agent_id, status.presence, status.routing_status) == (U, "break", "OFF_QUEUE")


def test_it_reads_queue_membership_changes():
    joined = parse_frame("c1", frame(f"v2.routing.queues.{Q}.users", {"id": U, "user": {"id": U}, "joined": True}))
    left = parse_frame("c1", frame(f"v2.routing.queues.{Q}.users", {"user": {"id": U}, "queueId": Q, "joined": False}))
    assert joined.events == (QueueMembership("c1", Q, U, True),)
    assert left.events == (QueueMembership("c1", Q, U, False),)


def test_it_reads_system_topics():
    assert parse_frame("c1", frame("v2.system.socket_closing", {"message": "bye"})).kind == "socket_closing"
    dropped = parse_frame("c1", frame("v2.system.no_longer_subscribed.ch1", {}))
    assert (dropped.kind, dropped.target) == ("no_longer_subscribed", "ch1")
    assert parse_frame("c1", frame("v2.system.token_revoked.ch1", {})).kind == "token_revoked"


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        b"\xff\xfe",
        "[1, 2]",
        json.dumps({"eventBody": {}}),
        frame("channel.metadata", "text"),
        observation("nope"),
        observation([{"interval": "garbage", "metrics": []}]),
        observation([{"interval": f"{T0}/{T0}", "metrics": [metric("oWaiting", -1)]}]),
        observation([{"interval": f"{T0}/{T0}", "metrics": [{"metric": "oWaiting", "stats": "x"}]}]),
        frame(f"v2.users.{U}.activity", {"routingStatus": {"status": 5}}),
        frame(f"v2.users.{U}.activity", {"presence": {"modifiedDate": "soon"}}),
        frame(f"v2.users.{U}.activity", {}),
        frame(f"v2.routing.queues.{Q}.users", {"user": {"id": U}, "joined": "yes"}),
        frame(f"v2.routing.queues.{Q}.users", {"joined": True}),
    ],
)
def test_it_marks_malformed_frames_without_raising(raw):
    assert parse_frame("c1", raw).kind == "malformed"


def test_it_marks_unknown_topics_without_raising():
    notice = parse_frame("c1", frame("v2.detail.events.conversation.x.acd.start", {"eventTime": 1}))
    assert notice == Notice("unknown", topic="v2.detail.events.conversation.x.acd.start")


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(), lambda c: st.lists(c) | st.dictionaries(st.text(), c)
    )
)
def test_it_never_raises_whatever_the_body(body):
    for topic in (f"v2.analytics.queues.{Q}.observations", f"v2.users.{U}.activity", f"v2.routing.queues.{Q}.users"):
        assert isinstance(parse_frame("c1", frame(topic, body)), Notice)


# -- REST replies -------------------------------------------------------------------


def test_it_reads_queue_pages():
    page = {"entities": [{"id": Q, "name": "Sales", "mediaSettings": {}}, {"id": "q2"}], "pageCount": 1}
    assert parse_queue_entities(page) == [{"id": Q, "name": "Sales"}, {"id": "q2", "name": "q2"}]


def test_it_reads_members_with_rest_presence_spelling():
    page = {
        "entities": [
            {
                "id": U,
                "name": "Ada Lovelace",
                "user": {"id": U, "name": "Ada Lovelace"},
                "joined": True,
                "routingStatus": {"userId": U, "status": "IDLE", "startTime": T0},
                "presence": {"presenceDefinition": {"systemPresence": "OnQueue"}, "modifiedDate": T0},
            },
            {"id": "u2", "joined": False, "user": {"id": "u2"}},
        ]
    }
    ada, other = parse_members("c1", page)
    assert ada.joined and not other.joined
    assert ada.status == AgentStatus(
        source="c1",
        agent_id=U,
        name="Ada Lovelace",
        presence="on_queue",
        presence_since=T0_EPOCH,
        routing_status="IDLE",
        routing_since=T0_EPOCH,
    )


def test_it_reads_the_observations_query_reply():
    reply = {
        "results": [
            {
                "group": {"queueId": Q},
                "data": [
                    metric(
                        "oWaiting",
                        2,
                        observations=[{"observationDate": T0}, {"observationDate": "2026-11-22T08:00:05.000Z"}],
                    ),
                    metric("oOnQueueUsers", 4),
                    metric("oUserRoutingStatuses", 1, qualifier="IDLE"),
                ],
            },
            {"group": {"queueId": "q2"}, "data": [metric("oWaiting", 0)]},
        ]
    }
    queues = {part.stats.queue_id: part.stats for part in parse_observation_results("c1", reply, now=T0_EPOCH + 60)}
    assert queues[Q] == QueueStats(
        source="c1", queue_id=Q, waiting=2, on_queue_agents=4, idle_agents=1, longest_waiting_since=T0_EPOCH
    )
    assert queues["q2"].waiting == 0 and queues["q2"].longest_waiting_since is None


def test_it_reads_the_aggregates_query_reply_taking_the_latest_interval():
    def entry(start, offered):
        return {"interval": f"{start}/2026-11-22T09:00:00.000Z", "metrics": [metric("nOffered", offered)]}

    reply = {"results": [{"group": {"queueId": Q}, "data": [entry("2026-11-22T08:30:00.000Z", 4), entry(T0, 9)]}]}
    ((part,),) = [parse_aggregate_results("c1", reply)]
    stats = part.stats
    assert (stats.interval_start, stats.offered) == (T0_EPOCH + 1800, 4)


@pytest.mark.parametrize(
    ("parser", "reply"),
    [
        (parse_queue_entities, {"entities": [{"name": "no id"}]}),
        (parse_queue_entities, []),
        (lambda r: parse_members("c1", r), {"entities": "x"}),
        (lambda r: parse_observation_results("c1", r, 0.0), {"results": {"group": {}}}),
        (lambda r: parse_aggregate_results("c1", r), {"results": "x"}),
    ],
)
def test_it_raises_parse_errors_for_malformed_replies(parser, reply):
    with pytest.raises(ParseError):
        parser(reply)


@pytest.mark.parametrize(
    ("parser", "reply"),
    [
        (lambda r: parse_members("c1", r), {"entities": [{"name": "no id"}]}),
        (lambda r: parse_observation_results("c1", r, 0.0), {"results": [{"group": {}}]}),
        (lambda r: parse_aggregate_results("c1", r), {"results": [{"group": {"queueId": Q}, "data": [{}]}]}),
        (lambda r: parse_aggregate_results("c1", r), {"results": [{"group": {"queueId": Q}, "data": "x"}]}),
    ],
)
def test_it_skips_and_counts_a_malformed_record_and_keeps_the_reply(parser, reply):
    health = LinkHealth()
    with sanity.counting(health.count):
        assert parser(reply) == []
    assert health.counters[sanity.MALFORMED_RECORD] == 1


def test_a_snapshot_and_then_events_land_on_the_floor_as_the_floor_spells_them():
    floor = Floor()
    (member,) = parse_members(
        "c1",
        {
            "entities": [
                {
                    "id": U,
                    "routingStatus": {"status": "idle"},
                    "presence": {"presenceDefinition": {"systemPresence": "OnQueue"}},
                }
            ]
        },
    )
    floor.apply(member.status)
    activity = {"presence": {"presenceDefinition": {"systemPresence": "ON_QUEUE"}}}
    (event,) = parse_frame("c1", frame(f"v2.users.{U}.activity", activity)).events
    assert floor.apply(event) == set()  # the same presence, spelled differently, changes nothing
    assert floor.agent("c1", U).presence == "on_queue"
