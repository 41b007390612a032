"""The queue Daphne hands each connection's messages to its application through, made small.

Daphne makes one ``asyncio.Queue`` per connection for the messages the
protocol passes to the ASGI application (``websocket.connect``, each client
frame, the disconnect). Since Python 3.13 a Queue holds three deques and an
Event (a fourth deque) from the start: about 3 KB per connection, most of a
board viewer's own share, held for as long as the socket is open and almost
always empty. ``AppInbox`` is the part Daphne and the application use
(``put_nowait`` from the protocol, ``get`` as the application's ``receive``)
with the same order and wake-up rules, and holds a deque only while messages
wait and a waiter only while the application waits.
"""

from __future__ import annotations

import asyncio
import functools
from collections import deque
from typing import Any

from daphne.server import Server


class AppInbox:
    """An unbounded FIFO of one connection's messages to its application, allocated only while in use."""

    __slots__ = ("_getters", "_items")

    def __init__(self) -> None:
        self._items: deque[Any] | None = None
        # A list, not a deque: the application waits in get() nearly all the time, almost always alone, and a
        # deque's first block is 600 bytes.
        self._getters: list[asyncio.Future] | None = None

    def qsize(self) -> int:
        """Return the number of messages waiting."""
        return len(self._items) if self._items else 0

    def empty(self) -> bool:
        """Return whether no message waits."""
        return not self._items

    def put_nowait(self, item: Any) -> None:
        """Add ITEM and wake the first waiting ``get``, as ``asyncio.Queue.put_nowait`` does."""
        if self._items is None:
            self._items = deque()
        self._items.append(item)
        self._wake_next()

    async def get(self) -> Any:
        """Remove and return the oldest message, waiting for one if none is there."""
        while not self._items:
            getter = asyncio.get_running_loop().create_future()
            if self._getters is None:
                self._getters = []
            self._getters.append(getter)
            try:
                await getter
            except BaseException:
                # As asyncio.Queue.get: a cancelled getter that was woken passes the wake-up on.
                getter.cancel()
                if self._getters is not None and getter in self._getters:
                    self._getters.remove(getter)
                if self._items and not getter.cancelled():
                    self._wake_next()
                raise
        item = self._items.popleft()
        if self._items:
            self._wake_next()
        else:
            self._items = None  # an idle connection holds no deque
        return item

    def _wake_next(self) -> None:
        getters = self._getters
        while getters:
            getter = getters.pop(0)
            if not getter.done():
                getter.set_result(None)
                break
        if not getters:
            self._getters = None


class LeanInboxServer(Server):
    """Daphne's server with an ``AppInbox`` per connection instead of an ``asyncio.Queue``."""

    def create_application(self, protocol, scope):
        """Make the connection's application instance as Daphne does; return its inbox."""
        # Daphne's Server.create_application (daphne 4), the queue aside.
        assert "application_instance" not in self.connections[protocol]
        inbox = AppInbox()
        scope.setdefault("asgi", {"version": "3.0"})
        application_instance = self.application(
            scope=scope, receive=inbox.get, send=functools.partial(self.handle_reply, protocol)
        )
        if protocol not in self.connections:
            return None
        self.connections[protocol]["application_instance"] = asyncio.ensure_future(
            application_instance, loop=asyncio.get_event_loop()
        )
        return inbox
