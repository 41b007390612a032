"""Queue totals from Genesys' media-type groups: no media type overwrites another, nothing counts twice."""

from streams.connectors.genesys_media import MediaTotals
from streams.connectors.genesys_parsers import QueuePart, parse_frame
from streams.events import QueueStats

Q = "q1"


def part(media: str = "", **values) -> QueuePart:
    return QueuePart(QueueStats("c1", Q, **values), media)


def test_it_adds_up_the_media_types_of_a_queue():
    totals = MediaTotals()
    totals.add(part("voice", waiting=2, interacting=1, longest_waiting_since=100.0))
    stats = totals.add(part("message", waiting=1, interacting=3, longest_waiting_since=90.0))
    assert (stats.waiting, stats.interacting, stats.longest_waiting_since) == (3, 4, 90.0)
    # A later voice message changes voice's share only.
    stats = totals.add(part("voice", waiting=0, interacting=1, longest_waiting_since=None))
    assert (stats.waiting, stats.interacting, stats.longest_waiting_since) == (1, 4, 90.0)


def test_it_passes_agent_counts_through_from_the_queue_group():
    totals = MediaTotals()
    totals.add(part("voice", waiting=2))
    stats = totals.add(part("", on_queue_agents=7, idle_agents=2))
    assert (stats.on_queue_agents, stats.idle_agents, stats.waiting) == (7, 2, 2)


def test_a_whole_queue_group_replaces_the_media_groups_for_what_it_reports():
    totals = MediaTotals()
    totals.add(part("voice", waiting=2, interacting=5))
    stats = totals.add(part("", waiting=4))
    assert (stats.waiting, stats.interacting) == (4, 5)
    stats = totals.add(part("voice", waiting=1))
    assert stats.waiting == 1


def test_a_media_group_still_on_the_last_interval_adds_nothing_to_the_new_one():
    totals = MediaTotals()
    totals.add(part("voice", interval_start=1800.0, offered=10, answered=8, sl_numerator=7, sl_denominator=8))
    totals.add(part("message", interval_start=1800.0, offered=4, answered=4, sl_numerator=4, sl_denominator=4))
    stats = totals.add(part("voice", interval_start=3600.0, offered=1, answered=0, sl_numerator=0, sl_denominator=0))
    assert (stats.interval_start, stats.offered, stats.answered) == (3600.0, 1, 0)


def test_a_snapshot_replaces_every_group():
    totals = MediaTotals()
    totals.add(part("voice", waiting=9))
    fields = totals.replace(Q, [part("message", waiting=1), part("", on_queue_agents=3)])
    assert fields == {"waiting": 1, "on_queue_agents": 3}
    assert totals.add(part("message", waiting=2)).waiting == 2


def test_the_parser_tags_socket_messages_with_their_media_type():
    frame = (
        '{"topicName": "v2.analytics.queues.q1.observations", "eventBody": {"group": {"queueId": "q1", '
        '"mediaType": "Voice"}, "data": [{"interval": "2026-11-22T08:00:00.000Z/2026-11-22T08:00:00.000Z", '
        '"metrics": [{"metric": "oWaiting", "stats": {"count": 2}}]}]}}'
    )
    (tagged,) = parse_frame("c1", frame).events
    assert (tagged.media_type, tagged.stats.waiting) == ("voice", 2)
    assert parse_frame("c1", frame.replace('"Voice"', "7")).kind == "malformed"
