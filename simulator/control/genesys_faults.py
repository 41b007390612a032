"""Faults of the Genesys stand-in: REST errors, tokens, notification sockets and their frames.

Three act on the whole simulator (``refuse_credentials``, ``unreachable``,
``clear``); they stay among Genesys' because the listing always showed them there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simulator.control.params import (
    arm_rest_error,
    read_channel_id,
    read_flag,
    read_number,
    read_seconds,
    read_text,
    set_lifetime,
)
from simulator.control.registry import ControlError, action, fault
from simulator.genesys.sockets import envelope

if TYPE_CHECKING:
    from simulator.server import SimulatorServer


_SOCKET_CLOSING = (
    "socket_closing",
    "Send v2.system.socket_closing, then close the socket(s) with 1001 after a delay.",
    {"channel_id": "one channel (default: all)", "delay": "seconds before closing (default 60)"},
)


@action(*_SOCKET_CLOSING)
@fault(*_SOCKET_CLOSING)
def _socket_closing(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    delay = read_number(payload, "delay", 60.0, 0, 3600)
    return {"sockets": server.socket_closing(read_channel_id(server, payload), delay)}


@fault(
    "rest_error",
    "Answer the next HTTP calls under a path with an error status (path /oauth/token: the token endpoint).",
    {
        "status": "4xx/5xx (default 503)",
        "count": "how many calls (default 1)",
        "path": "path prefix (default /api/v2/)",
        "retry_after": "seconds, sent as Retry-After",
    },
)
def _rest_error(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    return arm_rest_error(server, payload, 503, "/api/v2/", None)


@fault(
    "revoke_tokens",
    "Revoke every issued token: the next REST call with one gets 401.",
    {"notify": "also send v2.system.token_revoked.{id} on every socket, as Genesys does (default false)"},
)
def _revoke_tokens(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    # Silent by default: callers that only want the REST 401 keep getting only that.
    notify = read_flag(payload, "notify")
    result = {"revoked": server.tokens.revoke_all()}
    if notify:
        result["notified"] = server.hub.send_system("token_revoked", None)
    return result


@fault(
    "refuse_credentials",
    "Make every token endpoint (Genesys, CXone sign-in and refresh, the feeds) refuse all credentials: 401.",
    {"seconds": "how long (default: until cleared)"},
)
def _refuse_credentials(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    server.faults.refuse_credentials(read_seconds(payload))
    return server.faults.describe()


@fault(
    "token_lifetime",
    "Set expires_in of new tokens; expired tokens get 401.",
    {"seconds": "lifetime (1 to 172800)", "existing": "also cut live tokens down to it (default false)"},
)
def _token_lifetime(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    return set_lifetime(server.tokens, payload)


@fault("drop_sockets", "Drop socket connections without a close frame.", {"channel_id": "one channel (default: all)"})
def _drop_sockets(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    sessions = server.hub.sessions(read_channel_id(server, payload))
    for session in sessions:
        session.abort()
    return {"dropped": len(sessions)}


@fault(
    "close_sockets",
    "Close socket connections with a close frame.",
    {"code": "close code (default 1001; 1011: server error)", "reason": "close reason", "channel_id": "one channel"},
)
def _close_sockets(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    code = int(read_number(payload, "code", 1001, 1000, 4999))
    reason = payload.get("reason", "closed by the simulator")
    if not isinstance(reason, str):
        raise ControlError("reason must be a string")
    return {"closed": server.hub.close_sockets(read_channel_id(server, payload), code, reason)}


@fault(
    "stall",
    "Keep sockets open but send nothing: no events, no heartbeats, no pongs.",
    {"seconds": "how long (default: until cleared)", "channel_id": "one channel (default: all)"},
)
def _stall(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    return {"stalled": server.hub.stall(read_channel_id(server, payload), read_seconds(payload))}


@fault(
    "no_longer_subscribed",
    "Drop a channel's subscriptions and say so with v2.system.no_longer_subscribed.{id}.",
    {"channel_id": "one channel (default: every channel with a socket)"},
)
def _no_longer_subscribed(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    sessions = server.hub.sessions(read_channel_id(server, payload))
    for session in sessions:
        server.hub.unsubscribe_all(session.channel)
        server.hub.send_system("no_longer_subscribed", session.channel.id)
    return {"channels": len(sessions)}


@fault(
    "system_message",
    "Send a bare v2.system.<kind>.{id} message on sockets (no other effect).",
    {"kind": "socket_closing, no_longer_subscribed or token_revoked", "channel_id": "one channel (default: all)"},
)
def _system_message(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    kind = read_text(payload, "kind")
    if kind not in ("socket_closing", "no_longer_subscribed", "token_revoked"):
        raise ControlError("kind must be socket_closing, no_longer_subscribed or token_revoked")
    return {"sent": server.hub.send_system(kind, read_channel_id(server, payload))}


MALFORMED_FRAMES = (
    "{",
    "[]",
    "not json at all",
    '{"topicName": 5}',
    '{"topicName": "v2.analytics.queues.x.observations", "version": "2", "eventBody": "oops"}',
)


@fault(
    "malformed_frames",
    "Send frames that are not valid notification messages.",
    {"count": "how many (default 5)", "channel_id": "one channel (default: all)"},
)
def _malformed_frames(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    count = int(read_number(payload, "count", len(MALFORMED_FRAMES), 1, 10_000))
    frames = [MALFORMED_FRAMES[i % len(MALFORMED_FRAMES)] for i in range(count)]
    return {"sockets": server.hub.send_text(read_channel_id(server, payload), frames), "frames": count}


@fault(
    "unknown_topics",
    "Send well-formed messages on topics nobody subscribed to.",
    {"count": "how many (default 3)", "channel_id": "one channel (default: all)"},
)
def _unknown_topics(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    count = int(read_number(payload, "count", 3, 1, 10_000))
    frames = [envelope(f"v2.simulator.unknown.{i}", {"n": i}) for i in range(count)]
    return {"sockets": server.hub.send_text(read_channel_id(server, payload), frames), "frames": count}


@fault(
    "oversized_frame",
    "Send one text frame far larger than clients accept (a well-formed message with padding).",
    {"bytes": "frame size (default 8 MiB)", "channel_id": "one channel (default: all)"},
)
def _oversized_frame(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    size = int(read_number(payload, "bytes", 8 << 20, 1024, 64 << 20))
    head = envelope("v2.simulator.oversized", {"padding": ""})
    text = head.replace('"padding":""', '"padding":"' + "x" * max(size - len(head), 0) + '"')
    return {"sockets": server.hub.send_text(read_channel_id(server, payload), [text]), "bytes": len(text)}


@fault(
    "evict_channel",
    "Remove channels as a 21st channel of the same OAuth client would (the socket closes with 1001).",
    {"channel_id": "one channel (default: every channel with a socket)"},
)
def _evict_channel(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    sessions = server.hub.sessions(read_channel_id(server, payload))
    for session in sessions:
        server.hub.evict(session.channel)
    return {"evicted": len(sessions)}


@fault(
    "kick_socket",
    "Open a second socket on channels, which closes the first with 1000.",
    {"channel_id": "one channel (default: every channel with a socket)", "hold": "seconds to hold it (default 5)"},
)
def _kick_socket(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    hold = read_number(payload, "hold", 5.0, 0, 3600)
    return {"kicked": server.kick(read_channel_id(server, payload), hold)}


@fault(
    "unreachable",
    "Play dead: drop every socket and cut every new HTTP or socket connection (control stays up).",
    {"seconds": "how long (default: until cleared)"},
)
def _unreachable(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    return {"dropped": server.go_unreachable(read_seconds(payload))}


@fault("clear", "Disarm every fault: HTTP errors, outages, stalls, second sockets, and the token lifetime.")
def _clear(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    server.clear_faults()
    return server.settings()
