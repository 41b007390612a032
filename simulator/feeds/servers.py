"""The generic feeds of ``docs/protocols/generic.md`` (push and SSE) on the simulator's port, fed by a ``RecordLog``.

- ``POST /feeds/oauth/token``: client credentials in the form body
  (``grant_type=client_credentials``, ``client_id``, ``client_secret``,
  optional ``scope``); 401 ``invalid_client`` on bad credentials, 400
  ``invalid_scope`` for a scope it does not grant. Tokens are the simulator's
  own (one ``TokenStore``), so ``revoke_tokens`` and ``token_lifetime`` apply,
  and so does ``refuse_credentials``.
- ``GET /feeds/push``: the WebSocket push feed (``push.py``);
- ``GET /feeds/sse``: the Server-Sent Events feed (``sse.py``).

Both check the bearer token before anything else (401, and no upgrade for
the push feed). Each connection is logged (when, which token by a short hash,
what it asked for), so tests can measure reconnects from the server's side.
Faults act on the open sessions (``control/feed_faults.py`` names them ``feed_*``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from simulator.faults import Faults
from simulator.feeds.push import PUSH_FORMATS, PushSession, serve_push
from simulator.feeds.session import token_tag
from simulator.feeds.sse import SseSession, serve_sse
from simulator.records import RecordLog
from simulator.tokens import TokenStore, bearer_token

TOKEN_PATH = "/feeds/oauth/token"
PUSH_PATH = "/feeds/push"
SSE_PATH = "/feeds/sse"
DEFAULT_SCOPES = frozenset({"feeds:read"})

# Frames and events that are not records, for the malformed fault: each is dropped by a correct client.
MALFORMED_TEXT = ("not json at all", '{"unterminated": ', "5", '["a", "list", "of", "strings"]', "null")
MALFORMED_BINARY = (b"\xc1", b"\xff\xfe\x00garbage", b"\x05", b"\x92\x01\x02", b"\x81\xa1a")


@dataclass
class FeedOptions:
    """How the feeds behave (constructor options of ``SimulatorServer``)."""

    push_format: str = "json"  # json (text), msgpack (binary) or mixed (both, plus JSON-in-binary health checks)
    health_every: float = 5.0  # mixed format: a JSON health check sent as a binary frame this often (seconds)
    sse_keepalive: float = 15.0  # a ``: keepalive`` comment after this long without a write (seconds)
    sse_retry_ms: int | None = 1000  # sent as ``retry:`` at the start of every stream (None: not sent)
    sse_line_end: str = "\n"  # "\n", "\r\n" or "\r": the standard allows all three
    scopes: frozenset[str] = field(default_factory=lambda: DEFAULT_SCOPES)


@dataclass
class FeedCounters:
    """What the feeds saw and did."""

    token_requests: int = 0
    tokens_refused: int = 0
    unauthorized: int = 0  # push upgrades and SSE requests refused for their token
    push_connections: int = 0
    sse_connections: int = 0
    frames_sent: int = 0
    events_sent: int = 0
    pings_answered: int = 0
    pings_ignored: int = 0  # while stalled


class FeedServers:
    """Serve the push and SSE feeds and the feed token endpoint; hold their sessions and faults."""

    def __init__(
        self,
        records: RecordLog,
        tokens: TokenStore,
        faults: Faults,
        options: FeedOptions | None = None,
    ) -> None:
        self.records = records
        self.tokens = tokens
        self.faults = faults
        self.options = options or FeedOptions()
        if self.options.push_format not in PUSH_FORMATS:
            raise ValueError(f"push_format must be one of {', '.join(PUSH_FORMATS)}")
        self.counters = FeedCounters()
        self.push_sessions: set[PushSession] = set()
        self.sse_sessions: set[SseSession] = set()
        # One entry per connection accepted: {"kind", "at" (monotonic), "token", ...}.
        self.connections: deque[dict[str, Any]] = deque(maxlen=500)
        # Control events sent (reconnect, error), with when they were written.
        self.control_sent: deque[dict[str, Any]] = deque(maxlen=100)
        # feed_busy: this many new event streams are turned away with a reconnect event first thing.
        self.busy_streams = 0
        self.busy_retry_ms = 1000
        records.listeners.append(self._on_record)

    def install(self, app: web.Application) -> None:
        """Add the feed routes to APP."""
        app.router.add_post(TOKEN_PATH, self.token_view)
        app.router.add_get(PUSH_PATH, self.push_view)
        app.router.add_get(SSE_PATH, self.sse_view)

    # -- auth ---------------------------------------------------------------------------

    async def token_view(self, request: web.Request) -> web.Response:
        """Issue a token for client credentials given in the form body."""
        self.counters.token_requests += 1
        if self.faults.credentials_refused():
            return self._oauth_error(401, "invalid_client", "Invalid client credentials")
        form = await request.post()
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        if not isinstance(client_id, str) or not isinstance(client_secret, str):
            return self._oauth_error(401, "invalid_client", "Client authentication is required")
        if not self.tokens.check_client(client_id, client_secret):
            return self._oauth_error(401, "invalid_client", "Invalid client credentials")
        if form.get("grant_type") != "client_credentials":
            return self._oauth_error(400, "unsupported_grant_type", "Only client_credentials is supported")
        scope = form.get("scope", "")
        wanted = set(scope.split()) if isinstance(scope, str) else {""}
        if not wanted <= self.options.scopes:
            return self._oauth_error(400, "invalid_scope", "The requested scope is not granted")
        token = self.tokens.issue(client_id)
        body = {"access_token": token, "token_type": "bearer", "expires_in": self.tokens.expires_in}
        if wanted:
            body["scope"] = " ".join(sorted(wanted))
        return web.json_response(body)

    def _oauth_error(self, status: int, error: str, description: str) -> web.Response:
        self.counters.tokens_refused += 1
        return web.json_response({"error": error, "error_description": description}, status=status)

    def bearer(self, request: web.Request) -> str | None:
        """Return the request's bearer token if it is live, else None."""
        token = bearer_token(request)
        if token is None or self.tokens.client_of(token) is None:
            return None
        return token

    def unauthorized(self) -> web.Response:
        """Return the 401 a request without a live bearer token gets (before any upgrade)."""
        self.counters.unauthorized += 1
        return web.json_response(
            {"error": "invalid_token", "error_description": "A valid bearer token is required"},
            status=401,
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )

    def revoke(self, token: str) -> None:
        """Make TOKEN stop working (the server told its holder 401)."""
        self.tokens.revoke(token)

    def log_connection(self, kind: str, token: str, **details: Any) -> dict[str, Any]:
        """Note an accepted connection; return the entry."""
        entry = {"kind": kind, "at": time.monotonic(), "token": token_tag(token), **details}
        self.connections.append(entry)
        return entry

    # -- the feeds ------------------------------------------------------------------------

    async def push_view(self, request: web.Request) -> web.StreamResponse:
        """Serve one push WebSocket."""
        return await serve_push(self, request)

    async def sse_view(self, request: web.Request) -> web.StreamResponse:
        """Serve one event stream."""
        return await serve_sse(self, request)

    def _on_record(self, seq: int, record: dict[str, Any]) -> None:
        for push in list(self.push_sessions):
            push.send_records([record])
        for sse in list(self.sse_sessions):
            if sse.matches(record):
                sse.send_record(seq, record)

    def sessions(self, kind: str | None = None) -> list[PushSession | SseSession]:
        """Return the open sessions of KIND ("push", "sse" or None: both)."""
        found: list[PushSession | SseSession] = []
        if kind in (None, "push"):
            found.extend(self.push_sessions)
        if kind in (None, "sse"):
            found.extend(self.sse_sessions)
        return found

    # -- faults ---------------------------------------------------------------------------

    def stall(self, kind: str | None, seconds: float | None) -> int:
        """Send nothing on the sessions of KIND (no records, keepalives or pongs) for SECONDS; return how many."""
        sessions = self.sessions(kind)
        for session in sessions:
            session.stall(seconds)
        return len(sessions)

    def drop(self, kind: str | None) -> int:
        """Cut the connections of KIND without a goodbye; return how many."""
        sessions = self.sessions(kind)
        for session in sessions:
            session.abort()
        return len(sessions)

    def malformed(self, kind: str | None, count: int) -> int:
        """Send COUNT frames or events that hold no records on the sessions of KIND; return how many sessions."""
        sessions = self.sessions(kind)
        for session in sessions:
            for i in range(count):
                if isinstance(session, PushSession):
                    if i % 2:
                        session.send_raw(MALFORMED_BINARY[(i // 2) % len(MALFORMED_BINARY)])
                    else:
                        session.send_raw(MALFORMED_TEXT[(i // 2) % len(MALFORMED_TEXT)])
                else:
                    session.send_event(MALFORMED_TEXT[i % len(MALFORMED_TEXT)])
        return len(sessions)

    def oversized(self, kind: str | None, size: int, queue_id: str | None) -> int:
        """Send one well-formed record of about SIZE bytes (a new interaction on QUEUE_ID) on the sessions of KIND.

        A client that decoded it instead of refusing it would show an interaction ``oversized-…``.
        """
        queue_id = queue_id or next(iter(self.records.model.queues))
        sessions = self.sessions(kind)
        for n, session in enumerate(sessions):
            record = {
                "id": f"oversized-{n}",
                "type": "interaction.created",
                "timestamp": round(time.time() * 1000),
                "interaction_id": f"oversized-{n}",
                "queue_id": queue_id,
                "state": "waiting",
                "payload": {"media": "voice", "padding": ""},
            }
            session.send_padded(record, size)
        return len(sessions)

    def control_event(self, event: str, body: dict[str, Any], *, revoke: bool = False) -> int:
        """Send EVENT (reconnect or error) with BODY on every event stream, then end it; return how many."""
        sessions = list(self.sse_sessions)
        for session in sessions:
            if revoke:
                self.revoke(session.token)
            session.send_control(event, body)
        return len(sessions)

    def clear(self) -> None:
        """End every feed fault: stalls and turning streams away."""
        self.busy_streams = 0
        for session in self.sessions():
            session.unstall()

    async def close_all(self) -> None:
        """End every session (the simulator stops)."""
        sessions = self.sessions()
        for session in sessions:
            session.abort()
        if sessions:
            # Bounded: a handler stuck in a write must not hold the simulator's shutdown.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*(s.finished.wait() for s in sessions)), timeout=2.0)

    def describe(self) -> dict[str, Any]:
        """Return the feeds' settings and counters as plain data."""
        return {
            "push_format": self.options.push_format,
            "push_sessions": len(self.push_sessions),
            "sse_sessions": len(self.sse_sessions),
            "stalled": sum(s.stalled() for s in self.sessions()),
            "counters": vars(self.counters).copy(),
        }
