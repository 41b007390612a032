"""The origin of a URL (scheme, host, port), compared before credentials go anywhere."""

from __future__ import annotations

from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def origin(url: str) -> tuple[str, str, int | None]:
    """Return (scheme, host, port) of URL, lower-cased and with the scheme's default port filled in."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = -1  # not a port: matches nothing real
    return scheme, (parts.hostname or "").lower().rstrip("."), port if port is not None else DEFAULT_PORTS.get(scheme)
