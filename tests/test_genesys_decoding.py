"""Socket frames are decoded with orjson: every frame means what it meant when ``json.loads`` read it, or is malformed.

orjson and the standard library differ on a few inputs (NaN and Infinity
literals, numbers beyond a double or 64-bit integers, lone surrogates, a BOM,
UTF-16 bytes). Each test here holds ``parse_frame`` to the meaning the
standard library's reading gives (``parse_message(json.loads(frame))``), with
the same refusals counted.
"""

import json
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams import sanity
from streams.vendors.genesys.parsers import decode_frame, parse_frame, parse_message

Q = "6a1b2c3d-0000-4000-8000-00000000000a"
U = "7b1b2c3d-0000-4000-8000-00000000000b"
T0 = "2026-11-22T08:00:00.000Z"
QUEUE_TOPIC = f"v2.analytics.queues.{Q}.observations"
USER_TOPIC = f"v2.users.{U}.activity"
BIG = "123456789012345678901234567890"  # beyond 64 bits: orjson reads it as a float


def raw_frame(topic: str, body: str) -> str:
    """Return a frame whose eventBody is the JSON text BODY, as it stands (literals json.dumps would not write)."""
    return f'{{"topicName": "{topic}", "version": "2", "eventBody": {body}}}'


def observation(metrics: str) -> str:
    """Return a queue observation frame of METRICS (JSON text), observed at T0."""
    group = f'{{"queueId": "{Q}", "mediaType": "voice"}}'
    body = f'{{"group": {group}, "data": [{{"interval": "{T0}/{T0}", "metrics": {metrics}}}]}}'
    return raw_frame(QUEUE_TOPIC, body)


def read(frame: str | bytes):
    """Return what parse_frame makes of FRAME and the refusals it counted."""
    counted: Counter[str] = Counter()
    with sanity.counting(lambda reason: counted.update([reason])):
        notice = parse_frame("c1", frame)
    return notice, counted


def read_as_before(frame: str | bytes):
    """Return what the standard library's reading of FRAME meant, and the refusals it counted."""
    counted: Counter[str] = Counter()
    with sanity.counting(lambda reason: counted.update([reason])):
        notice = parse_message("c1", json.loads(frame))
    return notice, counted


@pytest.mark.parametrize(
    ("frame", "kind", "refused"),
    [
        # A figure that is NaN, infinite or beyond 64 bits is refused and its message malformed, as before.
        (observation('[{"metric": "oWaiting", "stats": {"count": NaN}}]'), "malformed", {"bad_figure": 1}),
        (observation('[{"metric": "oWaiting", "stats": {"count": Infinity}}]'), "malformed", {"bad_figure": 1}),
        (observation('[{"metric": "oWaiting", "stats": {"count": 1e400}}]'), "malformed", {"bad_figure": 1}),
        (observation('[{"metric": "oWaiting", "stats": {"count": -1e400}}]'), "malformed", {"bad_figure": 1}),
        (observation(f'[{{"metric": "oWaiting", "stats": {{"count": {BIG}}}}}]'), "malformed", {"bad_figure": 1}),
        (observation(f'[{{"metric": "oWaiting", "stats": {{"count": -{BIG}}}}}]'), "malformed", {"bad_figure": 1}),
        # A wait that is NaN or huge costs its field only.
        (
            observation('[{"metric": "oLongestWaiting", "stats": {"count": 1, "calculatedMetricValue": NaN}}]'),
            "events",
            {"bad_figure": 1},
        ),
        (
            observation(f'[{{"metric": "oLongestWaiting", "stats": {{"count": 1, "calculatedMetricValue": {BIG}}}}}]'),
            "events",
            {"bad_figure": 1},
        ),
        # The same literals in what no field shows change nothing.
        (observation('[{"metric": "oInteracting", "stats": {"count": 2, "max": NaN, "sum": 1e400}}]'), "events", {}),
        (observation(f'[{{"metric": "oUserPresences", "qualifier": "x", "stats": {{"count": {BIG}}}}}]'), "events", {}),
        # A time in milliseconds beyond 64 bits (or infinite) costs its field, counted.
        (
            raw_frame(USER_TOPIC, f'{{"presence": {{"modifiedDate": {BIG}}}, "routingStatus": {{"status": "IDLE"}}}}'),
            "events",
            {"bad_time": 1},
        ),
        (
            raw_frame(USER_TOPIC, '{"presence": {"modifiedDate": Infinity}, "routingStatus": {"status": "IDLE"}}'),
            "events",
            {"bad_time": 1},
        ),
        # Duplicate keys: the last one counts, in both readings.
        (raw_frame(USER_TOPIC, '{"routingStatus": {"status": "OFF_QUEUE", "status": "IDLE"}}'), "events", {}),
        # Lone surrogates (escaped, or in the text itself) are read as the standard library reads them.
        (raw_frame(USER_TOPIC, '{"name": "A\\ud800", "routingStatus": {"status": "IDLE"}}'), "events", {}),
        (raw_frame(USER_TOPIC, '{"name": "A\ud800", "routingStatus": {"status": "IDLE"}}'), "events", {}),
        (raw_frame(USER_TOPIC, '{"routingStatus": {"status": "\\udc00"}}'), "events", {}),
    ],
)
def test_a_frame_orjson_reads_differently_means_what_it_meant_before(frame, kind, refused):
    notice, counted = read(frame)
    assert (notice, counted) == read_as_before(frame)
    assert notice.kind == kind
    assert counted == Counter(refused)


@pytest.mark.parametrize(
    "encode",
    [
        lambda text: text.encode(),
        lambda text: b"\xef\xbb\xbf" + text.encode(),  # a UTF-8 byte order mark
        lambda text: text.encode("utf-16"),
        lambda text: text.encode("utf-32-le"),
    ],
)
def test_a_frame_in_bytes_is_read_in_any_encoding_the_standard_library_reads(encode):
    text = raw_frame(USER_TOPIC, '{"name": "Zoë", "routingStatus": {"status": "IDLE"}}')
    notice, counted = read(encode(text))
    assert notice == parse_frame("c1", text)
    assert notice.kind == "events" and notice.events[0].name == "Zoë"
    assert not counted


@pytest.mark.parametrize(
    "frame",
    [
        b'{"topicName": "v2.users.x.activity", "eventBody": {"name": "\xff"}}',  # not UTF-8
        "\ufeff" + raw_frame(USER_TOPIC, "{}"),  # a BOM in text: refused by both
        raw_frame(USER_TOPIC, '{"name": "a\tb"}'),  # a raw control character in a string
        raw_frame(USER_TOPIC, "{}") + " trailing",
        "[" * 5_000 + "]" * 5_000,  # deeper than orjson reads
        "[" * 200_000 + "]" * 200_000,  # deeper than the interpreter's stack: json.loads raises RecursionError
        "",
        "NaN",
    ],
)
def test_a_frame_neither_reading_makes_sense_of_is_malformed_and_never_raises(frame):
    assert read(frame)[0].kind == "malformed"


def test_the_decoder_reads_nan_and_huge_numbers_as_the_standard_library_does():
    assert decode_frame('{"a": 1e400, "b": -Infinity}') == {"a": float("inf"), "b": float("-inf")}
    assert decode_frame("[NaN]")[0] != decode_frame("[NaN]")[0]  # a float NaN
    assert decode_frame(f"[{BIG}, 18446744073709551615, -9223372036854775808]")[1:] == [2**64 - 1, -(2**63)]
    with pytest.raises(ValueError):
        decode_frame("{")


scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=6)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=5,
)
metric_names = st.sampled_from(["oWaiting", "oInteracting", "oLongestWaiting", "oUserRoutingStatuses", "nOffered", "x"])


@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "metric": metric_names,
                "stats": st.dictionaries(st.sampled_from(["count", "calculatedMetricValue"]), json_values),
            },
            optional={"qualifier": json_values, "observations": json_values},
        ),
        max_size=4,
    )
)
def test_any_observation_means_the_same_read_either_way(metrics):
    frame = observation(json.dumps(metrics))
    assert read(frame) == read_as_before(frame)


@given(
    st.dictionaries(st.sampled_from(["presence", "routingStatus", "name", "status", "presenceDefinition"]), json_values)
)
def test_any_user_body_means_the_same_read_either_way(body):
    frame = raw_frame(USER_TOPIC, json.dumps(body))
    assert read(frame) == read_as_before(frame)
