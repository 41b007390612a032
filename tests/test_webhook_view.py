"""``POST /hooks/<slug>/``: authenticity, limits, shapes, idempotency and the hand-off to the queue.

These run the view through Django's test client in the embedded mode: the view
runs in a loop of the client's own, and what it queued is read back from the
process-wide in-memory queue.
"""

from __future__ import annotations

import asyncio
import io
import json
import time

import pytest
from asgiref.sync import async_to_sync
from django.http import HttpRequest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.hooks import intake, targets
from streams.hooks.bodies import BodyError, parse_body
from streams.hooks.memory_queue import MemoryHookQueue
from streams.hooks.process_queue import get_hook_queue, reset_hook_queue
from streams.hooks.refusals import Refused
from streams.hooks.signatures import signature
from streams.hooks.targets import HookTargets
from streams.models import Connection

SECRET = "whsec-test-7d1f0c"
pytestmark = pytest.mark.django_db


@pytest.fixture
def hook(settings):
    """An enabled webhook connection at /hooks/crm/ (2 KiB limit), the embedded queue, and a fresh lookup cache."""
    settings.REDIS_URL = ""
    reset_hook_queue()
    targets.hook_targets.clear()
    connection = Connection.of("webhook", name="CRM", slug="crm", max_frame_bytes=2048, webhook_secret=SECRET)
    connection.save()
    yield connection
    targets.hook_targets.clear()
    reset_hook_queue()


def post(body: bytes | str, *, secret: str = SECRET, stamp: float | None = None, slug: str = "crm", **headers):
    """POST BODY to the hook, signed with SECRET and stamped STAMP (default now) unless headers say otherwise."""
    if isinstance(body, str):
        body = body.encode()
    signed = {
        "HTTP_X_FLOORVIEW_SIGNATURE": signature(secret, body),
        "HTTP_X_FLOORVIEW_TIMESTAMP": str(int(time.time() if stamp is None else stamp)),
    }
    return Client().post(f"/hooks/{slug}/", data=body, content_type="application/json", **(signed | headers))


def queued(connection: Connection) -> list[list]:
    """Return (and take off the queue) every delivery queued for CONNECTION, oldest first."""
    queue = get_hook_queue()
    assert isinstance(queue, MemoryHookQueue)
    count = queue.backlog_of(connection.source_key)

    async def read() -> list[list]:
        reader = queue.reader(connection.source_key, "test")
        frames = [json.loads(await asyncio.wait_for(anext(reader), 5)) for _ in range(count)]
        await reader.close()
        return frames

    frames = async_to_sync(read)()
    assert queue.backlog_of(connection.source_key) == 0
    return frames


def record(n: int, **fields) -> dict:
    return {"id": f"r{n}", "type": "interaction.updated", "interaction_id": f"i{n}", "queue_id": "q1"} | fields


# -- the happy path ---------------------------------------------------------------------------


def test_a_signed_delivery_is_queued_and_answered_204(hook):
    body = json.dumps([record(1), record(2, state="connected")])
    response = post(body)
    assert response.status_code == 204 and response.content == b""
    assert queued(hook) == [[record(1), record(2, state="connected")]]


def test_one_record_alone_is_a_delivery_of_one(hook):
    assert post(json.dumps(record(1))).status_code == 204
    assert queued(hook) == [[record(1)]]


def test_an_empty_list_is_acknowledged_and_queues_nothing(hook):
    assert post("[]").status_code == 204
    assert queued(hook) == []


# -- authenticity -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"secret": "not-the-secret"},
        {"HTTP_X_FLOORVIEW_SIGNATURE": ""},
        {"HTTP_X_FLOORVIEW_SIGNATURE": "sha256=" + "0" * 64},
        {"HTTP_X_FLOORVIEW_SIGNATURE": "sha1=abc"},
        {"HTTP_X_FLOORVIEW_SIGNATURE": "sha256=ünïcode"},
        {"HTTP_X_FLOORVIEW_TIMESTAMP": ""},
        {"HTTP_X_FLOORVIEW_TIMESTAMP": "yesterday"},
        {"HTTP_X_FLOORVIEW_TIMESTAMP": "nan"},
    ],
    ids=["wrong-secret", "no-signature", "zero-signature", "other-scheme", "non-ascii", "no-stamp", "word", "nan"],
)
def test_an_unauthentic_delivery_is_refused_with_401_and_nothing_is_applied(hook, headers):
    body = json.dumps([record(1)])
    response = post(body, **headers)
    assert response.status_code == 401
    assert "error" in response.json()
    # Neither the secret nor the signature we expected is ever told.
    assert SECRET not in response.content.decode()
    assert signature(SECRET, body.encode())[7:] not in response.content.decode()
    assert queued(hook) == []


def test_the_secret_and_the_expected_signature_never_reach_the_log(hook, caplog):
    body = json.dumps([record(1)])
    with caplog.at_level("DEBUG"):
        assert post(body, secret="forged").status_code == 401
    text = caplog.text
    assert SECRET not in text and signature(SECRET, body.encode())[7:] not in text


@pytest.mark.parametrize("offset", [-301, 301, -3600, 86400])
def test_a_timestamp_outside_five_minutes_either_way_is_refused(hook, offset):
    response = post(json.dumps([record(1)]), stamp=time.time() + offset)
    assert response.status_code == 401
    assert "minutes" in response.json()["error"]
    assert queued(hook) == []


@pytest.mark.parametrize("offset", [-290, 290])
def test_a_timestamp_within_five_minutes_is_accepted(hook, offset):
    assert post(json.dumps([record(1)]), stamp=time.time() + offset).status_code == 204
    assert len(queued(hook)) == 1


def test_a_connection_without_a_secret_refuses_everything(hook):
    hook.encrypted_secrets = {}
    hook.save()
    targets.hook_targets.clear()
    assert post(json.dumps([record(1)]), secret="").status_code == 401
    assert queued(hook) == []


# -- idempotency ----------------------------------------------------------------------------------


def test_a_record_id_seen_before_is_acknowledged_and_applied_once(hook):
    assert post(json.dumps([record(1), record(2)])).status_code == 204
    # The platform retries the same batch, then sends one overlapping it; one id repeats inside it too.
    assert post(json.dumps([record(1), record(2)])).status_code == 204
    assert post(json.dumps([record(2), record(3), record(3)])).status_code == 204
    assert queued(hook) == [[record(1), record(2)], [record(3)]]


def test_records_without_an_id_are_never_taken_for_duplicates(hook):
    bare = {"type": "interaction.updated", "interaction_id": "i1", "queue_id": "q1"}
    assert post(json.dumps([bare])).status_code == 204
    assert post(json.dumps([bare])).status_code == 204
    assert queued(hook) == [[bare], [bare]]


def test_the_id_is_found_where_the_mapping_says(hook):
    hook.settings = {**hook.settings, "field_mapping": {"id": "meta.uid"}}
    hook.save()
    targets.hook_targets.clear()
    first = {"meta": {"uid": "u-1"}, "interaction_id": "i1", "queue_id": "q1", "id": "same"}
    second = {"meta": {"uid": "u-2"}, "interaction_id": "i2", "queue_id": "q1", "id": "same"}
    assert post(json.dumps([first, second])).status_code == 204
    assert post(json.dumps([first])).status_code == 204
    assert queued(hook) == [[first, second]]


def test_an_eventbridge_envelope_is_deduplicated_by_its_id(hook):
    envelope = {
        "version": "0",
        "id": "eb-1",
        "detail-type": "v2.users.{id}.activity",
        "source": "aws.partner/genesys.com/cloud/org/x",
        "detail": {"topicName": "v2.users.u1.activity", "eventBody": {"id": "u1"}},
    }
    assert post(json.dumps(envelope)).status_code == 204
    assert post(json.dumps([envelope])).status_code == 204
    assert queued(hook) == [[envelope]]


# -- limits and shapes ------------------------------------------------------------------------------


def test_a_body_above_the_limit_is_refused_with_413_and_a_reason(hook):
    big = json.dumps([record(1, payload={"pad": "x" * 3000})])
    response = post(big)
    assert response.status_code == 413
    assert "2048 bytes" in response.json()["error"]
    assert queued(hook) == []


def test_a_body_without_a_content_length_is_read_only_to_the_limit():
    # Chunked uploads declare no length: the view reads limit + 1 bytes, sees too many, and stops there.
    request = HttpRequest()
    request._stream = io.BytesIO(b"[" + b" " * 100_000 + b"]")
    with pytest.raises(Refused) as refused:
        intake._read_body(request, 2048)
    assert refused.value.status == 413
    assert request._stream.tell() == 2049


def test_a_body_exactly_at_the_limit_is_taken(hook):
    body = json.dumps([record(1)])
    body += " " * (2048 - len(body))
    assert post(body).status_code == 204


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty"),
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe\x00garbage", "JSON"),
        (b'"a string"', "JSON object"),
        (b"42", "JSON object"),
        (b"[1, 2]", "item 0 is not a JSON object"),
        (b'[{"id": "r1"}, "x"]', "item 1 is not a JSON object"),
        (b'{"id": "r1", "n": NaN}', "not valid JSON"),
        (b"[" * 1000 + b"]" * 1000, "JSON"),
        (b'{"detail-type": "x", "detail": {"eventBody": {}}}', "detail.topicName"),
        (b'{"detail-type": "x", "detail": "text"}', "detail.topicName"),
    ],
)
def test_an_unusable_body_is_refused_with_400_and_a_reason(hook, body, reason):
    response = post(body)
    assert response.status_code == 400
    assert reason in response.json()["error"]
    assert queued(hook) == []


# -- the validation handshake ----------------------------------------------------------------------


def test_a_validation_handshake_is_answered_200_with_the_token_and_applies_nothing(hook):
    response = Client().post("/hooks/crm/", data=b"", content_type="application/json", HTTP_VALIDATION_TOKEN="tok-123")
    assert response.status_code == 200
    assert response["Validation-Token"] == "tok-123"
    assert queued(hook) == []


def test_the_validation_token_is_echoed_on_a_delivery_too(hook):
    response = post(json.dumps([record(1)]), HTTP_VALIDATION_TOKEN="tok-456")
    assert response.status_code == 204
    assert response["Validation-Token"] == "tok-456"


def test_the_unsigned_validation_handshake_is_answered_alike_for_unknown_slugs(hook):
    # It is unsigned: answering it for known slugs only would confirm them to anyone who asks.
    replies = [
        Client().post(f"/hooks/{slug}/", data=b"", content_type="application/json", HTTP_VALIDATION_TOKEN="t")
        for slug in ("crm", "nope")
    ]
    assert [(r.status_code, r.content, r["Validation-Token"]) for r in replies] == [(200, b"", "t")] * 2
    assert queued(hook) == []


# -- which connections answer ----------------------------------------------------------------------


def test_unknown_disabled_and_other_kinds_of_connection_answer_as_a_known_slug_with_a_bad_signature(hook):
    # Another kind's settings holding a slug (as the database could): still not a webhook.
    other = Connection(name="Genesys", kind="genesys", settings={"region": "eu-west-1", "slug": "genesys"})
    other.save()
    off = Connection.of("webhook", name="Off", slug="off", enabled=False, webhook_secret=SECRET)
    off.save()
    body = json.dumps([record(1)])
    forged = post(body, secret="not-the-secret", HTTP_VALIDATION_TOKEN="v")
    assert forged.status_code == 401
    replies = [post(body, slug=slug, HTTP_VALIDATION_TOKEN="v") for slug in ("nope", "genesys", "off")]
    expected = (forged.status_code, forged.content, forged["Validation-Token"])
    assert [(r.status_code, r.content, r["Validation-Token"]) for r in replies] == [expected] * 3
    # Unsigned, stale or oversized (beyond the known slug's own 2 KiB limit): the same answers too.
    for headers in (
        {"HTTP_X_FLOORVIEW_SIGNATURE": ""},
        {"HTTP_X_FLOORVIEW_TIMESTAMP": "1"},
    ):
        known, unknown = (post(body, slug=slug, **headers) for slug in ("crm", "nope"))
        assert (known.status_code, known.content) == (unknown.status_code, unknown.content)
    big = json.dumps([record(n) for n in range(100)])
    assert len(big) > 2048
    known, unknown = (post(big, slug=slug, secret="not-the-secret") for slug in ("crm", "nope"))
    assert (known.status_code, known.content) == (unknown.status_code, unknown.content) == (401, forged.content)
    assert queued(hook) == []


def test_a_signed_delivery_over_the_connections_own_limit_is_still_413(hook):
    big = json.dumps([record(n) for n in range(100)])
    response = post(big)
    assert response.status_code == 413
    assert "2048" in response.json()["error"]
    assert queued(hook) == []


def test_only_post_is_allowed(hook):
    assert Client().get("/hooks/crm/").status_code == 405
    assert Client().put("/hooks/crm/", data=b"[]").status_code == 405


def test_a_flood_of_posts_looks_the_connection_up_once_and_a_disabled_one_stops_within_the_ttl(hook, monkeypatch):
    now = [1000.0]
    cache = HookTargets(clock=lambda: now[0])
    monkeypatch.setattr(targets, "hook_targets", cache)
    for n in range(20):
        assert post(json.dumps([record(n)])).status_code == 204
    assert cache.loads == 1
    Connection.objects.filter(pk=hook.pk).update(enabled=False)
    assert post(json.dumps([record(100)])).status_code == 204  # still cached
    now[0] += cache.ttl + 0.01
    assert post(json.dumps([record(101)])).status_code == 401  # as any unknown slug
    assert cache.ttl <= 5  # "within a few seconds"


# -- the queue cannot take it ------------------------------------------------------------------------


def test_a_full_queue_answers_503_with_retry_after_and_the_retry_is_not_a_duplicate(hook):
    queue = get_hook_queue()
    assert isinstance(queue, MemoryHookQueue)
    queue.backlog = 1
    assert post(json.dumps([record(1)])).status_code == 204
    refused = post(json.dumps([record(2)]))
    assert refused.status_code == 503
    assert int(refused["Retry-After"]) > 0
    assert queued(hook) == [[record(1)]]
    # Room again: the platform's retry of the refused batch is applied, not taken for a duplicate.
    assert post(json.dumps([record(2)])).status_code == 204
    assert queued(hook) == [[record(2)]]


# -- fuzzing ---------------------------------------------------------------------------------------------

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@FUZZ
@given(body=st.binary(max_size=3000))
def test_arbitrary_signed_bytes_get_a_2xx_or_a_4xx_never_an_error(hook, body):
    response = post(body)
    assert response.status_code in (204, 400, 413)
    if response.status_code != 204:
        assert response.json()["error"]


@FUZZ
@given(value=JSON)
def test_arbitrary_signed_json_is_either_queued_or_refused_with_400(hook, value):
    response = post(json.dumps(value))
    shaped = isinstance(value, dict) or (isinstance(value, list) and all(isinstance(v, dict) for v in value))
    if len(json.dumps(value)) > 2048:
        assert response.status_code == 413
    elif shaped and not any("detail-type" in v for v in (value if isinstance(value, list) else [value])):
        assert response.status_code == 204
    else:
        assert response.status_code in (204, 400)


@FUZZ
@given(body=st.binary(max_size=500), sig=st.text(max_size=80), stamp=st.text(max_size=20))
def test_arbitrary_headers_never_get_past_the_signature(hook, body, sig, stamp):
    sig = sig.encode("latin-1", "ignore").decode("latin-1").replace("\n", "").replace("\r", "")
    stamp = stamp.encode("latin-1", "ignore").decode("latin-1").replace("\n", "").replace("\r", "")
    response = post(body, HTTP_X_FLOORVIEW_SIGNATURE=sig, HTTP_X_FLOORVIEW_TIMESTAMP=stamp)
    assert response.status_code == 401


@FUZZ
@given(body=st.binary(max_size=500), sig=st.text(max_size=80))
def test_a_current_timestamp_with_any_other_signature_is_still_refused(hook, body, sig):
    # The timestamp is good, so every example reaches the HMAC comparison itself.
    sig = sig.encode("latin-1", "ignore").decode("latin-1").replace("\n", "").replace("\r", "")
    if sig.strip().lower() == signature(SECRET, body):
        return
    response = post(body, HTTP_X_FLOORVIEW_SIGNATURE=sig, HTTP_X_FLOORVIEW_TIMESTAMP=str(int(time.time())))
    assert response.status_code == 401


@pytest.mark.parametrize("stamp", ["inf", "1e309", "-1", "+" + "9" * 30, "１７００", "0x10", "nan"])
def test_odd_timestamps_are_refused(hook, stamp):
    body = b'{"interaction_id": "i1"}'
    response = post(body, HTTP_X_FLOORVIEW_SIGNATURE=signature(SECRET, body), HTTP_X_FLOORVIEW_TIMESTAMP=stamp)
    assert response.status_code == 401


def test_the_signature_is_hmac_sha256_of_the_raw_body_as_openssl_computes_it():
    # The well-known HMAC-SHA256 test vector: what a platform (or openssl dgst -hmac) computes.
    expected = "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    assert signature("key", b"The quick brown fox jumps over the lazy dog") == expected


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=2000))
def test_the_body_parser_raises_only_its_own_error(body):
    try:
        items = parse_body(body)
    except BodyError as exc:
        assert str(exc)
    else:
        assert all(isinstance(item, dict) for item in items)
