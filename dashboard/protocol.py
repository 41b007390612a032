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
PROTOCOL_VERSION = 2

DELTA = "board.delta"
TICK = "board.tick"
MESSAGE_TYPES = (DELTA, TICK)


def group_name(board_id: int) -> str:
    """Return the channel-layer group a board's messages go to."""
    return f"board.{board_id}"


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


# Closes after which the page stops and says why; after any other it reconnects with backoff.
REFUSALS = {
    Close.UNAUTHENTICATED: "Signed out. Reload the page to sign in again.",
    Close.FORBIDDEN: "You no longer have access to this board.",
    Close.UNKNOWN_BOARD: "This board does not exist, or you may not see it.",
}

# The source's health as the page names it: the worker's link states, and "unknown" before any word.
HEALTH_LABELS = {
    "live": "Live",
    "connecting": "Connecting",
    "reconnecting": "Reconnecting",
    "degraded": "Degraded",
    "auth_failed": "Sign-in failed",
    "disabled": "Disabled",
    "unknown": "Unknown",
}


def for_page() -> dict:
    """Return what the page must know of the protocol, for ``json_script``."""
    return {
        "version": PROTOCOL_VERSION,
        "restarts": [Close.RESTART],
        "refusals": {str(code): text for code, text in REFUSALS.items()},
        "health": HEALTH_LABELS,
    }
