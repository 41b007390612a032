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

A session cookie alone proves nothing (any 32 characters look like one), so
every sign-in also gets a *socket pass*: a second cookie holding an HMAC of
the session key under a key derived from ``SECRET_KEY``, set by
``SocketPassMiddleware`` whenever the session key changes (sign-in) and
removed with the session (sign-out). The gate checks it with no I/O:

- a pass that does not match the session cookie is a forgery: 4401 at once;
- a matching pass goes to the *vouched* lane, whose session loads only
  sockets the server itself signed can occupy;
- no pass at all (a session from before the pass existed, a script) goes to
  the *unvouched* lane: fewer loads at once, and at most
  ``UNVOUCHED_PER_CLIENT`` pending per client address, so one address
  forging cookies fills neither lane and never delays a vouched viewer by
  more than the unvouched lane's few loads on the database thread.

Within a lane, loads run under a semaphore; when too many already wait, the
newcomer is told to come back later (4011, the page retries with backoff)
instead of lengthening the queue.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import Counter
from types import SimpleNamespace
from typing import Any

from channels.auth import AuthMiddleware
from channels.db import database_sync_to_async
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.http import HttpRequest, HttpResponse, parse_cookie
from django.utils.crypto import constant_time_compare, salted_hmac

from dashboard.access import watches
from dashboard.board_grants import BOARD_CHECK, BoardCheck, user_and_board
from dashboard.client_address import client_ip
from dashboard.protocol import Close
from dashboard.reconnect_spread import RefusalRate

log = logging.getLogger(__name__)

# Session loads running at once, and waiting: the database thread is single, so more in flight buys nothing.
AUTH_CONCURRENCY = 4
AUTH_WAITING = 64
# Sockets whose session cookie comes without a socket pass: fewer loads at once, and few per client address.
UNVOUCHED_CONCURRENCY = 2
UNVOUCHED_PER_CLIENT = 4

SOCKET_PASS_COOKIE = "floorview_socket"
_PASS_SALT = "floorview.handshake.socket-pass"

# Handshakes answered here, by outcome (for operators and tests).
refused: Counter[str] = Counter()


def socket_cookies(scope: dict) -> dict[str, str]:
    """Return the socket's cookies, read exactly as Channels' CookieMiddleware (and Django) read them.

    ``django.http.parse_cookie`` skips a cookie it cannot read and goes on; ``SimpleCookie`` stops
    at the first one (a JSON value, a space), which left a valid session behind it unseen.
    """
    for key, value in scope.get("headers", ()):
        if key.lower() == b"cookie":
            return parse_cookie(value.decode("latin-1"))
    return {}


def session_cookie(scope: dict) -> str | None:
    """Return the socket's session cookie value, or None when it carries none."""
    return socket_cookies(scope).get(settings.SESSION_COOKIE_NAME) or None


def socket_pass(session_key: str) -> str:
    """Return the socket pass of SESSION_KEY: an HMAC only this site (it holds SECRET_KEY) can make."""
    return salted_hmac(_PASS_SALT, session_key, algorithm="sha256").hexdigest()


def socket_client(scope: dict) -> str | None:
    """Return the client address of a socket, as the sign-in throttle reads it from a request."""
    meta = {"REMOTE_ADDR": (scope.get("client") or (None,))[0]}
    header = settings.FLOORVIEW_CLIENT_IP_HEADER
    if header:
        wanted = header[len("HTTP_") :].lower().replace("_", "-").encode("latin-1")
        values = [value.decode("latin-1") for key, value in scope.get("headers", ()) if key.lower() == wanted]
        if values:
            meta[header] = ",".join(values)
    return client_ip(SimpleNamespace(META=meta))


class SocketPassMiddleware:
    """Give every signed-in session its socket pass cookie, and take it away with the session.

    After SessionMiddleware in MIDDLEWARE, so that it sees the session key a sign-in
    just made and the one a sign-out just flushed. A pass is only issued for a session
    this request has loaded from the store and found signed in: the session key of a
    request that never loads its session is whatever the browser sent, and a pass for
    it would let anyone turn a made-up key into a vouched one. Costs nothing when the
    browser already holds the right pass.
    """

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        session = getattr(request, "session", None)
        key = getattr(session, "session_key", None)
        sent = request.COOKIES.get(SOCKET_PASS_COOKIE)
        if key and getattr(session, "accessed", False) and SESSION_KEY in session:
            wanted = socket_pass(key)
            if sent is None or not constant_time_compare(sent, wanted):
                response.set_cookie(
                    SOCKET_PASS_COOKIE,
                    wanted,
                    max_age=None if settings.SESSION_EXPIRE_AT_BROWSER_CLOSE else settings.SESSION_COOKIE_AGE,
                    domain=settings.SESSION_COOKIE_DOMAIN,
                    path=settings.SESSION_COOKIE_PATH,
                    secure=settings.SESSION_COOKIE_SECURE,
                    httponly=True,
                    samesite=settings.SESSION_COOKIE_SAMESITE,
                )
        elif sent is not None and (not key or getattr(session, "accessed", False)):
            # The session is gone (signed out, flushed) or was found signed out: so is its pass.
            response.delete_cookie(
                SOCKET_PASS_COOKIE,
                path=settings.SESSION_COOKIE_PATH,
                domain=settings.SESSION_COOKIE_DOMAIN,
                samesite=settings.SESSION_COOKIE_SAMESITE,
            )
        return response


async def accept_then_close(receive: Any, send: Any, code: int, reason: str | None = None) -> None:
    """Complete the handshake and close with CODE (and REASON, if given), so the browser sees why."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": code, **({"reason": reason} if reason else {})})


class BoundedAuthMiddleware(AuthMiddleware):
    """Channels' AuthMiddleware with its session and user loads bounded in number (and per client, if asked)."""

    def __init__(
        self,
        inner: Any,
        concurrency: int = AUTH_CONCURRENCY,
        waiting: int = AUTH_WAITING,
        per_client: int | None = None,
    ) -> None:
        super().__init__(inner)
        self.concurrency = concurrency
        self.waiting = waiting
        self.per_client = per_client
        # One semaphore per event loop: a semaphore is bound to the loop it first waited in.
        self._slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )
        self._queued = 0
        self._queued_by_client: Counter[str | None] = Counter()
        # A refused crowd is told how long to spread its return over (dashboard.reconnect_spread).
        self.refusals = RefusalRate()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        if self._queued >= self.concurrency + self.waiting:
            refused["busy"] += 1
            reason = self.refusals.refuse(self._queued)
            return await accept_then_close(receive, send, Close.TRY_LATER, reason)
        client = socket_client(scope) if self.per_client is not None else None
        if self.per_client is not None and self._queued_by_client[client] >= self.per_client:
            refused["busy client"] += 1
            return await accept_then_close(receive, send, Close.TRY_LATER)
        loop = asyncio.get_running_loop()
        slots = self._slots.get(loop)
        if slots is None:
            slots = self._slots[loop] = asyncio.Semaphore(self.concurrency)
        scope = dict(scope)
        self.populate_scope(scope)
        self._queued += 1
        self._queued_by_client[client] += 1
        try:
            async with slots:
                await self.resolve_scope(scope)
        finally:
            self._queued -= 1
            self._queued_by_client[client] -= 1
            if not self._queued_by_client[client]:
                del self._queued_by_client[client]
        # The user is resolved; the socket's lifetime is not held against the bound.
        return await self.inner(scope, receive, send)

    async def resolve_scope(self, scope: dict) -> None:
        """Load the session and the user and, for a board socket, check the board too: one database call."""
        slug = (scope.get("url_route") or {}).get("kwargs", {}).get("slug")
        if scope.get("type") != "websocket" or not slug:
            return await super().resolve_scope(scope)
        mark = watches.mark()  # before the grant is read: see dashboard.viewer_registrations.recheck
        user, (board, grant) = await database_sync_to_async(user_and_board)(scope, slug)
        scope["user"]._wrapped = user
        scope[BOARD_CHECK] = BoardCheck(slug, board, grant, mark)
        return None


class SessionGate:
    """Refuse sockets without a session cookie, or with a forged socket pass, at once; bound the rest's loads."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.vouched = BoundedAuthMiddleware(inner)
        self.unvouched = BoundedAuthMiddleware(
            inner, concurrency=UNVOUCHED_CONCURRENCY, per_client=UNVOUCHED_PER_CLIENT
        )
        self._vouched_stack = CookieMiddleware(SessionMiddleware(self.vouched))
        self._unvouched_stack = CookieMiddleware(SessionMiddleware(self.unvouched))

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        if scope["type"] != "websocket":
            return await self._vouched_stack(scope, receive, send)
        cookies = socket_cookies(scope)
        key = cookies.get(settings.SESSION_COOKIE_NAME)
        if not key:
            refused["no cookie"] += 1
            return await accept_then_close(receive, send, Close.UNAUTHENTICATED)
        sent = cookies.get(SOCKET_PASS_COOKIE)
        if sent is None:
            return await self._unvouched_stack(scope, receive, send)
        if not constant_time_compare(sent, socket_pass(key)):
            # Not made by this site for this session: a forged or mismatched cookie, refused without any I/O.
            refused["forged"] += 1
            return await accept_then_close(receive, send, Close.UNAUTHENTICATED)
        return await self._vouched_stack(scope, receive, send)
