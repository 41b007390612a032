"""How a webhook delivery proves itself: an HMAC-SHA256 of the raw body under the connection's secret, timestamped.

``X-Floorview-Signature: sha256=<hex HMAC-SHA256 of the raw body>``, compared
in constant time, and ``X-Floorview-Timestamp`` (epoch seconds) within five
minutes of our clock either way; anything else is refused with 401.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING

from django.http import HttpRequest

from streams.hooks.refusals import Refused

if TYPE_CHECKING:
    from streams.hooks.targets import HookTarget

SIGNATURE_HEADER = "X-Floorview-Signature"
TIMESTAMP_HEADER = "X-Floorview-Timestamp"
TIMESTAMP_WINDOW = 300.0  # seconds a delivery's timestamp may differ from our clock, either way


def signature(secret: str, body: bytes) -> str:
    """Return the ``X-Floorview-Signature`` value of BODY under SECRET: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def check_signature(target: HookTarget, request: HttpRequest, body: bytes, now: float) -> None:
    """Raise Refused(401) unless BODY is signed with the target's secret and timestamped within the window."""
    given = request.headers.get(SIGNATURE_HEADER, "")
    stamp = request.headers.get(TIMESTAMP_HEADER, "")
    if not given:
        raise Refused(401, f"{SIGNATURE_HEADER} is missing")
    try:
        moment = float(stamp) if stamp.strip().isascii() else None
    except ValueError:
        moment = None
    if moment is None or moment != moment:  # NaN compares unequal to itself
        raise Refused(401, f"{TIMESTAMP_HEADER} is missing or not epoch seconds")
    if abs(now - moment) > TIMESTAMP_WINDOW:
        raise Refused(401, f"{TIMESTAMP_HEADER} is more than {TIMESTAMP_WINDOW / 60:g} minutes from our clock")
    if not target.secret:
        # Logged through the refusal log like every other 401 (throttled): a flood must not flood the log.
        raise Refused(401, "the signature does not match", log_reason="no secret is configured")
    expected = signature(target.secret, body).encode()
    # Bytes, as compare_digest refuses non-ASCII text; a wrong length or prefix fails the same way.
    if not hmac.compare_digest(expected, given.strip().lower().encode("utf-8", "replace")):
        raise Refused(401, "the signature does not match")
