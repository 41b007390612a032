"""Pages and JSON for boards; every board view goes through ``_get_board_for_user``."""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache

from dashboard import protocol
from dashboard.filters import NO_DISPOSITION, STATUS_CHOICES, RowFilter, select_rows
from dashboard.frames import meta_div
from dashboard.models import Board
from streams.snapshots import read_snapshot_sync


def _get_board_for_user(request: HttpRequest, slug: str) -> Board:
    """Return the board SLUG if the signed-in user may view it; raise Http404 otherwise.

    A board the user may not see answers exactly as a board that does not exist, so that
    nobody learns which slugs exist by trying them: one query finds the board among those
    the user may see (as the socket does), so both cost the same work and time.
    """
    if not request.user.is_authenticated:
        raise PermissionDenied
    board = Board.visible_to(request.user).filter(slug=slug).first()
    if board is None:
        raise Http404("No Board matches the given query.")
    return board


def healthz(request: HttpRequest) -> HttpResponse:
    """Return 200 "ok" while the process serves requests (no database, no Redis: load balancers poll it)."""
    return HttpResponse("ok", content_type="text/plain")


@login_required
def board_list(request: HttpRequest) -> HttpResponse:
    """Show the boards the user may open."""
    boards = Board.visible_to(request.user).order_by("title")
    return render(request, "dashboard/board_list.html", {"boards": boards})


@never_cache
@login_required
def board_page(request: HttpRequest, slug: str) -> HttpResponse:
    """Show a live board, its rows rendered in place from the snapshot store."""
    board = _get_board_for_user(request, slug)
    row_filter = RowFilter.from_query(request.GET)
    snapshot = read_snapshot_sync(board.pk)
    rows = snapshot.rows.values() if snapshot else ()
    panels = board.shown_panels()
    meta = meta_div(
        "page",
        epoch=snapshot.epoch if snapshot else None,
        seq=snapshot.seq if snapshot else 0,
        server_time=time.time(),
        live_at=snapshot.live_at if snapshot else None,
        health=snapshot.health if snapshot else None,
        oob=False,
    )
    context = {
        "board": board,
        "panels": panels,
        # Rows were rendered by the worker with this page's own partials: safe, trusted HTML.
        "queue_rows": mark_safe("".join(row["html"] for row in select_rows(rows, "queue", row_filter))),  # noqa: S308
        "agent_rows": mark_safe("".join(row["html"] for row in select_rows(rows, "agent", row_filter))),  # noqa: S308
        "interaction_rows": mark_safe(  # noqa: S308
            "".join(row["html"] for row in select_rows(rows, "interaction", row_filter))
        ),
        "meta": mark_safe(meta),  # noqa: S308
        "queues": board.queues.order_by("name"),
        "statuses": STATUS_CHOICES,
        **_label_choices(rows, row_filter),
        "row_filter": row_filter,
        "stale_after": settings.FLOORVIEW["STALE_AFTER"],
        # Close codes and labels the page's script reads (dashboard.protocol is their one home).
        "protocol": protocol.for_page(),
    }
    return render(request, "dashboard/board.html", context)


@never_cache
def board_api(request: HttpRequest, slug: str) -> JsonResponse:
    """Return a board's current rows and freshness as JSON (401/404 as JSON, never a login redirect)."""
    if not request.user.is_authenticated:
        return JsonResponse({"error": "authentication required"}, status=401)
    try:
        board = _get_board_for_user(request, slug)
    except Http404:
        return JsonResponse({"error": "no such board"}, status=404)
    row_filter = RowFilter.from_query(request.GET)
    snapshot = read_snapshot_sync(board.pk)
    rows = snapshot.rows.values() if snapshot else ()
    now = time.time()
    live_at = snapshot.live_at if snapshot else None
    age = None if live_at is None else round(max(0.0, now - live_at), 3)
    return JsonResponse(
        {
            "board": {"slug": board.slug, "title": board.title},
            "epoch": snapshot.epoch if snapshot else None,
            "seq": snapshot.seq if snapshot else 0,
            "server_time": now,
            "live_at": live_at,
            "age_seconds": age,
            "stale": age is None or age > settings.FLOORVIEW["STALE_AFTER"],
            "health": snapshot.health if snapshot else {"state": "unknown"},
            "queues": [row["data"] for row in select_rows(rows, "queue", row_filter)],
            "agents": [row["data"] for row in select_rows(rows, "agent", row_filter)],
            "interactions": [row["data"] for row in select_rows(rows, "interaction", row_filter)],
        }
    )


def _label_choices(rows, row_filter: RowFilter) -> dict:
    """Return the campaign and disposition filter choices: those on the board now, and those already chosen."""
    campaigns, dispositions = set(row_filter.campaigns), set(row_filter.dispositions) - {NO_DISPOSITION}
    for row in rows:
        if row.get("kind") == "interaction":
            attrs = row.get("attrs") or {}
            if attrs.get("campaign"):
                campaigns.add(attrs["campaign"])
            if attrs.get("disposition"):
                dispositions.add(attrs["disposition"])
    return {
        "campaigns": sorted(campaigns, key=str.casefold),
        "dispositions": [(NO_DISPOSITION, "None yet"), *((d, d) for d in sorted(dispositions, key=str.casefold))],
    }
