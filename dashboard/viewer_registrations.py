"""Where one board viewer is registered while its socket is open, and the one way out of all of it.

An open viewer counts against its user's sockets in this process
(dashboard.viewer_limits), is handed its board's messages by the process's
board feed (dashboard.fanout), has its grant watched by the access watch
(dashboard.access), and is on the list of sockets closed at shutdown
(dashboard.shutdown). leave() undoes every one of them and is safe to call
on every way out, including a connect() that fails half way, after which
Channels never calls disconnect().
"""

from __future__ import annotations

from collections import Counter
from typing import Protocol

from channels.db import database_sync_to_async
from django.conf import settings

from dashboard import shutdown
from dashboard.access import AccessWatch, Grant, verdicts, watches
from dashboard.fanout import JOIN_TIMEOUT, BoardFeed, board_feeds
from dashboard.viewer_limits import sockets_per_user

# A connecting viewer's second grant check: read from the database, or skipped as its watch heard nothing.
grant_rechecks: Counter[str] = Counter()


class Registrant(Protocol):
    """What the registrations need from a viewer: what the board feed and the access watch call, and its close."""

    grant: Grant | None

    async def take(self, message: dict) -> None:
        """Handle one board message from the feed."""

    def resync(self) -> None:
        """Start over from the snapshot store."""

    async def revoke(self, code: int) -> None:
        """Stop streaming and close the socket with CODE."""

    async def close(self, code: int | None = None) -> None:
        """Close the socket."""


class ViewerRegistrations:
    """One viewer's registrations: its place in its user's socket count, its board feed and access watch."""

    def __init__(self, viewer: Registrant) -> None:
        self.viewer = viewer
        self.user: int | None = None  # the user this socket counts against in sockets_per_user
        self.feed: BoardFeed | None = None
        self.access: AccessWatch | None = None
        self.mark: tuple[AccessWatch, int] | None = None  # the watch's mark from before the grant was read

    def note_access(self) -> None:
        """Note what the process's access watch has heard so far: call just before the grant is read."""
        self.mark = watches.mark()

    def count_socket(self, user_id: int) -> bool:
        """Count this socket against USER_ID's open ones and return True; False if the user is at the limit."""
        open_sockets = sockets_per_user()
        if open_sockets[user_id] >= settings.FLOORVIEW["SOCKETS_PER_USER"]:
            return False
        self.user = user_id
        open_sockets[user_id] += 1
        return True

    async def join(self, group: str) -> bool:
        """Watch the viewer's grant and join GROUP's feed; return False if the access ended meanwhile.

        Raises FeedUnavailable if the channel layer cannot be reached. A viewer revoked while joining has
        been closed by the watch; it leaves the feed it just joined here.
        """
        # Watched from before the feed join: access taken away while we connect still closes us.
        self.access = watches.watch(self.viewer)
        self.feed = await board_feeds.join(group, self.viewer)
        if self.access is None:
            self.leave()  # Revoked (and closed) while joining: leave the feed it just joined.
            return False
        shutdown.track(self.viewer)
        return True

    async def recheck(self) -> int | None:
        """Check the viewer's grant once more now that the watch listens; return its close code if it ended."""
        # A revocation announced between the board check and the watch being in its group reached
        # no one: once the watch listens, check this grant again (a few queries, this viewer only).
        # After the feed join, so that a layer that is down costs one timeout, not two.
        assert self.access is not None, "recheck() follows a join()"
        mark, self.mark = self.mark, None
        if mark is not None and mark[0] is self.access and self.access.heard_nothing_since(mark[1]):
            # The watch listened from before the grant was read and has heard nothing since: no revocation
            # can have slipped through, and a crowd reconnecting at once is spared a few queries each.
            grant_rechecks["skipped"] += 1
            return None
        grant_rechecks["read"] += 1
        await self.access.listening(JOIN_TIMEOUT)
        grant = self.viewer.grant
        return (await database_sync_to_async(verdicts)([grant])).get(grant)

    def leave(self) -> None:
        """Undo every registration of the viewer; safe to call more than once."""
        shutdown.forget(self.viewer)
        if self.user is not None:
            open_sockets = sockets_per_user()
            open_sockets[self.user] -= 1
            if open_sockets[self.user] <= 0:
                del open_sockets[self.user]
            self.user = None
        if self.feed is not None:
            self.feed.discard(self.viewer)
            self.feed = None
        if self.access is not None:
            self.access.discard(self.viewer)
            self.access = None
