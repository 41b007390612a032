"""CXone values: timestamps, ids, names, counts, the API version and the id_token's claims.

The readers every CXone parser shares, and the two the sign-in and the
settings need. Each returns the value read or raises ``ParseError`` (and
nothing else), but ``count_or_unset`` and ``shown_time``, which turn a bad
figure or time into ``UNSET`` (counted by ``streams.sanity``) so that it
costs its field, never its record.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from datetime import UTC, datetime
from typing import Any

from streams import sanity
from streams.events import UNSET

MAX_TEXT = 200  # longer names are cut: a board cell never needs more


class ParseError(ValueError):
    """A reply or record that cannot be used (wrong shape or type)."""


_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_time(value: Any) -> float | None:
    """Return the epoch seconds of a CXone timestamp, or None for null/empty; raise ParseError otherwise."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 64:
        raise ParseError("a timestamp must be a string")
    # CXone writes up to seven fractional digits; Python reads six.
    text = _FRACTION.sub(r"\1", value.strip()).replace("Z", "+00:00").replace("z", "+00:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ParseError(f"not a timestamp: {value[:40]!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        seconds = moment.timestamp()
    except (OverflowError, ValueError, OSError):
        raise ParseError("timestamp out of range") from None
    return round(seconds * 1000) / 1000


def entity_id(value: Any, what: str = "id") -> str:
    """Return a CXone id (a positive number, or its text) as a string; raise ParseError otherwise."""
    if isinstance(value, bool):
        raise ParseError(f"{what} is not a number")
    # Ids are at most 20 digits, as in text below: 1e300 is no id, whatever is_integer() says.
    if isinstance(value, int) and 0 < value < 10**20:
        return str(value)
    if isinstance(value, float) and value.is_integer() and 0 < value < 2**53:
        return str(int(value))
    if isinstance(value, str):
        text = value.strip()
        # ASCII digits only: "¹" and "٣" are digits to str.isdigit() but no CXone id (and int() refuses "¹").
        if text.isascii() and text.isdigit() and len(text) <= 20 and int(text) > 0:
            return str(int(text))
    raise ParseError(f"{what} is missing or not a positive number")


def optional_id(value: Any) -> str | None:
    """Return an id, or None where CXone says "none" (null, 0, empty)."""
    if value is None or value == 0 or value == "" or value == "0":
        return None
    try:
        return entity_id(value)
    except ParseError:
        return None


def short_text(value: Any) -> str | None:
    """Return a name or label as text cut to MAX_TEXT (a number as its text), or None when empty or not text."""
    if isinstance(value, str):
        value = value.strip()
        return value[:MAX_TEXT] or None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return str(value)[:MAX_TEXT]
    return None


def count_or_unset(value: Any) -> Any:
    """Return a count (see ``streams.sanity``), or UNSET when the field is absent or not a count (counted)."""
    checked = sanity.count(value)
    return UNSET if checked is None else checked


def shown_time(value: Any) -> Any:
    """Return a time field as epoch seconds (None for null), or UNSET when unreadable or not sane (counted)."""
    return sanity.shown_time(value, parse_time)


def full_name(first: Any, last: Any) -> str | None:
    """Return "first last" from CXone's name fields, or None when both are empty."""
    parts = [p for p in (short_text(first), short_text(last)) if p]
    return " ".join(parts)[:MAX_TEXT] if parts else None


# -- the API version ---------------------------------------------------------------------

_API_VERSION = re.compile(r"[vV]?([0-9]{1,3})(?:\.([0-9]{1,2}))?")
DEFAULT_API_VERSION = "v31.0"


def api_version(value: Any) -> str:
    """Return an admin's API version as CXone's paths spell it: ``31``, ``v31`` and ``31.0`` are ``v31.0``.

    Blank is the default (``v31.0``); anything else that is not a version
    number raises ParseError.
    """
    if value is None:
        return DEFAULT_API_VERSION
    if not isinstance(value, str):
        raise ParseError("the API version is not text")
    text = value.strip()
    if not text:
        return DEFAULT_API_VERSION
    match = _API_VERSION.fullmatch(text)
    if match is None:
        raise ParseError(f"not an API version (e.g. v31.0): {text[:20]!r}")
    major, minor = match.groups()
    return f"v{int(major)}.{int(minor or 0)}"


# -- the id_token ------------------------------------------------------------------------


def jwt_claims(token: Any) -> dict[str, Any]:
    """Return the claims of a JWT without checking its signature; raise ParseError if it is not one.

    Not checking is safe here: the token comes straight from the token
    endpoint, over TLS, in reply to our own credentials; nobody else handed it
    to us, and nothing is granted on its word (the API checks the access token).
    """
    if not isinstance(token, str) or token.count(".") != 2 or len(token) > 64_000:
        raise ParseError("the id_token is not a JWT")
    payload = token.split(".")[1]
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        claims = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        raise ParseError("the id_token's claims are not base64url JSON") from None
    if not isinstance(claims, dict):
        raise ParseError("the id_token's claims are not an object")
    return claims
