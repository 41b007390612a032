"""OAuth client credentials, issued bearer tokens, and the per-token rate limit."""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiohttp import web


def bearer_token(request: web.Request) -> str | None:
    """Return the token of REQUEST's ``Authorization: Bearer`` header, or None when it has none.

    Only the header is read: whether the token is live is the store's to say (``client_of``).
    """
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


@dataclass
class IssuedToken:
    """One bearer token: whose it is and when it stops working (epoch seconds)."""

    client_id: str
    expires_at: float


class TokenStore:
    """Check client credentials, issue random tokens and remember them until they expire."""

    def __init__(self, clients: dict[str, str], expires_in: int, clock: Callable[[], float] = time.time) -> None:
        self.clients = dict(clients)
        self.expires_in = int(expires_in)
        self.clock = clock
        self.tokens: dict[str, IssuedToken] = {}
        self.issued = 0

    def check_client(self, client_id: str, client_secret: str) -> bool:
        """Return whether the credentials belong to a known client (constant-time comparison)."""
        expected = self.clients.get(client_id)
        return expected is not None and secrets.compare_digest(expected.encode(), client_secret.encode())

    def issue(self, client_id: str) -> str:
        """Return a new token for CLIENT_ID, valid for ``expires_in`` seconds."""
        self.sweep()
        token = secrets.token_urlsafe(32)
        self.tokens[token] = IssuedToken(client_id, self.clock() + self.expires_in)
        self.issued += 1
        return token

    def client_of(self, token: str) -> str | None:
        """Return the client a live token belongs to, or None if it is unknown, expired or revoked."""
        issued = self.tokens.get(token)
        if issued is None:
            return None
        if issued.expires_at <= self.clock():
            del self.tokens[token]
            return None
        return issued.client_id

    def set_lifetime(self, seconds: int, *, existing: bool = False) -> int:
        """Give new tokens SECONDS to live; with EXISTING, cut live tokens down to it too (return how many)."""
        self.expires_in = int(seconds)
        if not existing:
            return 0
        cut_to = self.clock() + seconds
        shortened = [t for t in self.tokens.values() if t.expires_at > cut_to]
        for issued in shortened:
            issued.expires_at = cut_to
        return len(shortened)

    def live(self) -> int:
        """Return how many issued tokens still work."""
        now = self.clock()
        return sum(1 for t in self.tokens.values() if t.expires_at > now)

    def revoke(self, token: str) -> bool:
        """Make TOKEN stop working; return whether it was known."""
        return self.tokens.pop(token, None) is not None

    def revoke_all(self) -> int:
        """Forget every token (as if an admin revoked them); return how many."""
        count = len(self.tokens)
        self.tokens.clear()
        return count

    def sweep(self) -> None:
        """Drop expired tokens, so memory stays bounded however many are asked for."""
        now = self.clock()
        for token in [t for t, issued in self.tokens.items() if issued.expires_at <= now]:
            del self.tokens[token]


@dataclass
class _Window:
    started: float
    count: int = 0


@dataclass(frozen=True)
class RateVerdict:
    """The outcome of counting one request: allowed or not, and the header values."""

    allowed: bool
    limit: int
    count: int
    reset: int  # seconds until the window resets


class RateLimiter:
    """Count requests per token in fixed one-minute windows starting at each token's first request."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._windows: dict[str, _Window] = {}

    def hit(self, token: str) -> RateVerdict:
        """Count one request by TOKEN and say whether it is within budget."""
        now = self.clock()
        window = self._windows.get(token)
        if window is None or now - window.started >= 60.0:
            if len(self._windows) > 10_000:
                self._windows = {k: w for k, w in self._windows.items() if now - w.started < 60.0}
            window = self._windows[token] = _Window(now)
        reset = max(1, math.ceil(window.started + 60.0 - now))
        if window.count >= self.per_minute:
            return RateVerdict(False, self.per_minute, window.count, reset)
        window.count += 1
        return RateVerdict(True, self.per_minute, window.count, reset)
