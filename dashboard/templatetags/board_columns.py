"""The queue table's header and cells, made from the queue's columns in ``streams.schema.QUEUE``.

A column's ``format`` picks its cell: ``count`` shows the figure ("–" when the
queue's vendor never reports it); ``waiting``, ``wait_clock`` and
``service_level`` carry their thresholds and flags. A figure added to the
schema with a label appears here, in the page and in every live row, with no
template to edit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from streams.schema import QUEUE, Field

register = template.Library()


def _count(column: Field, q: Mapping[str, Any], context: Mapping[str, Any]) -> SafeString:
    value = q.get(column.name)
    return format_html('<td class="num">{}</td>', "–" if value is None else value)


def _waiting(column: Field, q: Mapping[str, Any], context: Mapping[str, Any]) -> SafeString:
    label = context.get("waiting_label")
    flag = ""
    if label:
        icon = "◆" if q["waiting_level"] == "alert" else "▲"
        flag = format_html(' <span class="flag"><span class="icon" aria-hidden="true">{}</span> {}</span>', icon, label)
    return format_html(
        '<td class="num level-{}"><span class="value">{}</span>{}</td>', q["waiting_level"], q[column.name], flag
    )


def _wait_clock(column: Field, q: Mapping[str, Any], context: Mapping[str, Any]) -> SafeString:
    since = q.get(f"{column.name}_ms")
    since_attr = "" if since is None else format_html(' data-since="{}"', since)
    return format_html(
        '<td class="num wait"><span class="clock"{} data-warning-after="{}" data-alert-after="{}">–</span>'
        ' <span class="flag" hidden></span></td>',
        since_attr,
        q["longest_wait_warning"],
        q["longest_wait_alert"],
    )


def _service_level(column: Field, q: Mapping[str, Any], context: Mapping[str, Any]) -> SafeString:
    state = q["service_level_state"]
    flag = ""
    if state == "missed":
        flag = mark_safe(' <span class="flag"><span class="icon" aria-hidden="true">▼</span> Below target</span>')
    return format_html(
        '<td class="num sl sl-{}"><span class="value">{}</span>{} <span class="target">({})</span></td>',
        state,
        context.get("sl_value", "–"),
        flag,
        context.get("sl_target", ""),
    )


CELLS: dict[str, Callable[[Field, Mapping[str, Any], Mapping[str, Any]], SafeString]] = {
    "count": _count,
    "waiting": _waiting,
    "wait_clock": _wait_clock,
    "service_level": _service_level,
}
COLUMNS = QUEUE.columns


@register.simple_tag
def queue_header() -> SafeString:
    """Return the queue table's header cells: the queue's name, then one per column."""
    cells = format_html_join(
        "",
        '<th scope="col" class="num">{}</th>',
        ((format_html('<abbr title="{}">{}</abbr>', c.title, c.label) if c.title else c.label,) for c in COLUMNS),
    )
    return format_html('<th scope="col">Queue</th>{}', cells)


@register.simple_tag(takes_context=True)
def queue_cells(context: template.Context) -> SafeString:
    """Return a queue row's cells after its name, from the row's data ``q`` (see ``dashboard.rows.queue_row``)."""
    q = context["q"]
    return format_html_join("", "{}", ((CELLS[column.format](column, q, context),) for column in COLUMNS))
