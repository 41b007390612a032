"""Frames of the generic feeds (``docs/protocols/generic.md``) decoded into records.

Text frames are JSON; binary frames are MessagePack, or UTF-8 JSON when they
are not valid MessagePack (some feeds send their JSON health checks as
binary). A frame holds one record (an object) or a list of records.

Everything that is not that raises ``FrameError``, and nothing else is ever
raised: not ``ValueError``, not ``RecursionError`` from absurdly nested input,
not ``UnicodeDecodeError``. ``FrameError.kind`` says what was wrong, for the
health counters. A frame above the size limit is refused before any decoding.
"""

from __future__ import annotations

import json
from typing import Any

import msgpack

# What FrameError.kind can be (the names double as health counter names).
FRAME_ERROR_KINDS = ("oversized_frame", "malformed_json", "malformed_binary", "not_a_record")


class FrameError(ValueError):
    """A frame that holds no usable records; ``kind`` is one of ``FRAME_ERROR_KINDS``."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def frame_size(frame: str | bytes) -> int:
    """Return the size of FRAME in bytes on the wire (a text frame counts as UTF-8)."""
    if isinstance(frame, str):
        # isascii() is O(1) in CPython: only non-ASCII text pays for an encoding pass.
        return len(frame) if frame.isascii() else len(frame.encode("utf-8", "surrogatepass"))
    return len(frame)


def decode_frame(frame: str | bytes, max_bytes: int) -> list[dict[str, Any]]:
    """Return the records in one WebSocket frame (text: JSON; binary: MessagePack or UTF-8 JSON).

    Raise FrameError when the frame is above MAX_BYTES (without decoding it) or holds no records.
    """
    if isinstance(frame, str):
        if len(frame) > max_bytes or frame_size(frame) > max_bytes:
            raise FrameError("oversized_frame", f"text frame above {max_bytes} bytes")
        return records_of(_json(frame))
    if not isinstance(frame, bytes | bytearray | memoryview):
        raise FrameError("malformed_binary", f"a frame of type {type(frame).__name__}")
    data = bytes(frame)
    if len(data) > max_bytes:
        raise FrameError("oversized_frame", f"binary frame above {max_bytes} bytes")
    try:
        value = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except Exception:
        # msgpack raises ExtraData, FormatError, StackError, ValueError, UnicodeDecodeError, TypeError...:
        # whatever it was, the frame is not MessagePack. Maybe it is JSON sent as binary.
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise FrameError("malformed_binary", "binary frame is neither MessagePack nor UTF-8 JSON") from None
        try:
            value = _json(text)
        except FrameError:
            raise FrameError("malformed_binary", "binary frame is neither MessagePack nor UTF-8 JSON") from None
    return records_of(value)


def records_of(value: Any) -> list[dict[str, Any]]:
    """Return VALUE (a decoded frame) as a list of records; raise FrameError unless it is a record or a list of them."""
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list) and all(isinstance(item, dict) for item in value):
        return value
    raise FrameError("not_a_record", f"a frame holds a {type(value).__name__}, not a record or a list of records")


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        # ValueError covers JSONDecodeError and integers too long to convert; RecursionError deep nesting.
        raise FrameError("malformed_json", "not valid JSON") from None
