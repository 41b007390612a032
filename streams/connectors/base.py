"""The loop every connector shares: connect, confirm, resync, watch, roll over, back off.

A vendor connector only says what differs (URLs, auth, topics, parsing, the
REST snapshot) by filling in the hooks at the bottom of ``Connector``. The
base owns the rest:

- ``run()`` opens a *link* (one or more notification sockets), waits until
  every socket has proved itself (a heartbeat or pong), takes a REST snapshot
  while buffering socket events, hands the snapshot and then the buffer to
  the sink, and watches the link until it fails;
- one keepalive task per socket pings, records round trips and fails the link
  when neither heartbeat nor pong arrived for ``dead_after`` heartbeat
  periods, or a ping stays unanswered for ``ping_timeout``;
- a *rollover* (the server warned it will close, or the channels near expiry)
  is make-before-break: the new link is opened and confirmed before the old
  one is closed, then a snapshot fills any gap;
- any other failure closes the link and reconnects after a jittered
  exponential backoff that starts over only once a link stayed healthy for
  ``healthy_after`` seconds; an auth failure waits minutes (no tight loop).

Every failure leaves through one exit (the link is marked failed and the
supervisor wakes), and ``close()`` is idempotent.

A socket need not be a WebSocket. Anything shaped like a ``Wire`` (an async
iterator of frames with ``close()``, ``close_code`` and ``close_reason``)
rides the same loop: an SSE response, a REST poller, a queue of webhook
bodies. ``liveness`` says how a connector proves its sockets alive: vendor
heartbeats and application pings (``"heartbeat"``), RFC 6455 protocol pings
(``"protocol_ping"``), or not at all (``"none"``: the wire itself raises
``LinkLost`` when it fails). A source with no REST snapshot returns None from
``snapshot()``; its events then flow without a resync.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import aiohttp
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.frames import CloseCode

from streams import sanity
from streams.backoff import Backoff
from streams.events import Event, SourceSnapshot
from streams.health import LinkHealth
from streams.log_safe import safe_text
from streams.oauth import AuthFailed, Token, TokenCache
from streams.origins import origin
from streams.vendors.spec import ConnectionSpec

log = logging.getLogger(__name__)

MAX_BUFFERED = 50_000  # socket events held while a snapshot is in flight
# Frames a socket holds received but not yet read; past it, websockets stops reading until the reader catches
# up. Its default, 16 frames of up to max_size (4 MiB) each, is 64 MiB a socket. Our reader takes each frame
# as it comes, so the queue only fills while a handler is slow: 4 frames (16 MiB at worst) are plenty, and
# keepalive is unaffected (pongs are read in order with the frames, whatever the queue's length).
MAX_QUEUE = 4


@dataclass(frozen=True)
class Timing:
    """Every period and limit the loop uses (seconds); tests shrink them."""

    heartbeat_period: float = 30.0  # how often the vendor promises a heartbeat
    dead_after: float = 2.0  # heartbeat periods without heartbeat or pong before the link counts as dead
    ping_interval: float = 10.0
    ping_timeout: float = 5.0
    open_timeout: float = 15.0  # connect every socket and hear from each
    rest_timeout: float = 30.0
    rollover_margin: float = 600.0  # replace channels this long before they expire
    backoff_first: float = 1.0
    backoff_min: float = 2.0
    backoff_factor: float = 1.6
    backoff_cap: float = 60.0
    healthy_after: float = 60.0  # a link must stay up this long before the backoff starts over
    auth_retry: float = 300.0  # wait after an auth failure: an admin has to act
    max_retry_after: float = 180.0
    default_retry_after: float = 3.0


class LinkLost(Exception):
    """The link failed (closed, silent, unanswered); the loop reconnects."""


class _SameOriginRedirects(connect):
    """``websockets.connect`` that follows a redirect only to the same origin.

    The upgrade request may carry a bearer token: a redirect elsewhere would hand it to another host.
    """

    def process_redirect(self, exc: Exception) -> Exception | str:
        target = super().process_redirect(exc)
        if isinstance(target, str) and origin(self.uri) != origin(target):
            return LinkLost("the server redirected the socket to another origin; not followed")
        return target


class Wire(Protocol):
    """What the loop needs of a socket that is not a WebSocket (an SSE response, a poller, a queue).

    Iterating yields frames until the peer ends the stream; a failure is raised as
    ``LinkLost`` (with a reason fit for the admin) or ``OSError``.
    """

    close_code: int | None
    close_reason: str | None

    def __aiter__(self) -> Any: ...

    async def close(self) -> None: ...


class Socket:
    """One notification socket and what the watchdog knows about it."""

    def __init__(self, ws: ClientConnection | Wire, *, name: str, expires_at: float | None, data: Any = None) -> None:
        self.ws = ws
        self.name = name
        self.expires_at = expires_at  # epoch seconds, or None
        self.data = data  # the vendor's own bookkeeping (e.g. its channel and topics)
        self.opened_at = time.monotonic()
        self.opened_wall = time.time()
        self.last_alive = self.opened_at  # last heartbeat or pong
        self.last_heartbeat: float | None = None
        self.ping_sent_at: float | None = None
        self.confirmed = asyncio.Event()
        self.tasks: list[asyncio.Task] = []


@dataclass(eq=False)
class Link:
    """One generation of sockets; a rollover replaces a whole link."""

    sockets: list[Socket] = field(default_factory=list)
    failed: str | None = None
    auth_failed: bool = False  # a wire raised AuthFailed: an admin must act, no quick retry
    closed: bool = False
    failed_event: asyncio.Event = field(default_factory=asyncio.Event, repr=False)


class Connector(ABC):
    """Keep one vendor connection streaming into SINK; vendors subclass and fill in the hooks."""

    kind: ClassVar[str] = ""
    ping_frame: ClassVar[str] = ""
    # How sockets prove they are alive: "heartbeat" (vendor heartbeats, ``ping_frame`` pings),
    # "protocol_ping" (RFC 6455 pings every ``ping_interval``) or "none" (the wire reports its own failure).
    liveness: ClassVar[str] = "heartbeat"
    default_timing: ClassVar[Timing] = Timing()

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
        self.timing = timing or self.default_timing
        if spec.backoff_cap is not None and timing is None:
            # An admin's cap replaces the kind's default (tests pass their own timing and keep it).
            self.timing = dataclasses.replace(self.timing, backoff_cap=spec.backoff_cap)
        t = self.timing
        self.backoff = Backoff(
            first=t.backoff_first,
            minimum=t.backoff_min,
            factor=t.backoff_factor,
            cap=t.backoff_cap,
            healthy_after=t.healthy_after,
        )
        self.link: Link | None = None
        self.session: aiohttp.ClientSession | None = None  # see open_session()
        # Links open beside the current one: being confirmed, or replaced and closing.
        self._other_links: set[Link] = set()
        self._pending_spec: ConnectionSpec | None = None
        self._wake = asyncio.Event()
        self._closed = asyncio.Event()
        self._rollover_reason: str | None = None
        self._rollover_retry_at: float | None = None
        self._rollover_retry_reason: str | None = None
        self._resync_reason: str | None = None
        self._resync_retry_at: float | None = None
        self._resync_backoff = Backoff(first=t.backoff_first, minimum=t.backoff_min, cap=t.backoff_cap)
        # A failed rollover keeps the current link: its retries must not count as that link going down.
        self._rollover_backoff = Backoff(first=t.backoff_first, minimum=t.backoff_min, cap=t.backoff_cap)
        self._buffer: list[Event] | None = None
        self._buffer_overflowed = False
        self.snapshots = 0  # snapshots handed to the sink
        self.rollovers = 0  # completed make-before-break switches
        self.sockets_opened = 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec.source})"

    # -- the public face ----------------------------------------------------------------

    async def run(self) -> None:
        """Stream until cancelled or closed; upstream faults are handled here, never raised."""
        # Whatever the connector parses (frames, snapshots, polls, maintenance, a welcome's REST read) counts
        # its refused figures and times on this link's health; tasks started from here inherit the counter.
        with sanity.counting(self.health.count):
            await self._run()

    async def _run(self) -> None:
        first = True
        try:
            await self.start()
            while not self._closed.is_set():
                if self.health.state != "auth_failed":
                    # A retry after an auth failure keeps saying so until it succeeds: the admin must act.
                    self._set_state("connecting" if first else "reconnecting", "opening the notification link")
                wait: float | None = None
                try:
                    await self._connected_period()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if self._closed.is_set():
                        break
                    wait = self._after_failure(exc)
                finally:
                    await self._drop_link()
                if self._closed.is_set():
                    break
                first = False
                self.health.reconnects += 1
                if wait is None:
                    wait = self.backoff.next_delay()
                await self._pause(wait)
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
        if self._buffer is not None:
            if len(self._buffer) >= MAX_BUFFERED:
                self._buffer_overflowed = True
                self.health.count("buffer_overflow")
                return
            self._buffer.append(event)
            return
        self._deliver(event)

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
            self._set_state("live")

    def request_rollover(self, reason: str) -> None:
        """Ask for a make-before-break switch to a new link."""
        self._rollover_reason = reason
        self._wake.set()

    def request_resync(self, reason: str) -> None:
        """Ask for a new REST snapshot on the current link."""
        self._resync_reason = reason
        self._wake.set()

    def fail(self, socket: Socket | None, reason: str) -> None:
        """Mark the link holding SOCKET (or the current link) as failed; the loop reconnects."""
        link = self._link_of(socket) if socket is not None else self.link
        if link is not None:
            self._fail_link(link, reason)

    def is_current(self, socket: Socket) -> bool:
        """Return whether SOCKET belongs to the current link (not one being opened or replaced)."""
        return self.link is not None and socket in self.link.sockets

    def wake(self) -> None:
        """Wake the supervisor so that it runs ``maintain`` (and whatever else was asked for)."""
        self._wake.set()

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
        ws = await _SameOriginRedirects(
            uri,
            additional_headers=headers,
            open_timeout=self.timing.open_timeout,
            close_timeout=min(self.timing.open_timeout, 2.0),
            # Our keepalive task is the one keepalive (application or protocol pings); none beside it.
            ping_interval=None,
            max_size=max_size,
            max_queue=MAX_QUEUE,
        )
        self.sockets_opened += 1
        return Socket(ws, name=name, expires_at=expires_at, data=data)

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
    def handle(self, socket: Socket, frame: str | bytes) -> None:
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

    # -- the loop ------------------------------------------------------------------------

    async def _connected_period(self) -> None:
        if self._pending_spec is not None:
            self.spec, self._pending_spec = self._pending_spec, None
        self._rollover_reason = self._resync_reason = None
        self._rollover_retry_at = self._resync_retry_at = None
        self._rollover_retry_reason = None
        link = await self._open_confirmed()
        self.link = link
        self.backoff.link_up()
        self.health.note("connected", f"{len(link.sockets)} socket(s) confirmed")
        if await self._resync("connected"):
            self._set_state("live")
        while not self._closed.is_set():
            await self._sleep_until_woken(self._next_deadline())
            if self._closed.is_set():
                return
            if link.failed:
                raise _link_failure(link)
            await self._supervise_step()
            link = self.link

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
            self._resync_reason = self._resync_reason or "watched queues changed"
        try:
            await self.maintain()
        except (AuthFailed, asyncio.CancelledError):
            raise
        except Exception as exc:
            self._vendor_work_failed("maintenance", exc)
        now = time.time()
        if self._rollover_reason is None and self._rollover_due(now):
            self._rollover_reason = self._rollover_retry_reason or "channel expires soon"
        if self._rollover_reason is not None:
            reason, self._rollover_reason = self._rollover_reason, None
            if await self._rollover(reason):
                # The rollover took its own snapshot.
                self._resync_reason = None
                return
        if self._resync_reason is not None or (self._resync_retry_at is not None and now >= self._resync_retry_at):
            reason, self._resync_reason = self._resync_reason or "retrying the snapshot", None
            self._resync_retry_at = None
            if await self._resync(reason):
                self._set_state("live")

    def _set_state(self, state: str, detail: str = "") -> None:
        # Once closed, the state stays "disabled" whatever a finishing step would say.
        if not self._closed.is_set():
            self.health.set_state(state, detail)

    def _vendor_work_failed(self, what: str, exc: Exception) -> None:
        detail = f"{what} failed: {_describe(exc)}"
        self.health.record_error(detail)
        log.warning("%s: %s; rolling over to a new link", self, detail)
        self._rollover_reason = self._rollover_reason or detail

    def _rollover_due(self, now: float) -> bool:
        if self._rollover_retry_at is not None:
            return now >= self._rollover_retry_at
        due = self._expiry_rollover_at()
        return due is not None and now >= due

    def _expiry_rollover_at(self) -> float | None:
        """Return when the current link must be replaced because a channel expires, if ever."""
        if self.link is None:
            return None
        dues = [
            # Never earlier than half a channel's life: a short-lived channel must not roll over in a loop.
            s.expires_at - min(self.timing.rollover_margin, (s.expires_at - s.opened_wall) / 2)
            for s in self.link.sockets
            if s.expires_at is not None
        ]
        return min(dues) if dues else None

    def _next_deadline(self) -> float | None:
        """Return the epoch time at which the supervisor must look again without being woken."""
        deadlines = []
        expiry_due = self._expiry_rollover_at()
        if self._rollover_retry_at is not None:
            deadlines.append(self._rollover_retry_at)
        elif expiry_due is not None:
            deadlines.append(expiry_due)
        if self._resync_retry_at is not None:
            deadlines.append(self._resync_retry_at)
        return min(deadlines) if deadlines else None

    async def _sleep_until_woken(self, deadline: float | None) -> None:
        timeout = None if deadline is None else max(deadline - time.time(), 0.0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=timeout)
        self._wake.clear()

    async def _open_confirmed(self) -> Link:
        """Open a link and wait until each socket heard a heartbeat or pong."""
        link = await self.open_link()
        self._other_links.add(link)
        try:
            for socket in link.sockets:
                self._start_socket_tasks(link, socket)
            await asyncio.wait_for(self._confirmed(link), timeout=self.timing.open_timeout)
        except TimeoutError:
            await self._close_link(link)
            raise LinkLost("no heartbeat or pong after connecting") from None
        except BaseException:
            await self._close_link(link)
            raise
        if link.failed:
            failure = _link_failure(link)
            await self._close_link(link)
            raise failure
        self._other_links.discard(link)
        return link

    async def _confirmed(self, link: Link) -> None:
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

    async def _rollover(self, reason: str) -> bool:
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
            self.health.record_error(f"rollover failed: {_describe(exc)}")
            log.warning("%s: rollover failed (%s); keeping the current link", self, _describe(exc))
            self._rollover_retry_at = time.time() + self._rollover_backoff.next_delay()
            self._rollover_retry_reason = reason
            return False
        old, self.link = self.link, new
        self._rollover_retry_at = None
        self._rollover_retry_reason = None
        self._rollover_backoff.reset()
        if old is not None:
            await self._close_link(old, retire=True)
        self.rollovers += 1
        self.health.note("connected", f"rolled over ({reason})")
        if await self._resync(reason):
            self._set_state("live")
        return True

    async def _resync(self, reason: str) -> bool:
        """Take a snapshot while holding socket events back; return whether it succeeded."""
        self._buffer = []
        self._buffer_overflowed = False
        try:
            with sanity.counting(self.health.count):
                snapshot = await self.snapshot()
        except (AuthFailed, asyncio.CancelledError):
            self._flush_buffer()
            raise
        except Exception as exc:
            self._flush_buffer()
            delay = self._honour_retry_after(exc, self._resync_backoff.next_delay())
            self._resync_retry_at = time.time() + delay
            detail = f"snapshot failed ({_describe(exc)}); retrying in {delay:.0f} s"
            self.health.record_error(detail)
            self.health.note("error", detail, retry_in=round(delay, 3))
            self._set_state("degraded", detail)
            log.warning("%s: %s", self, detail)
            return False
        self._resync_backoff.reset()
        if snapshot is not None:
            self._deliver(snapshot)
            self.snapshots += 1
        self._flush_buffer()
        if self._buffer_overflowed:
            self._resync_reason = "events overflowed during the snapshot"
            self._wake.set()
        if snapshot is None:
            log.info("%s: streaming (%s; the source has no snapshot to take)", self, reason)
        else:
            log.info("%s: resynced (%s)", self, reason)
        return True

    def buffered(self) -> list[Any]:
        """Return the items held back while a snapshot is in flight (oldest first; empty otherwise)."""
        return list(self._buffer or ())

    def _flush_buffer(self) -> None:
        buffered, self._buffer = self._buffer or [], None
        for event in buffered:
            self._deliver(event)

    def _deliver(self, item: Any) -> None:
        try:
            self._sink(self.prepare(item))
        except Exception:
            # A sink bug must not take the stream down with it.
            self.health.count("sink_error")
            log.exception("%s: the sink refused an event", self)

    def _after_failure(self, exc: BaseException) -> float | None:
        """Classify a failure, record it, and return a wait that overrides the backoff (or None)."""
        detail = _describe(exc)
        self.health.record_error(detail)
        self.health.note("closed", detail)
        self.backoff.link_down()
        if isinstance(exc, AuthFailed) or getattr(exc, "status", None) in (401, 403):
            wait = self.timing.auth_retry
            self.health.note("auth_failed", detail, retry_in=wait)
            self._set_state("auth_failed", f"{detail}; retrying in {wait:.0f} s")
            log.warning("%s: auth failed (%s); retrying in %.0f s", self, detail, wait)
            return wait
        wait = self._honour_retry_after(exc, self.backoff.next_delay())
        self.health.note("backoff_scheduled", f"retrying in {wait:.1f} s", delay=round(wait, 3))
        self._set_state("reconnecting", f"{detail}; retrying in {wait:.1f} s")
        log.warning("%s: link lost (%s); retrying in %.1f s", self, detail, wait)
        return wait

    def _honour_retry_after(self, exc: BaseException, wait: float) -> float:
        """Return WAIT stretched to the Retry-After EXC carries (a token or REST 429/5xx), capped.

        Any vendor's error may carry ``retry_after`` (seconds): the base knows no vendor's classes.
        """
        retry_after = getattr(exc, "retry_after", None)
        if isinstance(retry_after, int | float) and not isinstance(retry_after, bool) and retry_after > 0:
            return max(wait, min(retry_after, self.timing.max_retry_after))
        return wait

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closed.wait(), timeout=seconds)

    # -- sockets -------------------------------------------------------------------------

    def _link_of(self, socket: Socket) -> Link | None:
        for link in (self.link, *self._other_links):
            if link is not None and socket in link.sockets:
                return link
        return None

    def _start_socket_tasks(self, link: Link, socket: Socket) -> None:
        if self.liveness == "none":
            # Nothing to wait for: such a wire is confirmed by opening and fails by raising.
            socket.confirmed.set()
        socket.tasks = [
            asyncio.create_task(self._read(link, socket), name=f"{self} read"),
            asyncio.create_task(self._keepalive(link, socket), name=f"{self} keepalive"),
        ]

    def add_socket(self, socket: Socket) -> None:
        """Add SOCKET to the current link (more topics than one channel holds) and start watching it."""
        if self.link is None:
            raise LinkLost("no link to add a socket to")
        self.link.sockets.append(socket)
        self._start_socket_tasks(self.link, socket)

    async def _read(self, link: Link, socket: Socket) -> None:
        try:
            async for frame in socket.ws:
                self.health.record_message()
                try:
                    # Figures and times the parsers refuse are counted on this link's health.
                    with sanity.counting(self.health.count):
                        self.handle(socket, frame)
                except Exception:
                    # One odd frame must never end the stream.
                    self.health.count("handler_error")
                    log.exception("%s: handling a frame failed", self)
            close_reason = safe_text(socket.ws.close_reason or "", 123)
            reason = f"socket closed ({socket.ws.close_code} {close_reason})".strip()
        except ConnectionClosed as exc:
            if exc.sent is not None and exc.sent.code == CloseCode.MESSAGE_TOO_BIG:
                # Past max_size: websockets closed with 1009; the reconnect's snapshot fills the gap.
                self.health.count("oversized_frame")
            reason = f"socket closed abnormally ({exc.rcvd.code if exc.rcvd else 1006})"
        except LinkLost as exc:
            reason = str(exc) or "the stream failed"
        except AuthFailed as exc:
            # A wire that signs in as it goes (a poller, a stream that fetched a new token) may be refused.
            link.auth_failed = True
            reason = str(exc) or "the credentials were refused"
        except (OSError, WebSocketException) as exc:
            reason = f"socket failed ({type(exc).__name__})"
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # A wire's own bug must fail the link, not end the reader silently: a link whose liveness
            # is "none" would otherwise look connected for ever.
            log.exception("%s: reading %s failed", self, socket.name)
            reason = f"the stream failed ({type(exc).__name__})"
        if not link.closed:
            self._fail_link(link, reason)

    async def _keepalive(self, link: Link, socket: Socket) -> None:
        """Ping, record round trips, count heartbeats and fail the link when it goes quiet."""
        if self.liveness == "none":
            return
        protocol_pings = self.liveness == "protocol_ping"
        t = self.timing
        dead_after = t.dead_after * t.heartbeat_period
        next_ping = time.monotonic()
        next_check = socket.opened_at + t.heartbeat_period * 1.5
        try:
            while not link.closed:
                now = time.monotonic()
                if socket.ping_sent_at is not None and now - socket.ping_sent_at > t.ping_timeout:
                    self._fail_link(link, f"ping unanswered for {t.ping_timeout:g} s")
                    return
                if now - socket.last_alive > dead_after:
                    self._fail_link(link, f"no heartbeat or pong for {now - socket.last_alive:.1f} s")
                    return
                if now >= next_check:
                    # Protocol pings are no heartbeats: counting them as missed would read as a sick link.
                    if not protocol_pings:
                        self.health.heartbeats_expected += 1
                        last = socket.last_heartbeat
                        if last is None or now - last > t.heartbeat_period * 1.5:
                            self.health.heartbeats_missed += 1
                    next_check += t.heartbeat_period
                if link is self.link and now - socket.last_alive > t.heartbeat_period and self.health.state == "live":
                    self._set_state("degraded", f"no heartbeat for {now - socket.last_alive:.0f} s")
                pinging = bool(self.ping_frame) or protocol_pings
                if pinging and t.ping_interval > 0 and now >= next_ping and socket.ping_sent_at is None:
                    socket.ping_sent_at = now
                    next_ping = now + t.ping_interval
                    if protocol_pings:
                        pong = await socket.ws.ping()
                        pong.add_done_callback(lambda f, s=socket: self._ponged(f, s))
                    else:
                        await socket.ws.send(self.ping_frame)
                wakes = [next_check, socket.last_alive + dead_after]
                if socket.ping_sent_at is not None:
                    wakes.append(socket.ping_sent_at + t.ping_timeout)
                if pinging and t.ping_interval > 0:
                    # Looking again at the next ping time finds the pong (if any) already in.
                    wakes.append(next_ping)
                if link is self.link:
                    wakes.append(socket.last_alive + t.heartbeat_period)
                await asyncio.sleep(max(min(wakes) - time.monotonic(), 0.0) + 0.005)
        except (ConnectionClosed, OSError, WebSocketException):
            # The reader reports the close; nothing more to say here.
            return

    def _ponged(self, waiter: asyncio.Future, socket: Socket) -> None:
        # A closing connection fails its pending pings (an exception, not a cancel): that is no pong.
        if not waiter.cancelled() and waiter.exception() is None:
            self.alive(socket, pong=True)

    def _fail_link(self, link: Link, reason: str) -> None:
        if link.failed is None and not link.closed:
            link.failed = reason
            link.failed_event.set()
            self._wake.set()

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
            log.info("%s: tidying up an old link failed (%s)", self, _describe(exc))

    async def _drop_link(self) -> None:
        link, self.link = self.link, None
        if link is not None:
            await self._close_link(link)
        for old in list(self._other_links):
            await self._close_link(old)
        self._buffer = None

    async def _shutdown(self) -> None:
        await self._drop_link()
        await self.stop()
        if self.session is not None:
            await self.session.close()


def _link_failure(link: Link) -> Exception:
    """Return the exception that says why LINK failed: an auth refusal waits for an admin, anything else retries."""
    return AuthFailed(link.failed) if link.auth_failed else LinkLost(link.failed)


def _describe(exc: BaseException) -> str:
    """Return a short description of EXC for logs and the admin (never a secret)."""
    # Exception texts quote upstream replies (error codes, close reasons): escaped, they stay one log line.
    text = safe_text(exc)
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__
