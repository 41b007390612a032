"""Abandoned in the last 15 minutes: the figure added through the schema alone, counted from interval totals."""

import re
from types import SimpleNamespace

import pytest

from dashboard.rows import QueueConfig, queue_row
from dashboard.templatetags.board_columns import queue_header
from dashboard.worker import Worker
from streams.events import QueueStats, SourceSnapshot
from streams.floor import Floor, QueueState
from streams.vendors.genesys.media import MediaTotals
from streams.vendors.genesys.parsers import parse_frame
from streams.vendors.registry import vendor
from tests.test_genesys_parsers import T0, T0_EPOCH, Q, metric, observation
from tests.timing import FakeClock

KEY = ("queue", "c1", "q1")
HALF_HOUR = 1800.0
WINDOW = 900.0


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def floor(clock):
    return Floor(clock=clock)


def totals(abandoned, interval_start=T0_EPOCH):
    return QueueStats("c1", "q1", interval_start=interval_start, abandoned=abandoned)


def test_a_first_sighting_is_the_base_not_news(floor):
    floor.apply(totals(4))
    assert floor.queue("c1", "q1").abandoned_15m == 0


def test_rises_in_one_interval_count_their_difference(floor):
    floor.apply(totals(4))
    assert floor.apply(totals(6)) == {KEY}
    floor.apply(totals(6))
    floor.apply(totals(7))
    assert floor.queue("c1", "q1").abandoned_15m == 3


def test_a_new_interval_counts_its_whole_total_and_an_old_one_nothing(floor):
    floor.apply(totals(9))
    floor.apply(totals(2, T0_EPOCH + HALF_HOUR))  # the half hour turned, two abandoned since
    assert floor.queue("c1", "q1").abandoned_15m == 2
    floor.apply(totals(9))  # a late message of the previous interval
    assert floor.queue("c1", "q1").abandoned_15m == 2


def test_counts_leave_the_window_after_fifteen_minutes(floor, clock):
    floor.apply(totals(0))
    floor.apply(totals(2))
    clock.now += 600
    floor.apply(totals(3))
    assert floor.queue("c1", "q1").abandoned_15m == 3
    clock.now += WINDOW - 600 - 1
    assert floor.roll_windows() == set()
    clock.now += 1
    assert floor.roll_windows() == {KEY}
    assert floor.queue("c1", "q1").abandoned_15m == 1
    clock.now += 600
    assert floor.roll_windows() == {KEY}
    assert floor.queue("c1", "q1").abandoned_15m == 0
    assert len(floor.rolling) == 0


def test_a_snapshot_keeps_the_count_and_a_reset_interval_starts_a_new_base(floor):
    floor.apply(totals(1))
    floor.apply(totals(3))
    # A resync that reports no interval: the totals reset, the 15-minute count stands.
    floor.replace(SourceSnapshot("c1", queues={"q1": QueueStats("c1", "q1", waiting=1)}))
    state = floor.queue("c1", "q1")
    assert (state.abandoned, state.abandoned_15m) == (0, 2)
    floor.apply(totals(5))  # the base again, not five new abandons
    assert state.abandoned_15m == 2


def test_a_removed_queue_is_not_news_when_its_counts_expire(floor, clock):
    floor.apply(totals(1))
    floor.apply(totals(2))
    floor.replace(SourceSnapshot("c1"))
    clock.now += WINDOW
    assert floor.roll_windows() == set()


def test_genesys_aggregates_fill_it_through_the_media_totals(floor):
    media = MediaTotals()

    def aggregate(abandoned):
        data = [{"interval": f"{T0}/2026-11-22T08:30:00.000Z", "metrics": [metric("tAbandon", abandoned)]}]
        (part,) = parse_frame("c1", observation(data)).events
        floor.apply(media.add(part))

    aggregate(1)
    aggregate(4)
    assert floor.queue("c1", Q).abandoned_15m == 3


def test_the_board_shows_it_as_a_column_of_its_own():
    header = str(queue_header())
    assert '<abbr title="Abandoned in the last 15 minutes">Abandoned 15 min</abbr>' in header
    config = QueueConfig(pk=1, vendor_id="q1", name="Sales")
    html = queue_row(QueueState(source="c1", queue_id="q1", abandoned=9, abandoned_15m=4), config)["html"]
    # One cell per header column, the new one last.
    assert header.count("<th") == html.count("<td") + html.count("<th")
    assert re.findall(r'<td class="num">([^<]+)</td>', html)[-2:] == ["9", "4"]


def test_a_vendor_that_never_reports_abandons_shows_a_dash():
    assert "abandoned_15m" in vendor("cxone").unreported_queue_fields
    assert "abandoned_15m" not in vendor("genesys").unreported_queue_fields
    config = QueueConfig(pk=1, vendor_id="q1", name="Sales", unreported=vendor("cxone").unreported_queue_fields)
    row = queue_row(QueueState(source="c1", queue_id="q1"), config)
    assert row["data"]["abandoned_15m"] is None
    assert re.findall(r'<td class="num">([^<]+)</td>', row["html"])[-1] == "–"


def test_the_worker_publishes_rows_whose_counts_expired(floor, clock):
    marked = []
    worker = SimpleNamespace(floor=floor, publisher=SimpleNamespace(mark=marked.append))
    floor.apply(totals(1))
    floor.apply(totals(2))
    assert Worker.roll_windows(worker) == 0
    clock.now += WINDOW
    assert Worker.roll_windows(worker) == 1
    assert marked == [{KEY}]
