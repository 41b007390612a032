"""The control endpoint's registries: named actions and faults, how they are listed, and the dispatcher."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulator.server import SimulatorServer

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
    try:
        result = entry.run(server, payload)
    except ControlError:
        raise
    except ValueError as exc:
        # What the simulator's own setters refuse (a bad format, URL or presence) is the caller's mistake too.
        raise ControlError(str(exc)) from None
    return {"ok": True, kind: name, "result": result, "paused": server.model.paused}
