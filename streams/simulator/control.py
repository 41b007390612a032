"""``/simulator/control``: named actions (``{"action": ...}``) and faults (``{"fault": ...}``).

Each entry is a small function registered with ``@action`` or ``@fault``; the
dispatcher looks the name up, and ``GET /simulator/control`` lists both
registries with their parameters. Adding a fault is adding one function.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from streams.simulator.hub import envelope
from streams.simulator.presence import canonical

if TYPE_CHECKING:
    from streams.simulator.server import SimulatorServer

Run = Callable[["SimulatorServer", dict[str, Any]], Any]


class ControlError(ValueError):
    """A control request that cannot be carried out (answered with 400 and this reason)."""


@dataclass(frozen=True)
class Entry:
    """One registered action or fault."""

    name: str
    help: str
    params: dict[str, str]
    run: Run


ACTIONS: dict[str, Entry] = {}
FAULTS: dict[str, Entry] = {}


def _register(registry: dict[str, Entry], name: str, help: str, params: dict[str, str] | None) -> Callable[[Run], Run]:
    def decorate(run: Run) -> Run:
        registry[name] = Entry(name, help, params or {}, run)
        return run

    return decorate


def action(name: str, help: str, params: dict[str, str] | None = None) -> Callable[[Run], Run]:
    """Register an action under NAME."""
    return _register(ACTIONS, name, help, params)


def fault(name: str, help: str, params: dict[str, str] | None = None) -> Callable[[Run], Run]:
    """Register a fault under NAME."""
    return _register(FAULTS, name, help, params)


def describe() -> dict[str, Any]:
    """Return both registries as plain data (``GET /simulator/control``)."""

    def listing(registry: dict[str, Entry], key: str) -> list[dict[str, Any]]:
        return [{key: e.name, "help": e.help, "params": e.params} for e in registry.values()]

    return {"actions": listing(ACTIONS, "action"), "faults": listing(FAULTS, "fault")}


def dispatch(server: SimulatorServer, payload: Any) -> dict[str, Any]:
    """Carry out one control request; raise ControlError with a reason if it cannot be."""
    if not isinstance(payload, dict):
        raise ControlError("the body must be a JSON object")
    if "fault" in payload:
        registry, kind = FAULTS, "fault"
    elif "action" in payload:
        registry, kind = ACTIONS, "action"
    else:
        raise ControlError('say what to do: {"action": ...} or {"fault": ...}')
    name = payload[kind]
    entry = registry.get(name) if isinstance(name, str) else None
    if entry is None:
        raise ControlError(f"unknown {kind} {name!r}; known: {', '.join(registry)}")
    result = entry.run(server, payload)
    return {"ok": True, kind: name, "result": result, "paused": server.model.paused}


# -- parameter helpers -------------------------------------------------------------


def _text(payload: dict[str, Any], key: str) -> str:
    value = payload.get(key)
    if not isinstance(value, str) or not value:
        raise ControlError(f"{key} is required (a string)")
    return value


def _number(payload: dict[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = payload.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ControlError(f"{key} must be a number from {low} to {high}")
    return float(value)


def _flag(payload: dict[str, Any], key: str, default: bool = False) -> bool:
    value = payload.get(key, default)
    if not isinstance(value, bool):
        raise ControlError(f"{key} must be true or false")
    return value


def _seconds(payload: dict[str, Any], key: str = "seconds") -> float | None:
    """Return a duration from PAYLOAD, or None (until cleared) when it is absent."""
    if payload.get(key) is None:
        return None
    return _number(payload, key, 0, 0.001, 86400)


def _queue_id(server: SimulatorServer, payload: dict[str, Any]) -> str:
    queue_id = _text(payload, "queue_id")
    if queue_id not in server.model.queues:
        raise ControlError(f"no queue {queue_id!r}")
    return queue_id


def _channel_id(server: SimulatorServer, payload: dict[str, Any]) -> str | None:
    channel_id = payload.get("channel_id")
    if channel_id is None:
        return None
    if not isinstance(channel_id, str) or channel_id not in server.hub.channels:
        raise ControlError(f"no channel {channel_id!r}")
    return channel_id


def _user_id(server: SimulatorServer, payload: dict[str, Any]) -> str:
    user_id = _text(payload, "user_id")
    if user_id not in server.model.agents:
        raise ControlError(f"no agent {user_id!r}")
    return user_id


# -- actions --------------------------------------------------------------------------


@action("pause", "Freeze the model: no state changes until resume.")
def _pause(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    server.pause()
    return {"time": server.model.now}


@action("resume", "Unfreeze the model (no catch-up burst).")
def _resume(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    server.resume()
    return {"time": server.model.now}


@action("arrive", "Put new contacts into a queue now.", {"queue_id": "queue id", "count": "how many (default 1)"})
def _arrive(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    queue_id = _queue_id(server, payload)
    count = int(_number(payload, "count", 1, 1, 1000))
    contacts = [server.model.arrive(queue_id) for _ in range(count)]
    return {"contact_ids": [c.id for c in contacts], "queue": server.model.queue_truth(queue_id)}


@action(
    "set_presence",
    "Set an agent's presence now (BREAK, ON_QUEUE, Available, ...).",
    {"user_id": "agent id", "presence": "system presence"},
)
def _set_presence(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    user_id = _user_id(server, payload)
    try:
        presence = canonical(_text(payload, "presence"))
    except ValueError as exc:
        raise ControlError(str(exc)) from None
    server.model.set_presence(user_id, presence)
    return {"agent": server.model.agent_truth(user_id)}


@action(
    "set_membership",
    "Add an agent to a queue or remove it.",
    {"user_id": "agent id", "queue_id": "queue id", "joined": "true to add, false to remove"},
)
def _set_membership(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    user_id, queue_id = _user_id(server, payload), _queue_id(server, payload)
    joined = payload.get("joined", True)
    if not isinstance(joined, bool):
        raise ControlError("joined must be true or false")
    server.model.set_membership(user_id, queue_id, joined)
    return {"agent": server.model.agent_truth(user_id)}


@action("set_rate", "Change the arrival rate (contacts per second).", {"rate": "contacts per second"})
def _set_rate(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    rate = _number(payload, "rate", -1, 0, 1000)
    server.model.set_rate(rate)
    return {"rate": rate}


_SOCKET_CLOSING = (
    "socket_closing",
    "Send v2.system.socket_closing, then close the socket(s) with 1001 after a delay.",
    {"channel_id": "one channel (default: all)", "delay": "seconds before closing (default 60)"},
)


@action(*_SOCKET_CLOSING)
@fault(*_SOCKET_CLOSING)
def _socket_closing(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    delay = _number(payload, "delay", 60.0, 0, 3600)
    return {"sockets": server.socket_closing(_channel_id(server, payload), delay)}


# -- faults ----------------------------------------------------------------------------


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
    status = int(_number(payload, "status", 503, 400, 599))
    count = int(_number(payload, "count", 1, 1, 100_000))
    path = payload.get("path", "/api/v2/")
    if not isinstance(path, str) or not path.startswith("/"):
        raise ControlError("path must start with /")
    retry_after = payload.get("retry_after")
    if retry_after is not None:
        retry_after = int(_number(payload, "retry_after", 0, 0, 86400))
    server.faults.add_rest_error(status, count, path, retry_after)
    return server.faults.describe()


@fault(
    "revoke_tokens",
    "Revoke every issued token: the next REST call with one gets 401.",
    {"notify": "also send v2.system.token_revoked.{id} on every socket, as Genesys does (default false)"},
)
def _revoke_tokens(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    # Silent by default: callers that only want the REST 401 keep getting only that.
    notify = _flag(payload, "notify")
    result = {"revoked": server.tokens.revoke_all()}
    if notify:
        result["notified"] = server.hub.send_system("token_revoked", None)
    return result


@fault(
    "refuse_credentials",
    "Make the token endpoint refuse every client's credentials (401 invalid_client).",
    {"seconds": "how long (default: until cleared)"},
)
def _refuse_credentials(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    server.faults.refuse_credentials(_seconds(payload))
    return server.faults.describe()


@fault(
    "token_lifetime",
    "Set expires_in of new tokens; expired tokens get 401.",
    {"seconds": "lifetime (1 to 172800)", "existing": "also cut live tokens down to it (default false)"},
)
def _token_lifetime(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    seconds = int(_number(payload, "seconds", -1, 1, 172800))
    shortened = server.tokens.set_lifetime(seconds, existing=_flag(payload, "existing"))
    return {"token_lifetime": seconds, "shortened": shortened}


@fault("drop_sockets", "Drop socket connections without a close frame.", {"channel_id": "one channel (default: all)"})
def _drop_sockets(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    sessions = server.hub.sessions(_channel_id(server, payload))
    for session in sessions:
        session.abort()
    return {"dropped": len(sessions)}


@fault(
    "close_sockets",
    "Close socket connections with a close frame.",
    {"code": "close code (default 1001; 1011: server error)", "reason": "close reason", "channel_id": "one channel"},
)
def _close_sockets(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    code = int(_number(payload, "code", 1001, 1000, 4999))
    reason = payload.get("reason", "closed by the simulator")
    if not isinstance(reason, str):
        raise ControlError("reason must be a string")
    return {"closed": server.hub.close_sockets(_channel_id(server, payload), code, reason)}


@fault(
    "stall",
    "Keep sockets open but send nothing: no events, no heartbeats, no pongs.",
    {"seconds": "how long (default: until cleared)", "channel_id": "one channel (default: all)"},
)
def _stall(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    return {"stalled": server.hub.stall(_channel_id(server, payload), _seconds(payload))}


@fault(
    "no_longer_subscribed",
    "Drop a channel's subscriptions and say so with v2.system.no_longer_subscribed.{id}.",
    {"channel_id": "one channel (default: every channel with a socket)"},
)
def _no_longer_subscribed(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    sessions = server.hub.sessions(_channel_id(server, payload))
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
    kind = _text(payload, "kind")
    if kind not in ("socket_closing", "no_longer_subscribed", "token_revoked"):
        raise ControlError("kind must be socket_closing, no_longer_subscribed or token_revoked")
    return {"sent": server.hub.send_system(kind, _channel_id(server, payload))}


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
    count = int(_number(payload, "count", len(MALFORMED_FRAMES), 1, 10_000))
    frames = [MALFORMED_FRAMES[i % len(MALFORMED_FRAMES)] for i in range(count)]
    return {"sockets": server.hub.send_text(_channel_id(server, payload), frames), "frames": count}


@fault(
    "unknown_topics",
    "Send well-formed messages on topics nobody subscribed to.",
    {"count": "how many (default 3)", "channel_id": "one channel (default: all)"},
)
def _unknown_topics(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    count = int(_number(payload, "count", 3, 1, 10_000))
    frames = [envelope(f"v2.simulator.unknown.{i}", {"n": i}) for i in range(count)]
    return {"sockets": server.hub.send_text(_channel_id(server, payload), frames), "frames": count}


@fault(
    "oversized_frame",
    "Send one text frame far larger than clients accept (a well-formed message with padding).",
    {"bytes": "frame size (default 8 MiB)", "channel_id": "one channel (default: all)"},
)
def _oversized_frame(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    size = int(_number(payload, "bytes", 8 << 20, 1024, 64 << 20))
    head = envelope("v2.simulator.oversized", {"padding": ""})
    text = head.replace('"padding":""', '"padding":"' + "x" * max(size - len(head), 0) + '"')
    return {"sockets": server.hub.send_text(_channel_id(server, payload), [text]), "bytes": len(text)}


@fault(
    "evict_channel",
    "Remove channels as a 21st channel of the same OAuth client would (the socket closes with 1001).",
    {"channel_id": "one channel (default: every channel with a socket)"},
)
def _evict_channel(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    sessions = server.hub.sessions(_channel_id(server, payload))
    for session in sessions:
        server.hub.evict(session.channel)
    return {"evicted": len(sessions)}


@fault(
    "kick_socket",
    "Open a second socket on channels, which closes the first with 1000.",
    {"channel_id": "one channel (default: every channel with a socket)", "hold": "seconds to hold it (default 5)"},
)
def _kick_socket(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    hold = _number(payload, "hold", 5.0, 0, 3600)
    return {"kicked": server.kick(_channel_id(server, payload), hold)}


@fault(
    "unreachable",
    "Play dead: drop every socket and cut every new HTTP or socket connection (control stays up).",
    {"seconds": "how long (default: until cleared)"},
)
def _unreachable(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    return {"dropped": server.go_unreachable(_seconds(payload))}


@fault("clear", "Disarm every fault: HTTP errors, outages, stalls, second sockets, and the token lifetime.")
def _clear(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    server.clear_faults()
    return server.settings()
