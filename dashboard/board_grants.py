"""A board socket's grant: may this user open this board, and with what is it authorised.

Read once per socket on the process's one database thread. A board socket's
session, user and grant are read in one call of that thread, from the
sign-in lane (``dashboard.handshake``), and handed to the consumer in the
scope: in a reconnect storm each call waits its turn on that thread behind
the others, so two calls per handshake halved how many viewers a process
signed in a second (docs/PERFORMANCE.md, "Reconnect storm").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from channels.auth import get_user
from django.contrib.auth import HASH_SESSION_KEY

from dashboard.access import AccessWatch, Grant

# The scope key the sign-in lane leaves its board check under.
BOARD_CHECK = "floorview.board_check"


@dataclass(frozen=True)
class BoardCheck:
    """What the sign-in lane found: the board (None: not one the user may open) and the grant, for SLUG."""

    slug: str
    board: Any
    grant: Grant | None
    # The access watch's mark from before the grant was read (dashboard.viewer_registrations.recheck).
    mark: tuple[AccessWatch, int] | None


def board_grant(user: Any, slug: str, session: Any = None) -> tuple[Any, Grant | None]:
    """Return the board SLUG and what the socket is granted with if USER may open it, else (None, None)."""
    from dashboard.models import Board

    # A board the user may not see answers exactly like one that does not exist: no slug is confirmed.
    board = Board.visible_to(user).filter(slug=slug).first()
    if board is None:
        return None, None
    grant = Grant(
        user_id=user.pk,
        board_id=board.pk,
        session_key=getattr(session, "session_key", None),
        # The session's copy of the user's auth hash: a password change ends the grant.
        auth_hash=session.get(HASH_SESSION_KEY) if session is not None else None,
    )
    return board, grant


def user_and_board(scope: dict, slug: str) -> tuple[Any, tuple[Any, Grant | None]]:
    """Return the scope's user (as Channels loads it) and, if signed in, its board SLUG and grant: one call."""
    user = get_user.func(scope)  # Channels' own loader, without a thread hop of its own
    if not user.is_authenticated:
        return user, (None, None)
    return user, board_grant(user, slug, scope.get("session"))
