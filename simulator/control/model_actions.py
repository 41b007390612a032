"""Actions on the model: pause and resume it, put contacts in a queue, move agents, change the arrival rate."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simulator.control.params import read_number, read_queue_id, read_text, read_user_id
from simulator.control.registry import ControlError, action
from simulator.presence import canonical

if TYPE_CHECKING:
    from simulator.server import SimulatorServer


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
    queue_id = read_queue_id(server, payload)
    count = int(read_number(payload, "count", 1, 1, 1000))
    contacts = [server.model.arrive(queue_id) for _ in range(count)]
    return {"contact_ids": [c.id for c in contacts], "queue": server.model.queue_truth(queue_id)}


@action(
    "set_presence",
    "Set an agent's presence now (BREAK, ON_QUEUE, Available, ...).",
    {"user_id": "agent id", "presence": "system presence"},
)
def _set_presence(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    user_id = read_user_id(server, payload)
    presence = canonical(read_text(payload, "presence"))
    server.model.set_presence(user_id, presence)
    return {"agent": server.model.agent_truth(user_id)}


@action(
    "set_membership",
    "Add an agent to a queue or remove it.",
    {"user_id": "agent id", "queue_id": "queue id", "joined": "true to add, false to remove"},
)
def _set_membership(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    user_id, queue_id = read_user_id(server, payload), read_queue_id(server, payload)
    joined = payload.get("joined", True)
    if not isinstance(joined, bool):
        raise ControlError("joined must be true or false")
    server.model.set_membership(user_id, queue_id, joined)
    return {"agent": server.model.agent_truth(user_id)}


@action("set_rate", "Change the arrival rate (contacts per second).", {"rate": "contacts per second"})
def _set_rate(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    rate = read_number(payload, "rate", -1, 0, 1000)
    server.model.set_rate(rate)
    return {"rate": rate}
