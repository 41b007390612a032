"""The board protocol: the names and numbers the worker, the web processes and the page share.

One home for them, so the server and ``board.js`` cannot drift apart: the
page receives ``for_page()`` as JSON in the board page (``json_script``) and
reads its close codes and labels from there; only its own ``PROTOCOL`` number
stays in the script, since it says which script is running.
"""

from __future__ import annotations

# What the page and the server agree on (frames, client messages, acknowledgements). Every snapshot
# carries it; a page whose script expects another version reloads itself (``PROTOCOL`` in
# static/dashboard/board.js), so pages left open across a deploy do not run an old script against a
# new server. Raise it, here and in board.js together, whenever either side changes what the other does.
# 3: frames open with a JSON head instead of a ``#board-meta`` element.
# 4: a snapshot may come in parts (``snapshot``, then ``snapshot-part`` frames; heads carry part/parts).
PROTOCOL_VERSION = 4
# The query parameter in which the page's script names the version it speaks when it opens its socket.
VERSION_PARAM = "protocol"

# Board messages, from the worker to the web processes through the board's group. Their consumers
# handle each with the method Channels would name after it (``board.delta`` → ``board_delta``).
DELTA = "board.delta"
TICK = "board.tick"
MESSAGE_TYPES = (DELTA, TICK)

# Client messages, from the page on its board socket (JSON objects with a ``type``). The consumer
# handles each with the method named after ``page.<type>`` (``page_ack``, ``page_filter``, ...).
ACK = "ack"  # {"type": "ack", "frames": N}: the page has read N frames on this socket
FILTER = "filter"  # {"type": "filter", "queue": [...], "status": [...], ...}: show these rows only
RESYNC = "resync"  # {"type": "resync"}: send the whole picture again
CLIENT_MESSAGE_TYPES = (ACK, FILTER, RESYNC)
CLIENT_HANDLER_PREFIX = "page."

# The ``type`` in a frame's head (dashboard.frames). A snapshot is one ``snapshot`` frame, which replaces
# the page's rows, followed by ``snapshot-part`` frames that add rows when it is larger than a part's bound;
# every part's head carries ``part`` (from 1) and ``parts``, and the snapshot is complete at the last.
SNAPSHOT_FRAME = "snapshot"
SNAPSHOT_PART_FRAME = "snapshot-part"
DELTA_FRAME = "delta"
TICK_FRAME = "tick"


# Access announcements, from any process that changed who may see what to every web process.
ACCESS_GROUP = "access"
ACCESS_CHANGED = "access.changed"  # boards, users and session tags whose sockets must be checked again


def group_name(board_id: int) -> str:
    """Return the channel-layer group a board's messages go to."""
    return f"board.{board_id}"


def tick_message(
    board_id: int, *, epoch: str, seq: int, server_time: float, live_at: float | None, health: dict
) -> dict:
    """Return a ``board.tick``: the board is as of SEQ still, with these times and this upstream health."""
    return {
        "type": TICK,
        "board": board_id,
        "epoch": epoch,
        "seq": seq,
        "server_time": server_time,
        "live_at": live_at,
        "health": health,
    }


def delta_message(
    board_id: int,
    *,
    epoch: str,
    seq: int,
    server_time: float,
    live_at: float | None,
    health: dict,
    rows: list[dict],
    removed: list[str],
) -> dict:
    """Return a ``board.delta``: the rows rendered anew (each a dict with its kind, key and HTML) and the
    keys removed since SEQ - 1, with what a tick says."""
    message = tick_message(board_id, epoch=epoch, seq=seq, server_time=server_time, live_at=live_at, health=health)
    return {**message, "type": DELTA, "rows": rows, "removed": removed}


class Close:
    """Close codes of a board socket. Daphne's WebSocket library sends only 1000 and 3000-4999.

    Plain ints, not an IntEnum: that library checks a close code's type exactly and refuses anything
    else, so an enum member would make the close itself fail and leave the socket open.
    """

    POLICY = 4008  # a message flood, a reader too far behind, too many sockets
    TRY_LATER = 4011  # the store or the channel layer is unreachable, or too many sign-ins being checked
    RESTART = 4012  # the web process is stopping (a deploy): come back at once, to another
    UNAUTHENTICATED = 4401  # signed out, or the session or the user is gone
    FORBIDDEN = 4403  # access to this board was taken away while the socket was open
    UNKNOWN_BOARD = 4404  # no such board, or one this user may not see (the two answer alike)


# A 4012 or 4011 close may carry a reason "spread=<seconds>": the window over which the server asks the pages
# it closes to spread their return (a crowd of thousands must not come back within the same second). The
# page waits a uniform share of it; without a reason (an older server) a restart spreads over one second.
SPREAD_REASON = "spread="


def spread_reason(seconds: float) -> str:
    """Return the close reason asking pages to spread their return over SECONDS."""
    return f"{SPREAD_REASON}{seconds:.1f}"


def restart_spread(reason: str | None) -> float | None:
    """Return the seconds a close REASON asks the page to spread its return over, or None if it names none."""
    if not reason or not reason.startswith(SPREAD_REASON):
        return None
    try:
        seconds = float(reason[len(SPREAD_REASON) :])
    except ValueError:
        return None
    # A reason is only advice: never more than the page's own backoff cap, never negative or NaN.
    return min(max(seconds, 0.0), 30.0) if seconds == seconds else None


# Closes after which the page stops and says why; after any other it reconnects with backoff.
REFUSALS = {
    Close.UNAUTHENTICATED: "Signed out. Reload the page to sign in again.",
    Close.FORBIDDEN: "You no longer have access to this board.",
    Close.UNKNOWN_BOARD: "This board does not exist, or you may not see it.",
}

# The source's health as the page names it: the worker's link states (streams.health.STATES), and
# "unknown" before any word. Worst first: a board shows the worst state among its sources.
HEALTH_LABELS = {
    "auth_failed": "Sign-in failed",
    "reconnecting": "Reconnecting",
    "connecting": "Connecting",
    "degraded": "Degraded",
    "disabled": "Disabled",
    "unknown": "Unknown",
    "live": "Live",
}
HEALTH_WORST_FIRST = tuple(HEALTH_LABELS)


def for_page() -> dict:
    """Return what the page must know of the protocol, for ``json_script``."""
    return {
        "version": PROTOCOL_VERSION,
        "version_param": VERSION_PARAM,
        "restarts": [Close.RESTART],
        "spread_reason": SPREAD_REASON,
        "refusals": {str(code): text for code, text in REFUSALS.items()},
        "health": HEALTH_LABELS,
    }
