"""Decoding generic feed frames: JSON text, MessagePack binary, JSON in binary; FrameError and nothing else."""

from __future__ import annotations

import json

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.feeds import decode as feed_decode
from streams.feeds.decode import FRAME_ERROR_KINDS, FrameError, decode_frame, frame_size

LIMIT = 1 << 20

# Values both JSON and MessagePack carry exactly: no NaN (NaN != NaN), no lone surrogates (not UTF-8),
# integers within MessagePack's 64 bits.
text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=20)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4))
records = st.dictionaries(text, values, max_size=6)


def must_be_records_or_frame_error(frame) -> None:
    try:
        result = decode_frame(frame, LIMIT)
    except FrameError as exc:
        assert exc.kind in FRAME_ERROR_KINDS
        return
    assert isinstance(result, list) and all(isinstance(r, dict) for r in result)


@settings(max_examples=400)
@given(st.binary(max_size=300))
def test_arbitrary_binary_frames_give_records_or_a_frame_error(frame):
    must_be_records_or_frame_error(frame)


@settings(max_examples=400)
@given(st.text(max_size=300))
def test_arbitrary_text_frames_give_records_or_a_frame_error(frame):
    must_be_records_or_frame_error(frame)


@settings(max_examples=200)
@given(st.lists(values, max_size=3).map(lambda vs: msgpack.packb(vs)) | values.map(msgpack.packb))
def test_arbitrary_messagepack_values_give_records_or_a_frame_error(frame):
    must_be_records_or_frame_error(frame)


@settings(max_examples=200)
@given(records)
def test_a_record_survives_every_encoding(record):
    as_json = json.dumps(record)
    assert decode_frame(as_json, LIMIT) == [record]
    assert decode_frame(msgpack.packb(record), LIMIT) == [record]
    assert decode_frame(as_json.encode(), LIMIT) == [record]  # JSON sent as a binary frame


@settings(max_examples=100)
@given(st.lists(records, max_size=5))
def test_a_list_of_records_survives_every_encoding(batch):
    assert decode_frame(json.dumps(batch), LIMIT) == batch
    assert decode_frame(msgpack.packb(batch), LIMIT) == batch
    assert decode_frame(json.dumps(batch).encode(), LIMIT) == batch


@pytest.mark.parametrize(
    ("frame", "kind"),
    [
        ("not json", "malformed_json"),
        ('{"a": ', "malformed_json"),
        ("1" * 5000, "malformed_json"),  # more digits than Python converts
        ("[" * 100_000 + "]" * 100_000, "malformed_json"),  # nesting past the recursion limit
        ("5", "not_a_record"),
        ('"text"', "not_a_record"),
        ('[{"a": 1}, 2]', "not_a_record"),
        (b"\xc1", "malformed_binary"),  # never used in MessagePack, not UTF-8 either
        (b"\xff\xfe", "malformed_binary"),
        (b"\x91" * 100_000 + b"\x80", "malformed_binary"),  # absurdly nested MessagePack
        (b"\x05", "not_a_record"),  # valid MessagePack: the integer 5
        (b"\x92\x01\x02", "not_a_record"),  # [1, 2]
    ],
)
def test_it_names_what_was_wrong(frame, kind):
    with pytest.raises(FrameError) as raised:
        decode_frame(frame, LIMIT)
    assert raised.value.kind == kind


def test_binary_json_is_accepted_only_when_it_is_not_messagepack():
    health_check = b'{"type": "health.check", "status": "ok"}'
    assert decode_frame(health_check, LIMIT) == [{"type": "health.check", "status": "ok"}]
    assert decode_frame(msgpack.packb({"a": 1}), LIMIT) == [{"a": 1}]


def test_oversized_frames_are_refused_without_being_decoded(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("an oversized frame was decoded")

    monkeypatch.setattr(feed_decode.json, "loads", boom)
    monkeypatch.setattr(feed_decode.msgpack, "unpackb", boom)
    record = {"padding": "x" * 2000}
    for frame in (json.dumps(record), msgpack.packb(record), json.dumps(record).encode()):
        with pytest.raises(FrameError) as raised:
            decode_frame(frame, 1024)
        assert raised.value.kind == "oversized_frame"


def test_the_limit_counts_utf8_bytes_not_characters():
    frame = json.dumps({"name": "é" * 600}, ensure_ascii=False)  # about 600 characters, 1200 bytes
    assert len(frame) < 1024 < frame_size(frame)
    with pytest.raises(FrameError):
        decode_frame(frame, 1024)
    assert decode_frame(frame, 2048) == [{"name": "é" * 600}]
