"""The connector: one vendor connection kept streaming, its parts composed, its hooks left to vendors.

A vendor connector only says what differs (URLs, auth, topics, parsing, the
REST snapshot) by filling in the hooks of ``Connector``; the parts beside
this module own the rest:

- ``reconnect``: ``async for link in reconnecting(...)`` opens a link,
  waits until every socket proved itself, and after the link ends
  classifies why (``failures``) and backs off;
- ``supervisor``: what is done with each link: resync, then sleep until
  woken and do what was asked (new watched queues, maintenance, rollover,
  resync) until the link fails;
- ``links``: opening, confirming and closing links; ``reader``: a socket's
  frames to ``handle``; ``sockets``: links, sockets, wires and the
  WebSocket dial; ``polling``: a poll schedule as a wire, for sources
  without a push stream;
- ``liveness``: how sockets prove themselves (heartbeats and an application
  ping, RFC 6455 pings, or nothing), each strategy owning its keepalive;
- ``resync``: a REST snapshot taken while socket events are held back, then
  the held events after it;
- ``rollover``: make-before-break replacement of a link (the server warned
  it will close, channels near expiry).

Every failure leaves through one exit (``Link.fail``, which wakes the
supervisor), and ``close()`` is idempotent. A source with no REST snapshot
returns None from ``snapshot()``; its events then flow without a resync.
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
from streams.link.failures import LinkLost
from streams.link.links import Links
from streams.link.liveness import Heartbeats, Liveness
from streams.link.reconnect import Retries
from streams.link.resync import Resyncs
from streams.link.rollover import Rollovers
from streams.link.sockets import Link, Socket, open_websocket
from streams.link.supervisor import Supervisor
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
        self.links = Links(self)
        self.supervisor = Supervisor(
            self,
            self.links,
            retries=self.retries,
            resyncs=self.resyncs,
            rollovers=self.rollover_plan,
            pause=self._pause,
        )
        self._wake = self.supervisor.woken
        self._closed = self.supervisor.closed
        self.session: aiohttp.ClientSession | None = None  # see open_session()
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
    def link(self) -> Link | None:
        """The current link (None between links)."""
        return self.links.current

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
                await self.supervisor.run()
            finally:
                await self._shutdown()

    def update(self, spec: ConnectionSpec) -> None:
        """Take a new set of watched queues: resubscribe and resync on the live link."""
        self.supervisor.pending_spec = spec
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
        self.links.watch(self.link, socket)

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

    # -- the loop's own --------------------------------------------------------------------

    async def _pause(self, seconds: float) -> None:
        """Wait SECONDS, or until the connector closes."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closed.wait(), timeout=seconds)

    def _link_of(self, socket: Socket) -> Link | None:
        return self.links.of(socket)

    async def _shutdown(self) -> None:
        await self.supervisor.drop()
        await self.stop()
        if self.session is not None:
            await self.session.close()
