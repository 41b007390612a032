"""The HTML frames a board socket sends: htmx 2 out-of-band swaps.

Every frame opens with the ``#board-meta`` element (kind, epoch, seq, times
and upstream health) that the page's script reads; the rest are out-of-band
swaps by id. A snapshot replaces whole table bodies; a delta replaces rows
the viewer has, appends rows that entered its filter and deletes rows that
left it.

Table parts travel inside ``<template>`` elements, as htmx documents for
out-of-band table rows: after the meta ``<div>`` the HTML parser would drop
bare ``<tbody>`` and ``<tr>`` tags (and inside one template a ``<tbody>``
after a ``<tr>``), so rows and bodies get a template each. htmx 2's ws
extension hands each top-level element to ``oobSwap`` by itself and does not
open templates, so the page applies frames with ``htmx.swap`` (see
static/dashboard/board.js), which does. Building a frame is string work only:
rows arrive rendered.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from html import escape
from typing import Any

from dashboard import protocol
from dashboard.filters import RowFilter, select_rows

# The table body each kind of row lives in, in page order.
TBODY_IDS = {"queue": "queue-rows", "agent": "agent-rows", "interaction": "interaction-rows"}


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return ""
    return repr(value)


def meta_div(
    kind: str,
    *,
    epoch: str | None,
    seq: int,
    server_time: float | None,
    live_at: float | None,
    health: Mapping[str, Any] | None,
    oob: bool = True,
    protocol: int | None = None,
) -> str:
    """Return the ``#board-meta`` element that opens every frame (and the page, with OOB false).

    PROTOCOL (snapshots) is the version of the page protocol this server speaks.
    """
    health = health if isinstance(health, Mapping) else {}
    swap = ' hx-swap-oob="true"' if oob else ""
    version = f' data-protocol="{int(protocol)}"' if protocol is not None else ""
    # Attribute order is fixed: the page reads kind, epoch and seq from the raw frame before swapping.
    return (
        f'<div id="board-meta"{swap} data-kind="{escape(kind)}" data-epoch="{escape(epoch or "")}"'
        f' data-seq="{_number(seq)}" data-server-time="{_number(server_time)}" data-live-at="{_number(live_at)}"'
        f' data-health-state="{escape(str(health.get("state") or "unknown"))}"'
        f' data-health-detail="{escape(str(health.get("detail") or ""))}"{version} hidden></div>'
    )


def is_row(row: Any, kinds: Iterable[str]) -> bool:
    """Return whether ROW is a well-formed row of one of KINDS (a bad one is skipped, never sent)."""
    return (
        isinstance(row, dict)
        and row.get("kind") in kinds
        and isinstance(row.get("key"), str)
        and isinstance(row.get("html"), str)
        and row["html"].startswith("<tr ")
    )


def _oob_row(html: str) -> str:
    # Rows are rendered once for the page and every push; the swap marker is added here, per frame.
    return '<tr hx-swap-oob="true"' + html[3:]


def snapshot_frame(snapshot: Any, row_filter: RowFilter, kinds: tuple[str, ...]) -> tuple[str, set[str]]:
    """Return a frame replacing the table bodies of KINDS with SNAPSHOT's rows, and the keys now shown.

    SNAPSHOT is a streams.snapshots.BoardSnapshot, or None when the worker has written nothing yet.
    """
    if snapshot is None:
        parts = [
            meta_div(
                "snapshot",
                epoch=None,
                seq=0,
                server_time=None,
                live_at=None,
                health=None,
                protocol=protocol.PROTOCOL_VERSION,
            )
        ]
        rows: list = []
    else:
        parts = [
            meta_div(
                "snapshot",
                epoch=snapshot.epoch,
                seq=snapshot.seq,
                server_time=snapshot.server_time,
                live_at=snapshot.live_at,
                health=snapshot.health,
                protocol=protocol.PROTOCOL_VERSION,
            )
        ]
        rows = [row for row in snapshot.rows.values() if is_row(row, kinds)]
    shown: set[str] = set()
    parts.append("<template>")
    for kind in kinds:
        parts.append(f'<tbody id="{TBODY_IDS[kind]}" hx-swap-oob="innerHTML">')
        for row in select_rows(rows, kind, row_filter):
            parts.append(row["html"])
            shown.add(row["key"])
        parts.append("</tbody>")
    parts.append("</template>")
    return "".join(parts), shown


def delta_frame(message: Mapping[str, Any], row_filter: RowFilter, shown: set[str], kinds: tuple[str, ...]) -> str:
    """Return a frame applying a ``board.delta`` for one viewer, updating SHOWN (the keys on its page)."""
    deleted: list[str] = []
    replaced: list[str] = []
    appended: dict[str, list[str]] = {kind: [] for kind in kinds}
    rows = message.get("rows")
    for row in rows if isinstance(rows, list) else ():
        if not is_row(row, kinds):
            continue
        key = row["key"]
        if row_filter.matches(row):
            if key in shown:
                replaced.append(_oob_row(row["html"]))
            else:
                appended[row["kind"]].append(row["html"])
                shown.add(key)
        elif key in shown:
            # The row left this viewer's filter: it goes, like a removed one.
            deleted.append(key)
            shown.discard(key)
    removed = message.get("removed")
    for key in removed if isinstance(removed, list) else ():
        if isinstance(key, str) and key in shown:
            deleted.append(key)
            shown.discard(key)
    parts = [
        meta_div(
            "delta",
            epoch=message.get("epoch"),
            seq=message.get("seq", 0),
            server_time=message.get("server_time"),
            live_at=message.get("live_at"),
            health=message.get("health"),
        )
    ]
    if deleted or replaced:
        parts.append("<template>")
        parts.extend(f'<tr id="{escape(key)}" hx-swap-oob="delete"></tr>' for key in deleted)
        parts.extend(replaced)
        parts.append("</template>")
    if any(appended.values()):
        parts.append("<template>")
        for kind, rows_html in appended.items():
            if rows_html:
                parts.append(f'<tbody hx-swap-oob="beforeend:#{TBODY_IDS[kind]}">{"".join(rows_html)}</tbody>')
        parts.append("</template>")
    return "".join(parts)


def tick_frame(message: Mapping[str, Any]) -> str:
    """Return a frame that only refreshes the meta (data age and upstream health)."""
    return meta_div(
        "tick",
        epoch=message.get("epoch"),
        seq=message.get("seq", 0),
        server_time=message.get("server_time"),
        live_at=message.get("live_at"),
        health=message.get("health"),
    )
