"""What the simulated APIs read from a request the same way: integer query parameters and Basic credentials.

Each API answers bad input in its own vendor's error body, so the caller
passes the exception to raise.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import overload
from urllib.parse import unquote_plus

from aiohttp import web


@overload
def int_param(
    request: web.Request, name: str, default: int, minimum: int, error: Callable[[str], Exception]
) -> int: ...
@overload
def int_param(
    request: web.Request, name: str, default: None, minimum: int, error: Callable[[str], Exception]
) -> int | None: ...
def int_param(
    request: web.Request, name: str, default: int | None, minimum: int, error: Callable[[str], Exception]
) -> int | None:
    """Return query parameter NAME as an integer of at least MINIMUM (DEFAULT when absent or empty).

    Anything else raises ``error(reason)``.
    """
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise error(f"{name} must be an integer") from None
    if value < minimum:
        raise error(f"{name} must be at least {minimum}")
    return value


def basic_credentials(request: web.Request, *, url_encoded: bool = False) -> tuple[str | None, str | None]:
    """Return the client id and secret of REQUEST's Basic header, or (None, None) without a usable one.

    With URL_ENCODED each part is URL-decoded first, as OAuth (RFC 6749 section 2.3.1) says a client encodes it.
    """
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    client_id, sep, client_secret = decoded.partition(":")
    if not sep:
        return None, None
    if url_encoded:
        return unquote_plus(client_id), unquote_plus(client_secret)
    return client_id, client_secret
