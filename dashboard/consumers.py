"""The board socket: one viewer, one board, a snapshot and then the deltas that follow it.

After the permission check (the only database work) the consumer does string
work only: rows arrive rendered from the worker, and the consumer picks the
ones this viewer's filter lets through and wraps them in frames
(dashboard.frames).

Board messages do not come through the consumer's own channel: the process's
feed for the board (dashboard.fanout) hands them over, one call per viewer.
While a viewer reads a snapshot, messages wait in its queue, and those the
snapshot already covers are dropped when the queue is worked off; whether a
message follows what the page shows is decided in dashboard.frame_order, and
nowhere else. Board messages and the page's messages are each handled by the
method Channels would name after their type (``board.delta`` →
``board_delta``, the page's ``resync`` → ``page_resync``), from the types
dashboard.protocol names; the page's are taken apart in dashboard.page_messages.

What one viewer can make the process hold is bounded (dashboard.viewer_limits):
client messages pass a token bucket and cost no database work, snapshots the
page asks for pass a bucket of their own and coalesce into at most one in
flight and one pending, one user holds at most ``FLOORVIEW_SOCKETS_PER_USER``
sockets per process, and a page that leaves more than
``FLOORVIEW_SOCKET_UNREAD_CAP`` bytes unacknowledged is closed (a page that
stops reading; a client faking acknowledgements meets the web server's
write-buffer cap instead). A viewer's
registrations (board feed, access watch, shutdown list) are undone on every
way out, including a connect() that fails half way, after which Channels never
calls disconnect().
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY

from dashboard import page_messages, shutdown
from dashboard.access import AccessWatch, Grant, verdicts, watches
from dashboard.fanout import JOIN_TIMEOUT, BoardFeed, FeedUnavailable, board_feeds
from dashboard.filters import RowFilter
from dashboard.frame_order import FrameOrder, Next
from dashboard.frames import delta_frame, legacy_reload_frame, snapshot_frame, tick_frame
from dashboard.models import Board
from dashboard.protocol import VERSION_PARAM, Close
from dashboard.snapshot_reads import snapshot_reads
from dashboard.viewer_limits import TokenBucket, UnreadFrames, sockets_per_user

log = logging.getLogger(__name__)

PANEL_KINDS = {"queues": "queue", "agents": "agent", "interactions": "interaction"}


def _board_for(user: Any, slug: str, session: Any = None) -> tuple[Board | None, str | None]:
    """Return (the board SLUG if USER may open it else None, the session's copy of the user's auth hash)."""
    # A board the user may not see answers exactly like one that does not exist: no slug is confirmed.
    board = Board.visible_to(user).filter(slug=slug).first()
    auth_hash = session.get(HASH_SESSION_KEY) if session is not None else None
    return board, auth_hash


class BoardConsumer(AsyncWebsocketConsumer):
    """Stream one board to one viewer: a full snapshot, then every delta that follows it, filtered."""

    # Board messages come from the process's board feed (dashboard.fanout), never through a channel
    # of the consumer's own: an alias that names no layer keeps Channels from making one per viewer.
    channel_layer_alias = "board sockets use dashboard.fanout"

    board_id: int | None = None
    group: str | None = None
    feed: BoardFeed | None = None
    access: AccessWatch | None = None
    grant: Grant | None = None
    kinds: tuple[str, ...] = ()
    counted_user: int | None = None  # the user this socket counts against in sockets_per_user

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
        self.dropped = 0
        # Board messages that arrive while a snapshot is being read wait here, in order.
        self.waiting: list[dict] = []
        self.reading = 0
        self.tasks: set[asyncio.Task] = set()
        self.messages = TokenBucket(page_messages.MESSAGE_RATE, page_messages.MESSAGE_BURST)
        self.flood = TokenBucket(page_messages.MESSAGE_RATE, page_messages.FLOOD_BURST)
        self.snapshot_asks = TokenBucket(page_messages.SNAPSHOT_RATE, page_messages.SNAPSHOT_BURST)
        self.unread = UnreadFrames()
        self.unread_cap = settings.FLOORVIEW["SOCKET_UNREAD_CAP"]
        self.asked: asyncio.Task | None = None  # the snapshot the page asked for, in flight
        self.ask_again = False  # the page asked again meanwhile: one more snapshot after it
        # Accept first: a refusal before the handshake reaches the browser only as an anonymous 1006.
        await self.accept()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=Close.UNAUTHENTICATED)
            return
        open_sockets = sockets_per_user()
        if open_sockets[user.pk] >= settings.FLOORVIEW["SOCKETS_PER_USER"]:
            # Before any database work: one account cannot make a process hold sockets without end.
            log.info("closing a board socket: user %s already has %d open here", user.pk, open_sockets[user.pk])
            await self.close(code=Close.POLICY)
            return
        self.counted_user = user.pk
        open_sockets[user.pk] += 1
        slug = self.scope["url_route"]["kwargs"]["slug"]
        session = self.scope.get("session")
        board, auth_hash = await database_sync_to_async(_board_for)(user, slug, session)
        if board is None:
            self._leave()
            await self.close(code=Close.UNKNOWN_BOARD)
            return
        self.board_id = board.pk
        self.kinds = tuple(PANEL_KINDS[panel] for panel in board.shown_panels())
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        self.row_filter = RowFilter.from_query(query)
        self.grant = Grant(
            user_id=user.pk,
            board_id=board.pk,
            session_key=getattr(session, "session_key", None),
            auth_hash=auth_hash,
        )
        try:
            # Watched from before the feed join: access taken away while we connect still closes us.
            self.access = watches.watch(self)
            # Join before reading: a delta stored after the read is then already queued for us.
            self.reading += 1
            try:
                self.feed = await board_feeds.join(board.group_name, self)
            except FeedUnavailable:
                log.warning("board %s: the channel layer is unreachable; closing a new viewer", self.board_id)
                self._leave()
                await self.close(code=Close.TRY_LATER)
                return
            if self.access is None:
                self._leave()  # Revoked (and closed) while joining: leave the feed it just joined.
                return
            self.group = board.group_name
            shutdown.track(self)
            # A revocation announced between the board check and the watch being in its group reached
            # no one: once the watch listens, check this grant again (a few queries, this viewer only).
            # After the feed join, so that a layer that is down costs one timeout, not two.
            await self.access.listening(JOIN_TIMEOUT)
            code = (await database_sync_to_async(verdicts)([self.grant])).get(self.grant)
            if code is not None and self.group is not None:
                await self.revoke(code)
            if self.group is None:
                return  # Revoked while connecting: no snapshot.
            if VERSION_PARAM not in query:
                # A page whose script predates frames with a JSON head: have it reload to fetch the current one.
                await self._send_frame(legacy_reload_frame())
            await self._snapshot_then_catch_up()
        except asyncio.CancelledError:
            self._leave()
            raise
        except Exception as error:
            # Most often the page left while its snapshot was being sent. Channels will not call
            # disconnect() after a failed connect(), so undo every registration here.
            self._leave()
            log.info("a viewer of board %s went away while connecting: %s", self.board_id, error)
            raise StopConsumer() from None

    async def disconnect(self, code: int) -> None:
        """Leave the board's feed and the access watch."""
        self._leave()

    def _leave(self) -> None:
        """Undo every registration of this viewer; safe to call more than once."""
        shutdown.forget(self)
        if self.counted_user is not None:
            open_sockets = sockets_per_user()
            open_sockets[self.counted_user] -= 1
            if open_sockets[self.counted_user] <= 0:
                del open_sockets[self.counted_user]
            self.counted_user = None
        for task in list(getattr(self, "tasks", ())):
            if task is not asyncio.current_task():
                task.cancel()
        if self.feed is not None:
            self.feed.discard(self)
            self.feed = None
        if self.access is not None:
            self.access.discard(self)
            self.access = None
        self.group = None

    async def revoke(self, code: int) -> None:
        """Stop streaming to this viewer at once and close its socket with CODE (its access ended)."""
        self._leave()
        await self.close(code=code)

    async def _send_frame(self, text: str, *, snapshot: bool = False) -> None:
        """Send one frame, unless the page has left too much unread: then close it instead."""
        if self.group is None:
            return  # Revoked or closing: nothing more goes out.
        self.unread.record(len(text.encode("utf-8")), snapshot=snapshot)
        if self.unread.over(self.unread_cap):
            log.info(
                "board %s: closing a viewer with %d unread bytes (cap %d)",
                self.board_id,
                self.unread.unread,
                self.unread_cap,
            )
            self._leave()
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
        frame, self.shown = snapshot_frame(snapshot, self.row_filter, self.kinds)
        self.order.start(*((snapshot.epoch, snapshot.seq) if snapshot else (None, 0)))
        await self._send_frame(frame, snapshot=True)

    async def _snapshot_then_catch_up(
        self, newer_than: tuple[str, int] | None = None, retire: str | None = None
    ) -> None:
        """Send a snapshot (the caller counted it in READING), then the board messages that waited for it."""
        try:
            await self.send_snapshot(newer_than=newer_than)
            if retire is not None and self.order.epoch is not None and self.order.epoch != retire:
                # The store has moved past that epoch (an old worker still flushing): ignore it for a while,
                # otherwise each of its messages would cost this viewer another snapshot.
                self.order.retire(retire)
        finally:
            self.reading -= 1
        while self.waiting and not self.reading and self.group is not None:
            await self._handle(self.waiting.pop(0))

    def _read_snapshot_soon(self, newer_than: tuple[str, int] | None = None, retire: str | None = None) -> None:
        # Never read inline while the feed is handing out a message: the board's other viewers would wait.
        self.reading += 1
        self._spawn(self._snapshot_then_catch_up(newer_than, retire))

    def _spawn(self, work: Any) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # A send to a page that left: stop handing this viewer anything.
            log.info("a viewer of board %s failed and is dropped: %s", self.board_id, task.exception())
            self._leave()

    def _ask_for_snapshot(self) -> None:
        # At most one snapshot the page asked for is in flight and one more pending: a page (or a
        # script) asking in a loop costs one snapshot per round trip to the store, not one per message.
        if self.asked is not None and not self.asked.done():
            self.ask_again = True
            return
        self.asked = self._spawn(self._asked_snapshots())

    async def _asked_snapshots(self) -> None:
        while self.group is not None:
            if not self.snapshot_asks.take():
                # Asks past the snapshot rate wait their turn; those made meanwhile coalesce into this one.
                await asyncio.sleep(self.snapshot_asks.wait())
                self.snapshot_asks.take()
            self.ask_again = False
            self.reading += 1
            await self._snapshot_then_catch_up()
            if not self.ask_again:
                return

    # -- from the browser ------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Hand a client message to its handler (``page_<type>``); anything else is dropped and counted."""
        if self.group is None:
            return self._drop("refused")  # Arrived while a refused socket was closing.
        if not self.messages.take():
            self._drop("rate")
            if not self.flood.take():
                log.info("board %s: closing a viewer that floods messages", self.board_id)
                self._leave()
                await self.close(code=Close.POLICY)
            return None
        try:
            handler, message = page_messages.parse(text_data)
        except page_messages.Dropped as dropped:
            return self._drop(dropped.reason)
        await getattr(self, handler)(message)
        return None

    async def page_ack(self, message: dict) -> None:
        """Take the page's word for how many frames it has read."""
        frames = message.get("frames")
        if not isinstance(frames, int) or isinstance(frames, bool) or not self.unread.ack(frames):
            self._drop("bad ack")

    async def page_resync(self, message: dict) -> None:
        """Send the whole picture again (the page was hidden, its timers throttled)."""
        self._ask_for_snapshot()

    async def page_filter(self, message: dict) -> None:
        """Show the rows the new filter lets through, from a fresh snapshot."""
        # htmx's ws-send adds a HEADERS key; only the filter values matter.
        try:
            self.row_filter = RowFilter.parse(
                message.get("queue"), message.get("status"), message.get("campaign"), message.get("disposition")
            )
        except ValueError:
            self._drop("bad filter")
            return
        self._ask_for_snapshot()

    def _drop(self, reason: str) -> None:
        self.dropped += 1
        page_messages.count_drop(reason, self.board_id)

    # -- from the worker, through the board feed ---------------------------------

    async def take(self, message: dict) -> None:
        """Handle a board message from the feed, or keep it for after the snapshot being read."""
        if self.group is None:
            return
        if self.reading:
            self.waiting.append(message)
            return
        try:
            await self._handle(message)
        except Exception as error:
            # The page left and the send failed: stop handing it messages rather than fail on every one.
            log.info("a viewer of board %s failed and is dropped: %s", self.board_id, error)
            self._leave()

    def resync(self) -> None:
        """Start over from the store (the feed lost messages while the channel layer was away)."""
        self.waiting.clear()
        self._read_snapshot_soon()

    async def _handle(self, message: dict) -> None:
        # As Channels dispatches: the feed passes only the types dashboard.protocol names.
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
        self._read_snapshot_soon(newer_than=(epoch, message["seq"]), retire=epoch)
