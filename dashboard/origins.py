"""Which page may open a board socket: the site's own origin or a trusted one, compared in full.

Browsers send the socket's cookies whatever page opens it, so the Origin
header is what stops a page elsewhere from reading a viewer's boards. Channels'
``AllowedHostsOriginValidator`` compares only the host name, so a page on any
port or scheme of an allowed host (another app on the same machine, plain
http next to https) would pass. Here the whole origin (scheme, host, port) must
equal the site's own origin, taken from the request's Host header (itself one
of ``ALLOWED_HOSTS``) and the scheme the connection used, or be listed in
``CSRF_TRUSTED_ORIGINS`` (whose ``https://*.example.com`` form is honoured as
Django's CSRF check honours it).

A socket without an Origin header is let through: every browser sends one on
a WebSocket upgrade, so its absence means a non-browser client, which must
still present a valid session cookie to see anything.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.http.request import split_domain_port, validate_host

from streams.log_throttle import ThrottledLog

log = logging.getLogger(__name__)
refusals = ThrottledLog(log, 60.0)

DEFAULT_PORTS = {"http": 80, "https": 443}


def _header(scope: dict, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _normalise(scheme: str, host: str, port: int | None) -> tuple[str, str, int] | None:
    scheme = scheme.lower()
    if scheme not in DEFAULT_PORTS or not host:
        return None
    # An IPv6 host is bracketed in a Host header but not in a parsed URL's hostname.
    return scheme, host.lower().strip("[]").rstrip("."), port or DEFAULT_PORTS[scheme]


def parse_origin(origin: str) -> tuple[str, str, int] | None:
    """Return (scheme, host, port) of ORIGIN with the default port filled in, or None if it is not one."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        return None
    return _normalise(parts.scheme, parts.hostname or "", port)


def connection_scheme(scope: dict) -> str:
    """Return "https" or "http": what the browser used to reach the site, through a proxy if one says so."""
    proxy_header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy_header:
        name, secure_value = proxy_header
        # Django names it as a WSGI variable (HTTP_X_FORWARDED_PROTO); the socket has raw headers.
        header = name.removeprefix("HTTP_").replace("_", "-").lower().encode("latin-1")
        value = _header(scope, header)
        if value is not None:
            return "https" if value.split(",")[0].strip() == secure_value else "http"
    # Daphne puts no scheme in a WebSocket scope; other servers may say "wss".
    return "https" if scope.get("scheme") in ("wss", "https") else "http"


def site_origin(scope: dict) -> tuple[str, str, int] | None:
    """Return the site's own origin for this socket, or None if its Host is missing or not allowed."""
    host_header = _header(scope, b"host")
    if not host_header:
        return None
    domain, port = split_domain_port(host_header)
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]  # As Django's own host check does under DEBUG.
    if not domain or not validate_host(domain, allowed):
        return None
    try:
        port_number = int(port) if port else None
    except ValueError:
        return None
    return _normalise(connection_scheme(scope), domain, port_number)


def _trusted(origin: tuple[str, str, int]) -> bool:
    scheme, host, port = origin
    for entry in settings.CSRF_TRUSTED_ORIGINS:
        if "://*." in entry:
            entry_scheme, _, rest = entry.partition("://*.")
            trusted = parse_origin(f"{entry_scheme}://{rest}")
            if trusted and trusted[0] == scheme and trusted[2] == port and host.endswith("." + trusted[1]):
                return True
        elif parse_origin(entry) == origin:
            return True
    return False


def origin_allowed(scope: dict) -> bool:
    """Return whether the socket's Origin is the site's own or a trusted one (or absent: not a browser)."""
    if site_origin(scope) is None:
        return False  # A Host that is not ours: nothing to compare with.
    header = _header(scope, b"origin")
    if header is None:
        return True
    origin = parse_origin(header)
    if origin is None:
        return False
    return origin == site_origin(scope) or _trusted(origin)


class OriginCheck:
    """Refuse a WebSocket whose page is neither the site's own origin nor a trusted one, before anything else."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket" and not origin_allowed(scope):
            # One line a minute at most: anyone can send refused origins as fast as they like.
            refusals.log(
                "origin", logging.INFO, "refused a socket from origin %r", (_header(scope, b"origin") or "")[:200]
            )
            # Refused before the handshake: the server answers 403 and no other work is done.
            await receive()  # websocket.connect
            await send({"type": "websocket.close"})
            return None
        return await self.inner(scope, receive, send)
