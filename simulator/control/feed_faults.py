"""Faults of the generic push and SSE feeds (``feed_*``): odd frames, stalls, drops, reconnect, busy, errors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simulator.control.params import read_number, read_queue_id, read_seconds
from simulator.control.registry import ControlError, fault

if TYPE_CHECKING:
    from simulator.server import SimulatorServer


def _feed(payload: dict[str, Any]) -> str | None:
    """Return which feed a fault aims at: "push", "sse", or None for both."""
    feed = payload.get("feed")
    if feed not in (None, "push", "sse"):
        raise ControlError("feed must be push or sse (default: both)")
    return feed


_FEED = {"feed": "push or sse (default: both)"}


@fault(
    "feed_malformed",
    "Send frames (push) or events (SSE) that hold no records: bad JSON, bad MessagePack, scalars.",
    _FEED | {"count": "how many per session (default 5)"},
)
def _feed_malformed(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    count = int(read_number(payload, "count", 5, 1, 10_000))
    return {"sessions": server.feeds.malformed(_feed(payload), count), "count": count}


@fault(
    "feed_oversized",
    "Send one well-formed record padded to a size (a new interaction that must not show).",
    _FEED | {"bytes": "size (default 2 MiB)", "queue_id": "its queue (default: the first)"},
)
def _feed_oversized(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    size = int(read_number(payload, "bytes", 2 << 20, 64, 64 << 20))
    queue_id = read_queue_id(server, payload) if payload.get("queue_id") is not None else None
    return {"sessions": server.feeds.oversized(_feed(payload), size, queue_id), "bytes": size}


@fault(
    "feed_stall",
    "Keep feed connections open but send nothing: no records, keepalives or pongs.",
    _FEED | {"seconds": "how long (default: until cleared)"},
)
def _feed_stall(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    return {"stalled": server.feeds.stall(_feed(payload), read_seconds(payload))}


@fault("feed_drop", "Cut feed connections without a close frame or end of stream.", _FEED)
def _feed_drop(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    return {"dropped": server.feeds.drop(_feed(payload))}


@fault(
    "feed_reconnect",
    "Send an SSE reconnect event (come back later), then end each event stream.",
    {"retry_after_ms": "the wait asked for, as retryAfterMs (default 1000; null: none given)"},
)
def _feed_reconnect(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if "retry_after_ms" not in payload or payload["retry_after_ms"] is not None:
        body["retryAfterMs"] = int(read_number(payload, "retry_after_ms", 1000, 0, 3_600_000))
    return {"streams": server.feeds.control_event("reconnect", body)}


@fault(
    "feed_busy",
    "Turn the next new SSE streams away: a reconnect event {retryAfterMs} is the first thing each reads.",
    {"streams": "how many new streams (default 1)", "retry_after_ms": "the wait asked for (default 1000)"},
)
def _feed_busy(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    server.feeds.busy_streams = int(read_number(payload, "streams", 1, 1, 1000))
    server.feeds.busy_retry_ms = int(read_number(payload, "retry_after_ms", 1000, 0, 3_600_000))
    return {"streams": server.feeds.busy_streams}


@fault(
    "feed_error",
    "Send an SSE error event {status, message}, then end each event stream (401 also revokes its token).",
    {"status": "HTTP-like status (default 500)", "message": "text (default: a generic one)"},
)
def _feed_error(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    status = int(read_number(payload, "status", 500, 100, 599))
    message = payload.get("message", "the feed had a problem")
    if not isinstance(message, str):
        raise ControlError("message must be a string")
    body = {"status": status, "message": message}
    return {"streams": server.feeds.control_event("error", body, revoke=status == 401)}
