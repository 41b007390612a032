"""Genesys notification frames → what each one means: routed by topic to the body parsers, never raising.

Everything in the parsing modules is pure: no I/O, no clocks unless passed in
(but the sane window of ``streams.sanity`` is reckoned from the wall clock).
The parts: ``values`` (times, intervals, counts, ids), ``queue_metrics``
(observation and aggregate metrics → queue fields, ``QueuePart``), ``users``
(presence and routing status, membership changes), ``replies`` (REST
replies) and this module, which reads a socket frame (or a notification
forwarded through EventBridge) and routes it by topic.

Anything that does not have the expected shape raises ``ParseError`` (REST)
or comes back as a ``Notice`` of kind "malformed" or "unknown" (socket
frames), so callers count and skip it; nothing here lets a bad message end a
connection.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import orjson

from streams.events import Event, assemble
from streams.vendors.genesys.queue_metrics import parse_observation
from streams.vendors.genesys.users import parse_queue_member, parse_user
from streams.vendors.genesys.values import as_object

_QUEUE_TOPIC = re.compile(r"^v2\.analytics\.queues\.(?P<id>[^.]+)\.observations$")
_QUEUE_USERS_TOPIC = re.compile(r"^v2\.routing\.queues\.(?P<id>[^.]+)\.users$")
_USER_TOPIC = re.compile(r"^v2\.users\.(?P<id>[^.?]+)(?:\.(?P<part>activity|presence|routingStatus)|\?(?P<combo>.+))$")
_SYSTEM_TOPIC = re.compile(
    r"^v2\.system\.(?P<what>socket_closing|no_longer_subscribed|token_revoked)(?:\.(?P<id>.+))?$"
)


@dataclass(frozen=True)
class Notice:
    """What one socket frame means to the connector.

    kind: "heartbeat", "pong", "metadata", "events", "socket_closing",
    "no_longer_subscribed", "token_revoked", "unknown" (a topic we cannot
    read) or "malformed". ``target`` is the id a system topic names.
    """

    kind: str
    events: tuple[Event, ...] = ()
    topic: str = ""
    target: str = ""
    detail: str = field(default="", compare=False)


def decode_frame(frame: str | bytes) -> Any:
    """Return one frame's JSON value, read as the standard library reads it; raise ValueError if it is not JSON.

    orjson reads a frame in under half the time of ``json.loads`` and, on every
    frame both read, to the same value (an integer beyond 64 bits comes back a
    float, but every figure and time that large is refused either way, see
    ``streams.sanity``). What orjson refuses and the standard library reads
    (NaN, Infinity, 1e400, lone surrogates, a BOM or UTF-16 in bytes) is read
    again by ``json.loads``, so such a frame means what it meant before.
    """
    try:
        return orjson.loads(frame)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(frame)
    except RecursionError:
        # Nesting deeper than the interpreter's stack is no notification (orjson stops at 1,024 levels).
        raise ValueError("nested too deeply") from None


def parse_frame(source: str, frame: str | bytes) -> Notice:
    """Return the meaning of one notification-socket frame (never raises)."""
    try:
        message = decode_frame(frame)
    except (ValueError, UnicodeDecodeError):
        return Notice("malformed", detail="not JSON")
    return parse_message(source, message)


def parse_message(source: str, message: Any) -> Notice:
    """Return the meaning of one decoded notification (``{"topicName", "eventBody"}``), never raising.

    The same whether it came over the socket or inside an EventBridge envelope's ``detail``.
    """
    if not isinstance(message, dict):
        return Notice("malformed", detail="not an object")
    topic = message.get("topicName")
    if not isinstance(topic, str):
        return Notice("malformed", detail="no topicName")
    try:
        return _parse_message(source, topic, message.get("eventBody"))
    except (ValueError, TypeError, AttributeError, KeyError, ArithmeticError) as exc:
        # ParseError is a ValueError; the others guard against shapes (and figures) no check foresaw.
        return Notice("malformed", topic=topic, detail=str(exc)[:200])


# A connector hears the same few thousand topics (its queues and their agents) again and again.
@lru_cache(maxsize=65_536)
def _events_route(topic: str) -> tuple[Callable[[str, str, Any], Any], str] | None:
    """Return the body parser of an events topic and the id the topic names, or None for any other topic."""
    if match := _QUEUE_TOPIC.match(topic):
        return parse_observation, match["id"]
    if match := _USER_TOPIC.match(topic):
        return parse_user, match["id"]
    if match := _QUEUE_USERS_TOPIC.match(topic):
        return parse_queue_member, match["id"]
    return None


def _parse_message(source: str, topic: str, body: Any) -> Notice:
    if topic == "channel.metadata":
        text = as_object(body, "eventBody").get("message")
        if text == "WebSocket Heartbeat":
            return Notice("heartbeat", topic=topic)
        if text == "pong":
            return Notice("pong", topic=topic)
        return Notice("metadata", topic=topic, detail=str(text)[:100])
    route = _events_route(topic)
    if route is not None:
        parse, ident = route
        # Most frames end here: the notice is built without its __init__ (its other fields keep their defaults).
        return assemble(Notice, {"kind": "events", "events": (parse(source, ident, body),), "topic": topic})
    if match := _SYSTEM_TOPIC.match(topic):
        return Notice(match["what"], topic=topic, target=match["id"] or "")
    return Notice("unknown", topic=topic)
