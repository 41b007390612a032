"""The board socket: one viewer, one board, a snapshot and then the deltas that follow it.

After the permission check (the only database work) the consumer does string
work only: rows arrive rendered from the worker, and the consumer picks the
ones this viewer's filter lets through and wraps them in frames
(dashboard.frames).

Board messages do not come through the consumer's own channel: the process's
feed for the board (dashboard.fanout) hands them over, one call per viewer.
While a viewer reads a snapshot, messages wait in its queue, and those the
snapshot already covers are dropped when the queue is worked off (both in
dashboard.catch_up); whether a message follows what the page shows is decided
in dashboard.frame_order, and nowhere else. Board messages and the page's
messages are each handled by the method Channels would name after their type
(``board.delta`` → ``board_delta``, the page's ``resync`` → ``page_resync``),
from the types dashboard.protocol names; the page's are taken apart and
rate-limited in dashboard.page_messages.

What one viewer can make the process hold is bounded (dashboard.viewer_limits):
client messages pass a token bucket and cost no database work, snapshots the
page asks for pass a bucket of their own and coalesce into at most one in
flight and one pending, one user holds at most ``FLOORVIEW_SOCKETS_PER_USER``
sockets per process, and a page that leaves more than
``FLOORVIEW_SOCKET_UNREAD_CAP`` bytes unacknowledged is closed (a page that
stops reading; a client faking acknowledgements meets the web server's
write-buffer cap instead). A viewer's registrations (its user's socket count,
board feed, access watch, shutdown list: dashboard.viewer_registrations) are
undone on every way out, including a connect() that fails half way, after
which Channels never calls disconnect().
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from dashboard import page_messages
from dashboard.access import Grant
from dashboard.board_grants import BOARD_CHECK, board_grant
from dashboard.catch_up import CatchUp
from dashboard.fanout import FeedUnavailable
from dashboard.filters import RowFilter
from dashboard.frame_order import FrameOrder, Next
from dashboard.frames import delta_frame, legacy_reload_frame, snapshot_frames, tick_frame
from dashboard.protocol import VERSION_PARAM, Close
from dashboard.snapshot_reads import snapshot_reads
from dashboard.viewer_limits import UnreadFrames, sockets_per_user
from dashboard.viewer_registrations import ViewerRegistrations
from streams.log_throttle import ThrottledLog

log = logging.getLogger(__name__)
# At most one line a minute per board: every viewer of a board too large for the buffer cap would repeat it.
large_snapshot_log = ThrottledLog(log, 60.0)

PANEL_KINDS = {"queues": "queue", "agents": "agent", "interactions": "interaction"}


def _warn_if_over_the_buffer_cap(board_id: int | None, parts: list[str]) -> None:
    # Parts are written back to back, faster than a network takes them: the web server's write-buffer cap
    # (manage.py serve) must be above a whole snapshot, or it aborts pages that read normally (docs/sockets.md).
    cap = settings.FLOORVIEW["SOCKET_BUFFER_CAP"]
    size = sum(map(len, parts)) if len(parts) > 1 else 0
    if size > cap:
        large_snapshot_log.log(
            ("large snapshot", board_id),
            logging.WARNING,
            "board %s: a snapshot of %d bytes is over FLOORVIEW_SOCKET_BUFFER_CAP (%d); raise it (docs/sockets.md)",
            board_id,
            size,
            cap,
        )


class BoardConsumer(AsyncWebsocketConsumer):
    """Stream one board to one viewer: a full snapshot, then every delta that follows it, filtered."""

    # Board messages come from the process's board feed (dashboard.fanout), never through a channel
    # of the consumer's own: an alias that names no layer keeps Channels from making one per viewer.
    channel_layer_alias = "board sockets use dashboard.fanout"

    board_id: int | None = None
    group: str | None = None  # the board's group while this viewer streams it; None once it left
    grant: Grant | None = None
    kinds: tuple[str, ...] = ()
    # Made by connect(); None on a socket that never got that far.
    registrations: ViewerRegistrations | None = None
    catch_up: CatchUp | None = None

    async def dispatch(self, message: dict) -> None:
        """Handle MESSAGE; client frames skip Channels' database cleanup.

        Channels closes stale database connections on the database thread before every handler.
        receive() does no database work, so for client frames that trip only lets a client that
        sends fast queue work on the process's single database thread, in front of other viewers'
        handshakes, whether or not the rate limit then drops the frame.
        """
        if message["type"] == "websocket.receive":
            await self.websocket_receive(message)
            return
        await super().dispatch(message)

    async def connect(self) -> None:
        """Check the viewer, join the board's feed, then send the snapshot."""
        self.shown: set[str] = set()
        self.row_filter = RowFilter()
        self.order = FrameOrder()
        self.inbox = page_messages.Inbox()
        self.registrations = ViewerRegistrations(self)
        self.catch_up = CatchUp(self)
        self.unread = UnreadFrames()
        self.unread_cap = settings.FLOORVIEW["SOCKET_UNREAD_CAP"]
        self.part_bytes = settings.FLOORVIEW["SNAPSHOT_PART_BYTES"]
        # One snapshot's parts at a time: two reads in flight (a resync the page asked for, one after a gap)
        # must not interleave their parts on the page.
        self.sending_snapshot = asyncio.Lock()
        # Accept first: a refusal before the handshake reaches the browser only as an anonymous 1006.
        await self.accept()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=Close.UNAUTHENTICATED)
            return
        if not self.registrations.count_socket(user.pk):
            # Before any database work: one account cannot make a process hold sockets without end.
            log.info("closing a board socket: user %s already has %d open here", user.pk, sockets_per_user()[user.pk])
            await self.close(code=Close.POLICY)
            return
        slug = self.scope["url_route"]["kwargs"]["slug"]
        check = self.scope.get(BOARD_CHECK)
        if check is not None and check.slug == slug:
            # The sign-in lane read it with the session and the user, in the same database call.
            board, grant = check.board, check.grant
            self.registrations.mark = check.mark
        else:
            self.registrations.note_access()
            board, grant = await database_sync_to_async(board_grant)(user, slug, self.scope.get("session"))
        if board is None:
            self.leave()
            await self.close(code=Close.UNKNOWN_BOARD)
            return
        self.board_id = board.pk
        self.kinds = tuple(PANEL_KINDS[panel] for panel in board.shown_panels())
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        self.row_filter = RowFilter.from_query(query)
        self.grant = grant
        try:
            # Join before reading (the read counted from before the join): a delta stored after the read
            # is then already queued for us.
            self.catch_up.expect()
            try:
                if not await self.registrations.join(board.group_name):
                    return  # Revoked (and closed) while joining.
            except FeedUnavailable:
                log.warning("board %s: the channel layer is unreachable; closing a new viewer", self.board_id)
                self.leave()
                await self.close(code=Close.TRY_LATER)
                return
            self.group = board.group_name
            code = await self.registrations.recheck()
            if code is not None and self.group is not None:
                await self.revoke(code)
            if self.group is None:
                return  # Revoked while connecting: no snapshot.
            if VERSION_PARAM not in query:
                # A page whose script predates frames with a JSON head: have it reload to fetch the current one.
                await self._send_frame(legacy_reload_frame())
            await self.catch_up.run()
        except asyncio.CancelledError:
            self.leave()
            raise
        except Exception as error:
            # Most often the page left while its snapshot was being sent. Channels will not call
            # disconnect() after a failed connect(), so undo every registration here.
            self.leave()
            log.info("a viewer of board %s went away while connecting: %s", self.board_id, error)
            raise StopConsumer() from None

    async def disconnect(self, code: int) -> None:
        """Leave the board's feed and the access watch."""
        self.leave()

    def leave(self) -> None:
        """Stop streaming to this viewer and undo every registration; safe to call more than once."""
        if self.catch_up is not None:
            self.catch_up.cancel()
        if self.registrations is not None:
            self.registrations.leave()
        self.group = None

    def failed(self, error: BaseException) -> None:
        """Stop handing this viewer anything: a send to its page failed (the page left)."""
        log.info("a viewer of board %s failed and is dropped: %s", self.board_id, error)
        self.leave()

    async def revoke(self, code: int) -> None:
        """Stop streaming to this viewer at once and close its socket with CODE (its access ended)."""
        self.leave()
        await self.close(code=code)

    async def _send_frame(self, text: str, *, snapshot: bool = False, part: bool = False) -> None:
        """Send one frame, unless the page has left too much unread: then close it instead.

        SNAPSHOT: the frame starts a snapshot; PART: it is a later part of one.
        """
        if self.group is None:
            return  # Revoked or closing: nothing more goes out.
        self.unread.record(len(text.encode("utf-8")), snapshot=snapshot, part=part)
        if self.unread.over(self.unread_cap):
            log.info(
                "board %s: closing a viewer with %d unread bytes (cap %d)",
                self.board_id,
                self.unread.unread,
                self.unread_cap,
            )
            self.leave()
            await self.close(code=Close.POLICY)
            return
        await self.send(text_data=text)

    async def send_snapshot(self, newer_than: tuple[str, int] | None = None) -> None:
        """Send the board's full picture from the store, as this viewer's filter shows it."""
        try:
            snapshot = await snapshot_reads.read(self.board_id, newer_than=newer_than)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The store is unreachable: close so the browser reconnects and asks again.
            log.exception("reading the snapshot of board %s failed", self.board_id)
            await self.close(code=Close.TRY_LATER)
            return
        async with self.sending_snapshot:
            parts, self.shown = snapshot_frames(snapshot, self.row_filter, self.kinds, part_bytes=self.part_bytes)
            self.order.start(*((snapshot.epoch, snapshot.seq) if snapshot else (None, 0)))
            _warn_if_over_the_buffer_cap(self.board_id, parts)
            # Board messages wait in the catch-up until the last part is out (the snapshot's seq is where they
            # continue from), so no delta lands between parts.
            for number, frame in enumerate(parts):
                if number:
                    # Let the event loop run between parts: the server writes what it has to the network
                    # meanwhile (keeping the write backlog of a reader that keeps up short), and one big board
                    # does not hold up every other viewer of the process for its whole snapshot.
                    await asyncio.sleep(0)
                await self._send_frame(frame, snapshot=not number, part=bool(number))

    # -- from the browser ------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Hand a client message to its handler (``page_<type>``); anything else is dropped and counted."""
        if self.group is None:
            return self.inbox.drop("refused", self.board_id)  # Arrived while a refused socket was closing.
        try:
            taken = self.inbox.take(text_data, self.board_id)
        except page_messages.Flooding:
            log.info("board %s: closing a viewer that floods messages", self.board_id)
            self.leave()
            await self.close(code=Close.POLICY)
            return None
        if taken is not None:
            handler, message = taken
            await getattr(self, handler)(message)
        return None

    async def page_ack(self, message: dict) -> None:
        """Take the page's word for how many frames it has read."""
        frames = message.get("frames")
        if not isinstance(frames, int) or isinstance(frames, bool) or not self.unread.ack(frames):
            self.inbox.drop("bad ack", self.board_id)

    async def page_resync(self, message: dict) -> None:
        """Send the whole picture again (the page was hidden, its timers throttled)."""
        self.catch_up.ask()

    async def page_filter(self, message: dict) -> None:
        """Show the rows the new filter lets through, from a fresh snapshot."""
        # htmx's ws-send adds a HEADERS key; only the filter values matter.
        try:
            self.row_filter = RowFilter.parse(
                message.get("queue"), message.get("status"), message.get("campaign"), message.get("disposition")
            )
        except ValueError:
            self.inbox.drop("bad filter", self.board_id)
            return
        self.catch_up.ask()

    # -- from the worker, through the board feed ---------------------------------

    async def take(self, message: dict) -> None:
        """Handle a board message from the feed, or keep it for after the snapshot being read."""
        if self.group is None or self.catch_up.hold(message):
            return
        try:
            await self.handle(message)
        except Exception as error:
            # The page left and the send failed: stop handing it messages rather than fail on every one.
            self.failed(error)

    def resync(self) -> None:
        """Start over from the store (the feed lost messages while the channel layer was away)."""
        self.catch_up.restart()

    async def handle(self, message: dict) -> None:
        """Handle a board message by the method named after its type, as Channels dispatches."""
        # The feed passes only the types dashboard.protocol names.
        await getattr(self, get_handler_name(message))(message)

    async def board_delta(self, message: dict) -> None:
        """Forward a delta that follows what the viewer has; resync on a gap or a new epoch."""
        step = self.order.delta(message.get("epoch"), message.get("seq"))
        if step is Next.SEND:
            await self._send_frame(delta_frame(message, self.row_filter, self.shown, self.kinds))
        elif step is Next.RESYNC:
            self._resync_for(message)

    async def board_tick(self, message: dict) -> None:
        """Refresh the viewer's data age; a tick ahead of us means a delta was lost, so resync."""
        step = self.order.tick(message.get("epoch"), message.get("seq"))
        if step is Next.SEND:
            await self._send_frame(tick_frame(message))
        elif step is Next.RESYNC:
            self._resync_for(message)

    def _resync_for(self, message: dict) -> None:
        epoch = message["epoch"]
        self.catch_up.soon(newer_than=(epoch, message["seq"]), retire=epoch)
