"""``POST /hooks/<slug>/``: a platform pushes records to a webhook connection (``docs/protocols/generic.md``, webhook).

The view only checks and hands on; the worker applies (``streams.vendors.webhook.connector``):

1. the body may not exceed ``FLOORVIEW_WEBHOOK_MAX_BODY`` (413, checked on
   Content-Length and again on at most limit + 1 bytes read; the server-wide
   cap, ``streams.body_limit``, refuses larger bodies before Django buffers them);
2. ``X-Floorview-Signature: sha256=<hex HMAC-SHA256 of the raw body>`` under
   the connection's secret, compared in constant time, and
   ``X-Floorview-Timestamp`` (epoch seconds) within five minutes either way
   (else 401, and nothing is applied; ``streams.hooks.signatures``);
3. the body may not exceed the connection's own size limit (413);
4. the body is one JSON record, a list of them, or Amazon EventBridge
   envelopes (else 400 with the reason; ``streams.hooks.bodies``);
5. records whose id was seen in the last hour are acknowledged and ignored,
   the rest are queued (``streams.hooks.queue``) and the reply is 204 at once;
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

import logging
import time

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from streams.hooks import targets
from streams.hooks.bodies import BodyError, hook_items, parse_body
from streams.hooks.process_queue import get_hook_queue
from streams.hooks.queue import HookQueueError
from streams.hooks.refusals import Refused, log_refusal
from streams.hooks.signatures import check_signature
from streams.hooks.targets import HookTarget, decoy_target

log = logging.getLogger(__name__)

VALIDATION_HEADER = "Validation-Token"
PARSE_OFF_LOOP = 256 * 1024  # bodies this large are parsed in a thread, not on the event loop
MAX_VALIDATION_TOKEN = 512


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
        # Looked up through its module at each delivery, so that a test can put a cache of its own there.
        target = await targets.hook_targets.get(slug)
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
        log_refusal(target, refused)
        response = JsonResponse({"error": refused.reason}, status=refused.status)
        # Logged above, at most once per period: Django's request log would write a warning per refusal,
        # and a flood of forged posts would become a flood of log lines.
        response._has_been_logged = True  # type: ignore[attr-defined]
        if refused.retry_after is not None:
            response["Retry-After"] = str(refused.retry_after)
    return _echo_validation_token(request, response)
