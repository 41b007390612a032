"""``/simulator/control``: named actions (``{"action": ...}``) and faults (``{"fault": ...}``).

Each entry is a small function registered with ``@action`` or ``@fault``; the
dispatcher looks the name up, and ``GET /simulator/control`` lists both
registries with their parameters. Adding a fault is adding one function.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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


@action(
    "socket_closing",
    "Send v2.system.socket_closing, then close the socket(s) with 1001 after a delay.",
    {"channel_id": "one channel (default: all)", "delay": "seconds before closing (default 60)"},
)
def _socket_closing(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    delay = _number(payload, "delay", 60.0, 0, 3600)
    return {"sockets": server.socket_closing(_channel_id(server, payload), delay)}


# -- faults ----------------------------------------------------------------------------


@fault(
    "rest_error",
    "Answer the next REST calls with an error status.",
    {"status": "4xx/5xx", "count": "how many calls (default 1)", "path": "path prefix", "retry_after": "seconds"},
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


@fault("revoke_tokens", "Revoke every issued token: the next REST call with one gets 401.")
def _revoke_tokens(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    return {"revoked": server.tokens.revoke_all()}


@fault("drop_sockets", "Drop socket connections without a close frame.", {"channel_id": "one channel (default: all)"})
def _drop_sockets(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    sessions = server.hub.sessions(_channel_id(server, payload))
    for session in sessions:
        session.abort()
    return {"dropped": len(sessions)}


@fault("clear", "Disarm every armed fault.")
def _clear(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    server.faults.clear()
    return server.faults.describe()
