"""``POST /hooks/<slug>/``: a platform pushes records to a webhook connection (``docs/protocols/generic.md``, webhook).

The view only checks and hands on; the worker applies (``streams.vendors.webhook.connector``):

1. the body may not exceed ``FLOORVIEW_WEBHOOK_MAX_BODY`` (413, checked on
   Content-Length and again on at most limit + 1 bytes read; the server-wide
   cap, ``streams.body_limit``, refuses larger bodies before Django buffers them);
2. ``X-Floorview-Signature: sha256=<hex HMAC-SHA256 of the raw body>`` under
   the connection's secret, compared in constant time, and
   ``X-Floorview-Timestamp`` (epoch seconds) within five minutes either way
   (else 401, and nothing is applied);
3. the body may not exceed the connection's own size limit (413);
4. the body is one JSON record, a list of them, or Amazon EventBridge
   envelopes (else 400 with the reason);
5. records whose id was seen in the last hour are acknowledged and ignored,
   the rest are queued (``streams.hook_queue``) and the reply is 204 at once;
   a queue that cannot take them answers 503 with Retry-After.

A slug that names no enabled webhook connection is answered exactly as a
known slug with a bad signature (401, the same body): it goes through the
same steps with a secret nobody knows, so the replies do not tell which
slugs exist. The connection's own size limit is therefore applied only to
signed deliveries (an unsigned large body to a known slug must not answer
413 where an unknown slug answers 401).

A ``Validation-Token`` request header is echoed in the reply; a validation
handshake (that header and an empty body) gets 200 and nothing is applied.
Both hold for every slug, known or not: the handshake is unsigned, so
answering it only for known slugs would confirm them to anyone; a platform
that validates a mistyped URL learns of it at its first delivery (401).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from streams.crypto import SecretUnreadable
from streams.events import UNSET
from streams.feeds.mapping import FieldMapping
from streams.hook_queue import HookItem, HookQueueError, get_hook_queue
from streams.log_throttle import ThrottledLog

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Floorview-Signature"
TIMESTAMP_HEADER = "X-Floorview-Timestamp"
VALIDATION_HEADER = "Validation-Token"
TIMESTAMP_WINDOW = 300.0  # seconds a delivery's timestamp may differ from our clock, either way
LOOKUP_TTL = 2.0  # seconds a slug's connection is cached: a disabled one is refused this soon
LOOKUP_MAX = 1000  # slugs cached (unknown ones too, so a flood of made-up slugs spares the database)
PARSE_OFF_LOOP = 256 * 1024  # bodies this large are parsed in a thread, not on the event loop
MAX_ID = 1000  # longer record ids are not ids (they would only fill the idempotency store)
MAX_VALIDATION_TOKEN = 512
REFUSAL_LOG_EVERY = 10.0  # seconds between log lines for the same slug and reason
# The secret of the stand-in for unknown slugs: random per process, never stored, so nothing signs for it.
_DECOY_SECRET = secrets.token_hex(32)


def signature(secret: str, body: bytes) -> str:
    """Return the ``X-Floorview-Signature`` value of BODY under SECRET: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class HookTarget:
    """What the view needs of one enabled webhook connection."""

    source: str
    slug: str
    secret: str = field(repr=False)
    max_bytes: int
    mapping: FieldMapping
    known: bool = True  # False for the stand-in answering for a slug that names no connection


def decoy_target(slug: str) -> HookTarget:
    """Return the stand-in for SLUG, which names no enabled webhook connection: every delivery gets 401."""
    return HookTarget("", slug, _DECOY_SECRET, settings.FLOORVIEW["WEBHOOK_MAX_BODY"], FieldMapping(), known=False)


def _load_target(slug: str) -> HookTarget | None:
    from streams.models import Connection

    connection = Connection.objects.filter(settings__slug=slug, kind="webhook", enabled=True).first()
    if connection is None:
        return None
    try:
        secret = connection.secret("webhook_secret")
    except SecretUnreadable:
        # Every delivery is refused (401) until an admin sets the secret again.
        log.error("webhook %s: the stored secret cannot be decrypted; refusing deliveries", slug)
        secret = ""
    hook = connection.vendor().settings.from_values(connection.settings)
    return HookTarget(connection.source_key, slug, secret, hook.max_frame_bytes, hook.mapping())


class HookTargets:
    """Slug → connection, cached for ``ttl`` seconds (unknown slugs too), safe from any thread."""

    def __init__(
        self, *, ttl: float = LOOKUP_TTL, max_entries: int = LOOKUP_MAX, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self.loads = 0  # database lookups made (tests count them)
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, tuple[float, HookTarget | None]] = OrderedDict()

    async def get(self, slug: str) -> HookTarget | None:
        """Return the enabled webhook connection at SLUG, or None."""
        now = self.clock()
        with self._lock:
            cached = self._cache.get(slug)
            if cached is not None and cached[0] > now:
                return cached[1]
        target = await sync_to_async(_load_target)(slug)
        with self._lock:
            self.loads += 1
            self._cache[slug] = (self.clock() + self.ttl, target)
            self._cache.move_to_end(slug)
            while len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)
        return target

    def clear(self) -> None:
        """Forget every cached lookup."""
        with self._lock:
            self._cache.clear()


targets = HookTargets()


class BodyError(ValueError):
    """A body that is not one record, a list of records or EventBridge envelopes (400 with this reason)."""


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_body(body: bytes) -> list[dict[str, Any]]:
    """Return the records (or EventBridge envelopes) of a delivery body; raise BodyError saying why not."""
    if not body.strip():
        raise BodyError("the body is empty")
    try:
        data = json.loads(body, parse_constant=_no_constants)
    except RecursionError:
        raise BodyError("the body is nested too deeply") from None
    except UnicodeDecodeError:
        raise BodyError("the body is not UTF-8 JSON") from None
    except ValueError as exc:
        # A JSONDecodeError says where, never what: no part of the body is echoed.
        where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise BodyError(f"the body is not valid JSON{where}") from None
    if isinstance(data, dict):
        items = [data]
    elif isinstance(data, list):
        items = data
    else:
        raise BodyError("the body must be a JSON object (one record) or a list of them")
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise BodyError(f"item {index} is not a JSON object")
        if is_envelope(item):
            detail = item.get("detail")
            if not isinstance(detail, dict) or not isinstance(detail.get("topicName"), str) or not detail["topicName"]:
                raise BodyError(f"item {index} is an EventBridge envelope without detail.topicName")
    return items


def is_envelope(item: dict[str, Any]) -> bool:
    """Return whether ITEM is an Amazon EventBridge envelope (rather than a record)."""
    return "detail-type" in item and "detail" in item


def record_id(item: dict[str, Any], mapping: FieldMapping) -> str | None:
    """Return ITEM's idempotency key: an envelope's ``id``, a record's mapped id; None if it has none."""
    value = item.get("id") if is_envelope(item) else mapping.get(item, "id")
    if value is UNSET or value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | str) and 0 < len(text := str(value)) <= MAX_ID:
        return text
    return None


def hook_items(items: list[dict[str, Any]], mapping: FieldMapping) -> list[HookItem]:
    """Return ITEMS as the queue takes them: compact JSON text and idempotency key."""
    return [HookItem(json.dumps(item, separators=(",", ":")), record_id(item, mapping)) for item in items]


class Refused(Exception):
    """A delivery refused with STATUS and a reason for the platform (never a secret)."""

    def __init__(self, status: int, reason: str, *, retry_after: int | None = None, log_reason: str = "") -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.retry_after = retry_after
        self.log_reason = log_reason or reason  # for our log only: it may say more than the platform should hear


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


refusal_log = ThrottledLog(log, REFUSAL_LOG_EVERY, max_keys=LOOKUP_MAX)


def _log_refusal(target: HookTarget, refused: Refused) -> None:
    """Log a refusal, at most once per REFUSAL_LOG_EVERY for a slug and status (a flood stays a trickle)."""
    if not target.known:
        # Made-up slugs share one line: a scan of many slugs must not become a line per slug.
        refusal_log.log(("unknown", refused.status), logging.INFO, "webhook: refused a delivery to an unknown slug")
        return
    level = logging.WARNING if refused.log_reason != refused.reason else logging.INFO
    refusal_log.log(
        (target.slug, refused.status),
        level,
        "webhook %s: refused a delivery with %d (%s)",
        target.slug,
        refused.status,
        refused.log_reason,
    )


def _read_body(request: HttpRequest, limit: int) -> bytes:
    """Return the body, reading at most LIMIT + 1 bytes; raise Refused(413 or 400) when it cannot be taken."""
    declared = request.META.get("CONTENT_LENGTH") or ""
    if declared:
        try:
            length = int(declared)
        except ValueError:
            raise Refused(400, "Content-Length is not a number") from None
        if length > limit:
            raise Refused(413, f"the body is larger than this webhook's limit of {limit} bytes")
    body = request.read(limit + 1)
    if len(body) > limit:
        raise Refused(413, f"the body is larger than this webhook's limit of {limit} bytes")
    return body


async def _accept(request: HttpRequest, target: HookTarget) -> HttpResponse:
    """Check one delivery and queue its new records; raise Refused when it is not taken."""
    # Every slug is read to the same limit, so that a known slug's smaller limit does not give it away to
    # someone who cannot sign; its own limit applies once the delivery is shown to be genuine.
    body = _read_body(request, settings.FLOORVIEW["WEBHOOK_MAX_BODY"])
    if not body and VALIDATION_HEADER in request.headers:
        # A validation handshake: the platform checks that we answer; there is nothing to apply.
        return HttpResponse(status=200)
    check_signature(target, request, body, time.time())
    if not target.known:
        raise Refused(401, "the signature does not match")  # only if someone guessed a random 256-bit key
    if len(body) > target.max_bytes:
        raise Refused(413, f"the body is larger than this webhook's limit of {target.max_bytes} bytes")
    try:
        if len(body) > PARSE_OFF_LOOP:
            items = await sync_to_async(parse_body, thread_sensitive=False)(body)
        else:
            items = parse_body(body)
    except BodyError as exc:
        raise Refused(400, str(exc)) from None
    if items:
        try:
            await get_hook_queue().offer(target.source, hook_items(items, target.mapping))
        except HookQueueError as exc:
            log.warning("webhook %s: the queue cannot take a delivery (%s)", target.slug, exc)
            raise Refused(503, "the delivery cannot be queued just now", retry_after=exc.retry_after) from None
    return HttpResponse(status=204)


def _echo_validation_token(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    token = request.headers.get(VALIDATION_HEADER)
    if token and len(token) <= MAX_VALIDATION_TOKEN and token.isascii() and token.isprintable():
        response[VALIDATION_HEADER] = token
    return response


@csrf_exempt
@require_POST
async def receive_hook(request: HttpRequest, slug: str) -> HttpResponse:
    """Take one webhook delivery for the connection at SLUG (see the module docstring)."""
    try:
        target = await targets.get(slug)
    except DatabaseError:
        log.warning("webhook %s: the database is unreachable; asking the platform to retry", slug)
        response = JsonResponse({"error": "the delivery cannot be taken just now"}, status=503)
        response["Retry-After"] = "5"
        return response
    if target is None:
        target = decoy_target(slug)
    try:
        response = await _accept(request, target)
    except Refused as refused:
        _log_refusal(target, refused)
        response = JsonResponse({"error": refused.reason}, status=refused.status)
        # Logged above, at most once per period: Django's request log would write a warning per refusal,
        # and a flood of forged posts would become a flood of log lines.
        response._has_been_logged = True  # type: ignore[attr-defined]
        if refused.retry_after is not None:
            response["Retry-After"] = str(refused.retry_after)
    return _echo_validation_token(request, response)
