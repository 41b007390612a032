"""Close every board socket with "service restart" when the web process shuts down.

Without this, a deploy drops viewers' sockets without a close frame (1006):
browsers cannot tell a restart from a network fault. Told it is a restart,
they reconnect at once, spread over a window sized to the crowd (the close's
reason, see dashboard.reconnect_spread), landing on another web process
behind the proxy.

The standard code for this is 1012, but Daphne's WebSocket library refuses
to send any code but 1000 and 3000-4999 from an application. So the close
carries 4012, the private-range twin of 1012; the page treats both alike.

Daphne runs on Twisted's asyncio reactor, and on SIGTERM it cancels every
application at once: too late to say goodbye. So once the reactor runs, this
takes SIGTERM and SIGINT over: close every board socket, give the frames a
moment to leave, then stop the reactor as Twisted would have. Without
Twisted (tests driving consumers directly) nothing is installed.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import weakref
from typing import Any

from dashboard.protocol import Close, spread_reason
from dashboard.reconnect_spread import spread_for

log = logging.getLogger(__name__)

CLOSE_GRACE = 3.0  # seconds the shutdown waits for browsers to answer the close

_open: weakref.WeakSet[Any] = weakref.WeakSet()
_closing: weakref.WeakSet[Any] = weakref.WeakSet()
_all_closed: asyncio.Event | None = None
_installed = False


def track(consumer: Any) -> None:
    """Remember an accepted board socket."""
    _open.add(consumer)


def forget(consumer: Any) -> None:
    """Forget a board socket that closed."""
    _open.discard(consumer)
    _closing.discard(consumer)
    if not _closing and _all_closed is not None:
        _all_closed.set()


async def close_all(code: int = Close.RESTART) -> int:
    """Close every tracked board socket with CODE and wait until the browsers answered; return how many."""
    global _all_closed
    consumers = list(_open)
    _closing.update(consumers)
    _all_closed = asyncio.Event()
    if not _closing:
        _all_closed.set()
    # The whole crowd comes back at once otherwise: ask it to spread over a window its size needs.
    reason = spread_reason(spread_for(len(consumers)))
    results = await asyncio.gather(*(c.close(code=code, reason=reason) for c in consumers), return_exceptions=True)
    for result in results:
        if isinstance(result, Exception):
            log.warning("closing a board socket at shutdown failed: %s", result)
    # Stopping the reactor now would reset connections whose close frame a browser has not read yet
    # (a reset discards unread data, and the browser would see 1006): wait for each handshake to end.
    await _all_closed.wait()
    return len(consumers)


def install() -> None:
    """Close board sockets before a Daphne process stops (call once, from the ASGI module)."""
    global _installed
    if _installed or "twisted.internet.reactor" not in sys.modules:
        return
    from twisted.internet import reactor

    reactor.callWhenRunning(_take_signals, reactor)
    _installed = True


def _take_signals(reactor: Any) -> None:
    loop = asyncio.get_event_loop()
    stopping: list[asyncio.Task] = []

    def on_signal() -> None:
        if stopping:
            return  # A second signal while closing: the first one is already on it.
        stopping.append(loop.create_task(_close_then_stop(reactor)))

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal)


async def _close_then_stop(reactor: Any) -> None:
    try:
        closed = await asyncio.wait_for(close_all(), CLOSE_GRACE)
        log.info("closed %d board sockets for the restart", closed)
    except Exception:
        log.exception("closing board sockets at shutdown failed")
    finally:
        reactor.stop()
