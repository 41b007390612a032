"""Queue totals from Genesys' media-type groups: no media type overwrites another, nothing counts twice."""

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.events import QueueStats, reported
from streams.vendors.genesys.media import BY_MEDIA, MediaTotals
from streams.vendors.genesys.parsers import parse_frame
from streams.vendors.genesys.queue_metrics import QueuePart

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


# -- the totals are kept per queue and updated field by field: they must match adding everything up afresh --


def test_a_groups_new_figures_replace_its_old_ones_in_the_totals():
    totals = MediaTotals()
    totals.add(part("voice", waiting=2, interacting=1))
    totals.add(part("message", waiting=1, interacting=3))
    assert totals.add(part("voice", waiting=5)).waiting == 6
    # A message that does not report waiting leaves it (and its total) as it was.
    stats = totals.add(part("message", interacting=0))
    assert (stats.waiting, stats.interacting) == (6, 1)
    stats = totals.add(part("message", waiting=0, interacting=2))
    assert (stats.waiting, stats.interacting) == (5, 3)


def test_media_groups_dropped_by_a_whole_queue_group_stay_out_of_the_totals():
    totals = MediaTotals()
    totals.add(part("voice", waiting=2, longest_waiting_since=50.0))
    totals.add(part("message", waiting=3, longest_waiting_since=40.0))
    stats = totals.add(part("", waiting=1, longest_waiting_since=70.0))
    assert (stats.waiting, stats.longest_waiting_since) == (1, 70.0)
    # Voice comes back: the whole-queue figure goes, and message's figures went with the whole-queue group.
    stats = totals.add(part("voice", waiting=4, longest_waiting_since=60.0))
    assert (stats.waiting, stats.longest_waiting_since) == (4, 60.0)
    stats = totals.add(part("voice", waiting=0, longest_waiting_since=None))
    assert (stats.waiting, stats.longest_waiting_since) == (0, None)


def test_the_interval_totals_follow_the_groups_into_a_new_interval():
    totals = MediaTotals()
    totals.add(part("voice", interval_start=1800.0, offered=10, answered=8))
    totals.add(part("message", interval_start=1800.0, offered=4, answered=4))
    stats = totals.add(part("voice", interval_start=3600.0, offered=1, answered=0))
    assert (stats.interval_start, stats.offered, stats.answered) == (3600.0, 1, 0)
    stats = totals.add(part("message", interval_start=3600.0, offered=2, answered=1))
    assert (stats.interval_start, stats.offered, stats.answered) == (3600.0, 3, 1)
    # Contact figures leave the interval totals as they stand.
    stats = totals.add(part("voice", waiting=1))
    assert (stats.interval_start, stats.offered, stats.answered, stats.waiting) == (3600.0, 3, 1, 1)


def test_a_forgotten_queue_starts_again_from_nothing():
    totals = MediaTotals()
    totals.add(part("voice", waiting=7, interval_start=1800.0, offered=9))
    totals.add(QueuePart(QueueStats("c1", "q2", waiting=1), "voice"))
    totals.keep_only({"q2"})
    assert reported(totals.add(part("message", waiting=1))) == {"waiting": 1}
    # The queue still watched keeps its totals.
    assert totals.add(QueuePart(QueueStats("c1", "q2", interacting=2), "voice")).waiting == 1


def test_a_resync_resets_the_totals_to_the_snapshots():
    totals = MediaTotals()
    totals.add(part("voice", waiting=9, interacting=4, longest_waiting_since=10.0))
    totals.add(part("message", interval_start=1800.0, offered=5))
    totals.replace(Q, [part("voice", waiting=1), part("message", interval_start=3600.0, offered=2)])
    stats = totals.add(part("message", waiting=2))
    # Voice's 9 waiting and 4 interacting, and the earlier interval, are gone with the old groups.
    assert reported(stats) == {
        "waiting": 3,
        "interval_start": 3600.0,
        "offered": 2,
        "answered": 0,
        "abandoned": 0,
        "sl_numerator": 0,
        "sl_denominator": 0,
    }


class Reference:
    """MediaTotals' rules stated plainly: every total added up afresh from every group, on every message."""

    def __init__(self) -> None:
        self.queues: dict[str, dict[str, dict]] = {}

    def add(self, p: QueuePart) -> dict:
        values = reported(p.stats)
        groups = self.queues.setdefault(p.stats.queue_id, {})
        for media, fields in groups.items():
            if media != p.media_type and "" in (media, p.media_type):
                for name in set(values) & set(BY_MEDIA):
                    fields.pop(name, None)
        groups.setdefault(p.media_type, {}).update(values)
        return {k: v for k, v in values.items() if k not in BY_MEDIA} | self.totals(groups)

    def replace(self, queue_id: str, parts: list[QueuePart]) -> dict:
        groups: dict[str, dict] = {}
        for p in parts:
            groups.setdefault(p.media_type, {}).update(reported(p.stats))
        self.queues[queue_id] = groups
        fields = {}
        for group in groups.values():
            fields.update({k: v for k, v in group.items() if k not in BY_MEDIA})
        return fields | self.totals(groups)

    def keep_only(self, queue_ids: set[str]) -> None:
        self.queues = {q: groups for q, groups in self.queues.items() if q in queue_ids}

    @staticmethod
    def totals(groups: dict[str, dict]) -> dict:
        out = {}
        for name in ("waiting", "interacting", "alerting"):
            if any(name in g for g in groups.values()):
                out[name] = sum(g[name] for g in groups.values() if name in g)
        waits = [g["longest_waiting_since"] for g in groups.values() if "longest_waiting_since" in g]
        if waits:
            out["longest_waiting_since"] = min((w for w in waits if w is not None), default=None)
        starts = [g["interval_start"] for g in groups.values() if g.get("interval_start") is not None]
        if starts:
            out["interval_start"] = max(starts)
            current = [g for g in groups.values() if g.get("interval_start") == max(starts)]
            for name in ("offered", "answered", "abandoned", "sl_numerator", "sl_denominator"):
                out[name] = sum(g.get(name, 0) for g in current)
        return out


_counts = st.integers(min_value=0, max_value=9)
_figures = st.fixed_dictionaries(
    {},
    optional={
        "waiting": _counts,
        "interacting": _counts,
        "alerting": _counts,
        "longest_waiting_since": st.none() | st.sampled_from([10.0, 20.0, 30.0]),
        "on_queue_agents": _counts,
        "interval_start": st.none() | st.sampled_from([1800.0, 3600.0]),
        "offered": _counts,
        "answered": _counts,
        "abandoned": _counts,
        "sl_numerator": _counts,
        "sl_denominator": _counts,
    },
)
_parts = st.builds(
    lambda queue_id, media, figures: QueuePart(QueueStats("c1", queue_id, **figures), media),
    st.sampled_from(["q1", "q2"]),
    st.sampled_from(["", "voice", "message"]),
    _figures,
)
_steps = st.one_of(
    st.tuples(st.just("add"), _parts),
    st.tuples(st.just("replace"), st.sampled_from(["q1", "q2"]), st.lists(_parts, max_size=3)),
    st.tuples(st.just("keep_only"), st.sets(st.sampled_from(["q1", "q2"]))),
)


@settings(max_examples=300)
@given(st.lists(_steps, max_size=30))
def test_kept_totals_always_equal_the_totals_added_up_afresh(steps):
    totals, reference = MediaTotals(), Reference()
    for step in steps:
        if step[0] == "add":
            assert reported(totals.add(step[1])) == reference.add(step[1])
        elif step[0] == "replace":
            # A snapshot's parts all belong to the queue it replaces.
            parts = [QueuePart(QueueStats("c1", step[1], **reported(p.stats)), p.media_type) for p in step[2]]
            assert totals.replace(step[1], parts) == reference.replace(step[1], parts)
        else:
            totals.keep_only(step[1])
            reference.keep_only(step[1])
