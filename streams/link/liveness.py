"""How a connector proves its sockets alive: one strategy object per way, each owning its keepalive loop.

A connector declares ``liveness = <strategy>``:

- ``Heartbeats(ping_frame=...)``: the vendor sends heartbeats every
  ``heartbeat_period``; with a ping frame, the application pings every
  ``ping_interval`` too and the vendor's replies count as pongs (Genesys,
  and the SSE feed whose keepalive comments are its heartbeats);
- ``ProtocolPings()``: RFC 6455 pings every ``ping_interval``; pongs are the
  only sign of life (the generic push feed);
- ``SelfReported()``: nothing to prove; a wire is confirmed by opening and
  fails by raising (the CXone poller, the webhook queue).

A strategy holds no state of its own (what it learns lives on the socket),
so one object serves every connector of a kind.

A watchdog fails the link when neither heartbeat nor pong arrived for
``dead_after`` heartbeat periods, or a ping stays unanswered for
``ping_timeout``; it shows the current link degraded after one quiet
heartbeat period, and counts expected and missed heartbeats.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from websockets.exceptions import ConnectionClosed, WebSocketException

from streams.health import LinkHealth
from streams.link.sockets import Link, Socket
from streams.link.timing import Timing


class Watcher(Protocol):
    """What a liveness strategy needs of the supervisor whose link it watches."""

    timing: Timing
    health: LinkHealth

    def alive(self, socket: Socket, *, pong: bool) -> None:
        """Note a heartbeat (or, with PONG, a ping reply) on SOCKET."""
        ...

    def is_current(self, socket: Socket) -> bool:
        """Return whether SOCKET belongs to the current link."""
        ...

    def set_state(self, state: str, detail: str = "") -> None:
        """Show STATE (and DETAIL) on the link's health."""
        ...


class Liveness:
    """How sockets prove they are alive; this base proves nothing and confirms nothing by itself."""

    confirmed_by_opening = False  # a socket counts as confirmed as soon as it joins a link

    async def keep(self, watcher: Watcher, link: Link, socket: Socket) -> None:
        """Watch SOCKET of LINK until the link closes, failing it when it goes quiet."""
        return


class SelfReported(Liveness):
    """Nothing to ping: a wire is confirmed by opening and reports its own failure by raising."""

    confirmed_by_opening = True

    def __repr__(self) -> str:
        return "SelfReported()"


class Watchdog(Liveness):
    """The keepalive loop shared by heartbeats and protocol pings: ping, time replies, fail a quiet link."""

    counts_heartbeats = True  # whether missed heartbeats are counted (protocol pings are no heartbeats)

    def pings(self) -> bool:
        """Return whether this strategy sends pings at all."""
        return False

    async def ping(self, watcher: Watcher, socket: Socket) -> None:
        """Send one ping on SOCKET (its reply calls ``watcher.alive(socket, pong=True)``)."""
        return

    async def keep(self, watcher: Watcher, link: Link, socket: Socket) -> None:
        """Ping, record round trips, count heartbeats and fail the link when it goes quiet."""
        t = watcher.timing
        dead_after = t.dead_after * t.heartbeat_period
        pinging = self.pings() and t.ping_interval > 0
        next_ping = time.monotonic()
        next_check = socket.opened_at + t.heartbeat_period * 1.5
        try:
            while not link.closed:
                now = time.monotonic()
                if socket.ping_sent_at is not None and now - socket.ping_sent_at > t.ping_timeout:
                    link.fail(f"ping unanswered for {t.ping_timeout:g} s")
                    return
                if now - socket.last_alive > dead_after:
                    link.fail(f"no heartbeat or pong for {now - socket.last_alive:.1f} s")
                    return
                if now >= next_check:
                    # Protocol pings are no heartbeats: counting them as missed would read as a sick link.
                    if self.counts_heartbeats:
                        watcher.health.heartbeats_expected += 1
                        last = socket.last_heartbeat
                        if last is None or now - last > t.heartbeat_period * 1.5:
                            watcher.health.heartbeats_missed += 1
                    next_check += t.heartbeat_period
                current = watcher.is_current(socket)
                if current and now - socket.last_alive > t.heartbeat_period and watcher.health.state == "live":
                    watcher.set_state("degraded", f"no heartbeat for {now - socket.last_alive:.0f} s")
                if pinging and now >= next_ping and socket.ping_sent_at is None:
                    socket.ping_sent_at = now
                    next_ping = now + t.ping_interval
                    await self.ping(watcher, socket)
                wakes = [next_check, socket.last_alive + dead_after]
                if socket.ping_sent_at is not None:
                    wakes.append(socket.ping_sent_at + t.ping_timeout)
                if pinging:
                    # Looking again at the next ping time finds the pong (if any) already in.
                    wakes.append(next_ping)
                if current:
                    wakes.append(socket.last_alive + t.heartbeat_period)
                await asyncio.sleep(max(min(wakes) - time.monotonic(), 0.0) + 0.005)
        except (ConnectionClosed, OSError, WebSocketException):
            # The reader reports the close; nothing more to say here.
            return


class Heartbeats(Watchdog):
    """Vendor heartbeats prove the socket alive; PING_FRAME (if any) is the application's ping, sent as text."""

    def __init__(self, ping_frame: str = "") -> None:
        self.ping_frame = ping_frame

    def __repr__(self) -> str:
        return f"Heartbeats(ping_frame={self.ping_frame!r})"

    def pings(self) -> bool:
        """Return whether there is a ping frame to send."""
        return bool(self.ping_frame)

    async def ping(self, watcher: Watcher, socket: Socket) -> None:
        """Send the ping frame; the vendor's reply, read by the connector's ``handle``, is the pong."""
        await socket.ws.send(self.ping_frame)


class ProtocolPings(Watchdog):
    """RFC 6455 pings every ``ping_interval``; their pongs are the only sign of life."""

    counts_heartbeats = False

    def __repr__(self) -> str:
        return "ProtocolPings()"

    def pings(self) -> bool:
        """Return True: pinging is the whole strategy."""
        return True

    async def ping(self, watcher: Watcher, socket: Socket) -> None:
        """Send a protocol ping; its pong marks the socket alive."""
        pong = await socket.ws.ping()
        pong.add_done_callback(lambda f: _ponged(watcher, f, socket))


def _ponged(watcher: Watcher, waiter: asyncio.Future, socket: Socket) -> None:
    # A closing connection fails its pending pings (an exception, not a cancel): that is no pong.
    if not waiter.cancelled() and waiter.exception() is None:
        watcher.alive(socket, pong=True)
