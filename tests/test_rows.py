"""Rows: thresholds, service-level words, escaping, and the shape the consumer relies on.

No test here has database access (pytest-django refuses it), which is the
point: the publisher renders rows inside the worker's event loop.
"""

import re
from dataclasses import replace

import pytest

from dashboard.filters import RowFilter
from dashboard.rows import QueueConfig, agent_row, queue_row, threshold_level
from streams.floor import AgentState, QueueState
from streams.models import Queue
from streams.vendors.registry import vendor

SALES = QueueConfig(
    pk=7,
    vendor_id="q-sales",
    name="Sales",
    sl_target_percent=80,
    sl_target_seconds=20,
    waiting_warning=5,
    waiting_alert=10,
    longest_wait_warning=60,
    longest_wait_alert=180,
)
SUPPORT = QueueConfig(pk=8, vendor_id="q-support", name="Support")


def waiting_cell(html: str) -> str:
    return re.search(r"</th>(<td .*?</td>)", html).group(1)


@pytest.mark.parametrize(
    ("waiting", "level", "word"),
    [(0, "ok", None), (4, "ok", None), (5, "warning", "Warning"), (9, "warning", "Warning"), (10, "alert", "Alert")],
)
def test_it_marks_waiting_contacts_by_colour_and_by_word(waiting, level, word):
    row = queue_row(QueueState(source="c1", queue_id="q-sales", waiting=waiting), SALES)
    cell = waiting_cell(row["html"])
    assert row["data"]["waiting_level"] == level
    assert f"level-{level}" in cell
    if word:
        assert word in cell
        assert 'aria-hidden="true"' in cell  # The icon is decoration; the word carries the meaning.
    else:
        assert "flag" not in cell


def test_it_treats_a_zero_threshold_as_switched_off():
    assert threshold_level(50, 0, 0) == "ok"
    assert threshold_level(50, 0, 40) == "alert"
    assert threshold_level(50, 10, 0) == "warning"


@pytest.mark.parametrize(
    ("numerator", "denominator", "text", "state"),
    [
        (83, 100, "83% (80% in 20 s)", "met"),
        (80, 100, "80% (80% in 20 s)", "met"),
        (79, 100, "79% (80% in 20 s)", "missed"),
        (0, 0, "– (80% in 20 s)", "none"),
    ],
)
def test_it_states_the_service_level_against_its_target(numerator, denominator, text, state):
    row = queue_row(
        QueueState(source="c1", queue_id="q-sales", sl_numerator=numerator, sl_denominator=denominator), SALES
    )
    assert row["data"]["service_level_text"] == text
    assert row["data"]["service_level_state"] == state
    assert f"sl-{state}" in row["html"]
    assert ("Below target" in row["html"]) == (state == "missed")
    assert "(80% in 20 s)" in row["html"]


def test_it_shows_every_queue_figure():
    state = QueueState(
        source="c1",
        queue_id="q-sales",
        waiting=2,
        interacting=11,
        alerting=3,
        on_queue_agents=17,
        idle_agents=4,
        offered=120,
        answered=101,
        abandoned=9,
        abandoned_15m=7,
    )
    cells = re.findall(r'<td class="num">(\d+)</td>', queue_row(state, SALES)["html"])
    assert cells == ["11", "3", "17", "4", "120", "101", "9", "7"]


def test_it_shows_a_dash_for_figures_the_vendor_never_reports():
    # CXone's real-time API has no ringing count and no interval totals: a zero there would read as fact.
    state = QueueState(source="c1", queue_id="q-sales", interacting=11, alerting=0, offered=0, answered=0)
    config = replace(SALES, unreported=vendor("cxone").unreported_queue_fields)
    row = queue_row(state, config)
    cells = re.findall(r'<td class="num">([^<]+)</td>', row["html"])
    # Abandoned in the last 15 minutes is counted from abandoned, so it is unreported with it.
    assert cells == ["11", "–", "0", "0", "–", "–", "–", "–"]
    assert (row["data"]["offered"], row["data"]["interacting"]) == (None, 11)


def test_it_gives_the_longest_wait_clock_a_timestamp_and_its_thresholds():
    row = queue_row(QueueState(source="c1", queue_id="q-sales", waiting=1, longest_waiting_since=1763800000.25), SALES)
    assert 'data-since="1763800000250"' in row["html"]
    assert 'data-warning-after="60"' in row["html"]
    assert 'data-alert-after="180"' in row["html"]
    idle = queue_row(QueueState(source="c1", queue_id="q-sales"), SALES)
    assert "data-since" not in idle["html"]


def test_it_escapes_names_everywhere():
    evil = QueueConfig(pk=9, vendor_id="q<1>", name='<script>alert("q")</script>')
    queue_html = queue_row(QueueState(source="c1", queue_id="q<1>"), evil)["html"]
    agent = AgentState(source="c1", agent_id="u1", name="<img src=x onerror=alert(1)>", queue_ids=frozenset({"q<1>"}))
    agent_html = agent_row(agent, {"q<1>": evil})["html"]
    for html in (queue_html, agent_html):
        assert "<script" not in html
        assert "<img" not in html
    assert "&lt;script&gt;" in queue_html
    assert "&lt;img src=x" in agent_html
    assert "&lt;script&gt;alert(&quot;q&quot;)&lt;/script&gt;" in agent_html


def test_it_keys_rows_for_the_page_and_the_filters():
    queue = queue_row(QueueState(source="c1", queue_id="q-sales"), SALES)
    assert (queue["key"], queue["kind"], queue["attrs"]) == ("q-7", "queue", {"queue": "7"})
    assert queue["html"].startswith('<tr id="q-7" ')
    agent = AgentState(
        source="c3",
        agent_id="u-42",
        name="Ann",
        presence="on_queue",
        routing_status="NOT_RESPONDING",
        routing_since=1763800000.0,
        queue_ids=frozenset({"q-sales", "q-support", "q-elsewhere"}),
    )
    row = agent_row(agent, {"q-sales": SALES, "q-support": SUPPORT})
    assert row["key"] == "a-c3-u-42"
    assert row["html"].startswith('<tr id="a-c3-u-42" ')
    # Only the board's queues: a queue the board does not show is neither listed nor filterable.
    assert row["attrs"] == {"queues": ["7", "8"], "status": "not_responding"}
    assert row["data"]["queues"] == ["Sales", "Support"]
    assert "Sales, Support" in row["html"]
    assert "Not responding" in row["html"]
    assert "status-alert" in row["html"]
    assert 'data-since="1763800000000"' in row["html"]


@pytest.mark.parametrize(
    ("presence", "routing", "words"),
    [
        ("on_queue", "IDLE", "Idle"),
        ("on_queue", "INTERACTING", "Interacting"),
        ("break", "OFF_QUEUE", "Break"),
        ("available", None, "Available"),
        ("out_sick", None, "Out sick"),
    ],
)
def test_it_names_agent_statuses_in_human_words(presence, routing, words):
    agent = AgentState(source="c1", agent_id="u1", name="Ann", presence=presence, routing_status=routing)
    assert f"</span>{words}</span>" in agent_row(agent, {})["html"]


def test_it_reads_a_queue_config_from_the_model_without_a_query():
    queue = Queue(pk=12, vendor_id="v-12", name="Claims", sl_target_percent=90, sl_target_seconds=30)
    config = QueueConfig.from_queue(queue)
    assert (config.pk, config.vendor_id, config.name, config.sl_target_text) == (12, "v-12", "Claims", "90% in 30 s")


def test_it_filters_viewers_on_row_attrs():
    sales_row = queue_row(QueueState(source="c1", queue_id="q-sales"), SALES)
    agent = AgentState(source="c1", agent_id="u1", presence="break", queue_ids=frozenset({"q-support"}))
    agent = agent_row(agent, {"q-sales": SALES, "q-support": SUPPORT})
    assert RowFilter.parse(["7"]).matches(sales_row)
    assert not RowFilter.parse(["8"]).matches(sales_row)
    assert RowFilter.parse(["8"], ["break"]).matches(agent)
    assert not RowFilter.parse(["7"]).matches(agent)
    assert not RowFilter.parse([], ["idle"]).matches(agent)
    # Status filters leave queue rows alone.
    assert RowFilter.parse([], ["idle"]).matches(sales_row)


@pytest.mark.parametrize("bad", [{"a": 1}, [["7"]], ["7; drop"], [True], ["x" * 50], list(map(str, range(501)))])
def test_it_refuses_malformed_filter_values(bad):
    with pytest.raises(ValueError):
        RowFilter.parse(bad, bad)
