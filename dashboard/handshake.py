"""Cheap handshakes: refuse sockets without a session at once, and bound the session work of the others.

Channels' ``AuthMiddlewareStack`` loads every socket's session and user
through ``database_sync_to_async``, which runs on one thread. A burst of
upgrades then queues there, and Daphne drops every handshake that does not
finish within its connect timeout: anonymous ones, and the signed-in viewer
waiting behind them.

So a socket that carries no session cookie never reaches the session store,
the database or a consumer: it is accepted and closed with 4401 right here
(accepted first because a refusal before the handshake reaches the browser
only as an anonymous 1006, and the page needs 4401 to say "signed out").
Sockets with a cookie load their user under a semaphore; when too many
already wait for one, the newcomer is told to come back later (4011, the
page retries with backoff) instead of lengthening the queue.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from http.cookies import CookieError, SimpleCookie
from typing import Any

from channels.auth import AuthMiddleware
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.conf import settings

log = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_TRY_LATER = 4011
# Session loads running at once, and waiting: the database thread is single, so more in flight buys nothing.
AUTH_CONCURRENCY = 4
AUTH_WAITING = 64

# Handshakes answered here, by outcome (for operators and tests).
refused: dict[str, int] = {"no cookie": 0, "busy": 0}


def session_cookie(scope: dict) -> str | None:
    """Return the socket's session cookie value, or None when it carries none."""
    name = settings.SESSION_COOKIE_NAME
    for key, value in scope.get("headers", ()):
        if key.lower() != b"cookie":
            continue
        cookies = SimpleCookie()
        try:
            cookies.load(value.decode("latin-1"))
        except CookieError:
            continue
        if name in cookies and cookies[name].value:
            return cookies[name].value
    return None


async def accept_then_close(receive: Any, send: Any, code: int) -> None:
    """Complete the handshake and close with CODE, so the browser sees why."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": code})


class BoundedAuthMiddleware(AuthMiddleware):
    """Channels' AuthMiddleware with its session and user loads bounded in number."""

    def __init__(self, inner: Any, concurrency: int = AUTH_CONCURRENCY, waiting: int = AUTH_WAITING) -> None:
        super().__init__(inner)
        self.concurrency = concurrency
        self.waiting = waiting
        # One semaphore per event loop: a semaphore is bound to the loop it first waited in.
        self._slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )
        self._queued = 0

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        if self._queued >= self.concurrency + self.waiting:
            refused["busy"] += 1
            return await accept_then_close(receive, send, CLOSE_TRY_LATER)
        loop = asyncio.get_running_loop()
        slots = self._slots.get(loop)
        if slots is None:
            slots = self._slots[loop] = asyncio.Semaphore(self.concurrency)
        scope = dict(scope)
        self.populate_scope(scope)
        self._queued += 1
        try:
            async with slots:
                await self.resolve_scope(scope)
        finally:
            self._queued -= 1
        # The user is resolved; the socket's lifetime is not held against the bound.
        return await self.inner(scope, receive, send)


class SessionGate:
    """Route sockets without a session cookie to a cheap 4401; the rest through the (bounded) session stack."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.with_session = CookieMiddleware(SessionMiddleware(BoundedAuthMiddleware(inner)))

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket" and session_cookie(scope) is None:
            refused["no cookie"] += 1
            return await accept_then_close(receive, send, CLOSE_UNAUTHENTICATED)
        return await self.with_session(scope, receive, send)
