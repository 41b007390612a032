"""The connector: one vendor connection kept streaming, its parts composed, its hooks left to vendors.

A vendor connector only says what differs (URLs, auth, topics, parsing, the
REST snapshot) by filling in the hooks of ``Connector``; the parts beside
this module own the rest:

- ``reconnect``: ``async for link in reconnecting(...)`` opens a link,
  waits until every socket proved itself, and after the link ends
  classifies why (``failures``) and backs off;
- ``liveness``: how sockets prove themselves (heartbeats and an application
  ping, RFC 6455 pings, or nothing), each strategy owning its keepalive;
- ``resync``: a REST snapshot taken while socket events are held back, then
  the held events after it;
- ``rollover``: make-before-break replacement of a link (the server warned
  it will close, channels near expiry);
- ``sockets``: links, sockets, wires and the WebSocket dial; ``polling``: a
  poll schedule as a wire, for sources without a push stream.

While a link is up, the supervisor sleeps until woken (a hook asked for
something, a link failed) or until a rollover or a snapshot retry comes due,
then does what was asked in a fixed order. Every failure leaves through one
exit (``Link.fail``, which wakes the supervisor), and ``close()`` is
idempotent. A source with no REST snapshot returns None from ``snapshot()``;
its events then flow without a resync.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

import aiohttp

from streams import sanity
from streams.events import Event, SourceSnapshot
from streams.health import LinkHealth
from streams.link.failures import AuthFailed, LinkLost, describe
from streams.link.liveness import Heartbeats, Liveness
from streams.link.reader import read
from streams.link.reconnect import Retries, reconnecting
from streams.link.resync import Resyncs
from streams.link.rollover import Rollovers
from streams.link.sockets import Link, Socket, open_websocket
from streams.link.timing import Timing
from streams.oauth import Token, TokenCache
from streams.vendors.spec import ConnectionSpec

log = logging.getLogger(__name__)


class Connector(ABC):
    """Keep one vendor connection streaming into SINK; vendors subclass and fill in the hooks."""

    kind: ClassVar[str] = ""
    # How sockets prove they are alive (``streams.link.liveness``).
    liveness: ClassVar[Liveness] = Heartbeats()
    default_timing: ClassVar[Timing] = Timing()
    # QueueStats fields this vendor never reports: boards show "–" there rather than a zero that reads as fact.
    unreported_queue_fields: ClassVar[frozenset[str]] = frozenset()

    def __init__(
        self,
        spec: ConnectionSpec,
        sink: Callable[[Event], None],
        *,
        health: LinkHealth | None = None,
        timing: Timing | None = None,
        token_cache: TokenCache | None = None,
    ) -> None:
        self.spec = spec
        # Shared with the fleet's other workers (Redis) in production; None keeps tokens in this connector.
        self.token_cache = token_cache
        self._sink = sink
        self.health = health if health is not None else LinkHealth()
        t = timing or self.default_timing
        if spec.backoff_cap is not None and timing is None:
            # An admin's cap replaces the kind's default (tests pass their own timing and keep it).
            t = dataclasses.replace(t, backoff_cap=spec.backoff_cap)
        self._timing = t
        self.retries = Retries(self, timing=t, health=self.health, set_state=self.set_state)
        self.backoff = self.retries.backoff
        self.resyncs = Resyncs(
            self, timing=t, health=self.health, deliver=self._deliver, set_state=self.set_state, wake=self.wake
        )
        self.rollover_plan = Rollovers(t)
        self.link: Link | None = None
        self.session: aiohttp.ClientSession | None = None  # see open_session()
        # Links open beside the current one: being confirmed, or replaced and closing.
        self._other_links: set[Link] = set()
        self._pending_spec: ConnectionSpec | None = None
        self._wake = asyncio.Event()
        self._closed = asyncio.Event()
        self.sockets_opened = 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec.source})"

    @property
    def timing(self) -> Timing:
        """Every period and limit this connector's loop uses."""
        return self._timing

    @timing.setter
    def timing(self, timing: Timing) -> None:
        # A vendor may adjust a period after construction (the SSE feed's keepalive): every part sees it.
        self._timing = self.retries.timing = self.resyncs.timing = self.rollover_plan.timing = timing

    @property
    def snapshots(self) -> int:
        """Snapshots handed to the sink."""
        return self.resyncs.taken

    @property
    def rollovers(self) -> int:
        """Completed make-before-break switches."""
        return self.rollover_plan.done

    # -- the public face ----------------------------------------------------------------

    async def run(self) -> None:
        """Stream until cancelled or closed; upstream faults are handled here, never raised."""
        # Whatever the connector parses (frames, snapshots, polls, maintenance, a welcome's REST read) counts
        # its refused figures and times on this link's health; tasks started from here inherit the counter.
        with sanity.counting(self.health.count):
            try:
                await self.start()
                links = reconnecting(
                    self._open_afresh,
                    retries=self.retries,
                    closed=self._closed,
                    drop=self._drop_link,
                    pause=self._pause,
                )
                async for link in links:
                    await self._stream(link)
            finally:
                await self._shutdown()

    def update(self, spec: ConnectionSpec) -> None:
        """Take a new set of watched queues: resubscribe and resync on the live link."""
        self._pending_spec = spec
        self._wake.set()

    async def close(self) -> None:
        """Stop streaming and close every socket cleanly (idempotent)."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._wake.set()
        await self._shutdown()
        self.health.set_state("disabled", "stopped")

    # -- what the hooks call ------------------------------------------------------------

    def emit(self, event: Any) -> None:
        """Hand EVENT to the sink, or hold it while a snapshot is in flight (``prepare`` runs on delivery)."""
        self.resyncs.hold_or_deliver(event)

    def buffered(self) -> list[Any]:
        """Return the items held back while a snapshot is in flight (oldest first; empty otherwise)."""
        return self.resyncs.buffered()

    def _deliver(self, item: Any) -> None:
        try:
            self._sink(self.prepare(item))
        except Exception:
            # A sink bug must not take the stream down with it.
            self.health.count("sink_error")
            log.exception("%s: the sink refused an event", self)

    def alive(self, socket: Socket, *, pong: bool) -> None:
        """Note a heartbeat (or, with PONG, a ping reply) on SOCKET."""
        now = time.monotonic()
        socket.last_alive = now
        if pong:
            if socket.ping_sent_at is not None:
                self.health.record_ping(now - socket.ping_sent_at)
                socket.ping_sent_at = None
        else:
            socket.last_heartbeat = now
        socket.confirmed.set()
        if self.health.state == "degraded" and self.health.detail.startswith("no heartbeat"):
            self.set_state("live")

    def request_rollover(self, reason: str) -> None:
        """Ask for a make-before-break switch to a new link."""
        self.rollover_plan.ask(reason)
        self._wake.set()

    def request_resync(self, reason: str) -> None:
        """Ask for a new REST snapshot on the current link."""
        self.resyncs.ask(reason)
        self._wake.set()

    def fail(self, socket: Socket | None, reason: str) -> None:
        """Mark the link holding SOCKET (or the current link) as failed; the loop reconnects."""
        link = self._link_of(socket) if socket is not None else self.link
        if link is not None:
            link.fail(reason)

    def is_current(self, socket: Socket) -> bool:
        """Return whether SOCKET belongs to the current link (not one being opened or replaced)."""
        return self.link is not None and socket in self.link.sockets

    def wake(self) -> None:
        """Wake the supervisor so that it runs ``maintain`` (and whatever else was asked for)."""
        self._wake.set()

    def set_state(self, state: str, detail: str = "") -> None:
        """Show STATE on the link's health; once closed, it stays "disabled" whatever a finishing step says."""
        if not self._closed.is_set():
            self.health.set_state(state, detail)

    def open_session(self) -> aiohttp.ClientSession:
        """Open the connector's HTTP session (closed when the loop shuts down).

        Like the websockets client, it honours HTTPS_PROXY / NO_PROXY from the environment.
        """
        self.session = aiohttp.ClientSession(trust_env=True)
        return self.session

    def token_refreshed(self, token: Token) -> None:
        """Note a token this connector fetched in its health (pass it as a token provider's ``on_refresh``)."""
        lifetime = token.expires_at - token.refresh_at
        valid = round(token.expires_at - time.time())
        self.health.note("token_refreshed", f"valid {valid} s", valid_for=valid, refresh_margin=round(lifetime))

    async def connect_socket(
        self,
        uri: str,
        *,
        name: str,
        expires_at: float | None,
        data: Any = None,
        headers: dict[str, str] | None = None,
        max_size: int = 2**22,
    ) -> Socket:
        """Open one notification socket; its reader and keepalive start once it joins a link."""
        ws = await open_websocket(uri, headers=headers, open_timeout=self.timing.open_timeout, max_size=max_size)
        self.sockets_opened += 1
        return Socket(ws, name=name, expires_at=expires_at, data=data)

    def add_socket(self, socket: Socket) -> None:
        """Add SOCKET to the current link (more topics than one channel holds) and start watching it."""
        if self.link is None:
            raise LinkLost("no link to add a socket to")
        self.link.sockets.append(socket)
        self._watch_socket(self.link, socket)

    # -- hooks for vendors ---------------------------------------------------------------

    async def start(self) -> None:
        """Create per-run resources (HTTP session, token provider)."""
        return  # optional hook: nothing to do unless the vendor needs it

    async def stop(self) -> None:
        """Release what ``start`` created."""
        return  # optional hook: nothing to do unless the vendor needs it

    @abstractmethod
    async def open_link(self) -> Link:
        """Subscribe and open the sockets of a new link (not yet confirmed)."""

    async def retire_link(self, link: Link) -> None:
        """Tidy up vendor state of a link replaced by a rollover (its sockets are closed)."""
        return  # optional hook: nothing to do unless the vendor needs it

    @abstractmethod
    async def snapshot(self) -> SourceSnapshot | None:
        """Return the full picture of the watched queues and agents, over REST (None: the source has none)."""

    @abstractmethod
    def handle(self, socket: Socket, frame: Any) -> None:
        """Interpret one frame from SOCKET (emit events, note liveness, ask for rollovers)."""

    def prepare(self, item: Any) -> Event:
        """Return the event to deliver for ITEM, at delivery time rather than arrival (default: ITEM itself)."""
        return item

    async def apply_update(self, old: ConnectionSpec, new: ConnectionSpec) -> None:
        """Resubscribe the current link for NEW (``self.spec`` is already NEW)."""
        return  # optional hook: nothing to do unless the vendor needs it

    async def maintain(self) -> None:
        """Do the vendor work ``handle`` queued (e.g. subscribe a new member); called on every wake."""
        return  # optional hook: nothing to do unless the vendor needs it

    # -- one link's life -----------------------------------------------------------------

    async def _stream(self, link: Link) -> None:
        """Make LINK current, resync, and supervise it (and its rollovers) until the newest one fails."""
        self.link = link
        self.health.note("connected", f"{len(link.sockets)} socket(s) confirmed")
        try:
            if await self._resync("connected"):
                self.set_state("live")
            while not self._closed.is_set():
                await self._sleep_until_woken(self._next_deadline())
                if self._closed.is_set() or link.latest().failure() is not None:
                    return
                await self._supervise_step()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # Refused credentials, or a bug in a step: the newest link ends with it, and the loop says why.
            link.latest().end(exc)

    async def _supervise_step(self) -> None:
        """Do whatever the last wake-up asked for, in a fixed order."""
        if self._pending_spec is not None:
            old, self.spec, self._pending_spec = self.spec, self._pending_spec, None
            try:
                await self.apply_update(old, self.spec)
            except (AuthFailed, asyncio.CancelledError):
                raise
            except Exception as exc:
                # A fresh link subscribes the whole new set; the current one streams meanwhile.
                self._vendor_work_failed("resubscribing", exc)
            self.resyncs.reason = self.resyncs.reason or "watched queues changed"
        try:
            await self.maintain()
        except (AuthFailed, asyncio.CancelledError):
            raise
        except Exception as exc:
            self._vendor_work_failed("maintenance", exc)
        now = time.time()
        rollover = self.rollover_plan.due(self.link, now)
        if rollover is not None and await self._roll_over(rollover):
            # The rollover took its own snapshot.
            self.resyncs.reason = None
            return
        resync = self.resyncs.due(now)
        if resync is not None and await self._resync(resync):
            self.set_state("live")

    def _vendor_work_failed(self, what: str, exc: Exception) -> None:
        detail = f"{what} failed: {describe(exc)}"
        self.health.record_error(detail)
        log.warning("%s: %s; rolling over to a new link", self, detail)
        self.rollover_plan.ask_unless_asked(detail)

    def _next_deadline(self) -> float | None:
        """Return the epoch time at which the supervisor must look again without being woken."""
        deadlines = [d for d in (self.rollover_plan.deadline(self.link), self.resyncs.retry_at) if d is not None]
        return min(deadlines) if deadlines else None

    async def _sleep_until_woken(self, deadline: float | None) -> None:
        timeout = None if deadline is None else max(deadline - time.time(), 0.0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=timeout)
        self._wake.clear()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closed.wait(), timeout=seconds)

    async def _resync(self, reason: str) -> bool:
        """Take a snapshot in the current link's turn; return whether it succeeded."""
        if self.link is None:
            raise LinkLost("no link to resync")
        return await self.link.in_turn(lambda: self.resyncs.take(self.snapshot, reason))

    async def _roll_over(self, reason: str) -> bool:
        """Switch to a new link without a gap: open and confirm it, close the old one, then resync.

        Return whether the switch happened (a failed one keeps the current link).
        """
        log.info("%s: rolling over to a new link (%s)", self, reason)
        try:
            new = await self._open_confirmed()
        except (AuthFailed, asyncio.CancelledError):
            raise
        except Exception as exc:
            # The old link keeps streaming; if it closes meanwhile the normal reconnect takes over.
            self.health.record_error(f"rollover failed: {describe(exc)}")
            log.warning("%s: rollover failed (%s); keeping the current link", self, describe(exc))
            self.rollover_plan.failed(reason)
            return False
        old, self.link = self.link, new
        self.rollover_plan.succeeded()
        if old is not None:
            old.successor = new
            await self._close_link(old, retire=True)
        self.health.note("connected", f"rolled over ({reason})")
        if await self._resync(reason):
            self.set_state("live")
        return True

    # -- links and sockets ---------------------------------------------------------------

    async def _open_afresh(self) -> Link:
        """Open the first link of a new line (at the start, or after a failure): the newest spec, a clean slate."""
        if self._pending_spec is not None:
            self.spec, self._pending_spec = self._pending_spec, None
        self.resyncs.forget()
        self.rollover_plan.forget()
        return await self._open_confirmed()

    async def _open_confirmed(self) -> Link:
        """Open a link and wait until each socket heard a heartbeat or pong."""
        link = await self.open_link()
        link.on_failure = self._wake.set
        self._other_links.add(link)
        try:
            for socket in link.sockets:
                self._watch_socket(link, socket)
            await asyncio.wait_for(_confirmed(link), timeout=self.timing.open_timeout)
        except TimeoutError:
            await self._close_link(link)
            raise LinkLost("no heartbeat or pong after connecting") from None
        except BaseException:
            await self._close_link(link)
            raise
        failure = link.failure()
        if failure is not None:
            await self._close_link(link)
            raise failure
        self._other_links.discard(link)
        return link

    def _watch_socket(self, link: Link, socket: Socket) -> None:
        """Start SOCKET's reader and its keepalive (confirming it at once when opening is proof enough)."""
        if self.liveness.confirmed_by_opening:
            socket.confirmed.set()
        socket.tasks = [
            asyncio.create_task(read(self, link, socket), name=f"{self} read"),
            asyncio.create_task(self.liveness.keep(self, link, socket), name=f"{self} keepalive"),
        ]

    def _link_of(self, socket: Socket) -> Link | None:
        for link in (self.link, *self._other_links):
            if link is not None and socket in link.sockets:
                return link
        return None

    async def _close_link(self, link: Link, *, retire: bool = False) -> None:
        if link.closed:
            return
        link.closed = True
        self._other_links.discard(link)
        for socket in link.sockets:
            for task in socket.tasks:
                task.cancel()
            transport = getattr(socket.ws, "transport", None)
            if link.failed and transport is not None:
                # A silent peer would hold a polite close for the whole close timeout: cut it.
                transport.abort()
        await asyncio.gather(*(s.ws.close() for s in link.sockets), return_exceptions=True)
        await asyncio.gather(*(t for s in link.sockets for t in s.tasks), return_exceptions=True)
        if not retire or link.failed:
            # Only a link replaced on purpose is tidied up: after a failure the vendor is likely
            # unreachable, and a closing worker must not wait for it.
            return
        try:
            await asyncio.wait_for(self.retire_link(link), timeout=min(self.timing.rest_timeout, 5.0))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.info("%s: tidying up an old link failed (%s)", self, describe(exc))

    async def _drop_link(self) -> None:
        link, self.link = self.link, None
        if link is not None:
            await self._close_link(link)
        for old in list(self._other_links):
            await self._close_link(old)
        self.resyncs.drop()

    async def _shutdown(self) -> None:
        await self._drop_link()
        await self.stop()
        if self.session is not None:
            await self.session.close()


async def _confirmed(link: Link) -> None:
    """Return once every socket of LINK is confirmed, or the link failed."""
    failed = asyncio.ensure_future(link.failed_event.wait())
    try:
        for socket in link.sockets:
            confirmed = asyncio.ensure_future(socket.confirmed.wait())
            try:
                await asyncio.wait({confirmed, failed}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                confirmed.cancel()
            if link.failed:
                return
    finally:
        failed.cancel()
