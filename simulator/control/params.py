"""Reading a control request's parameters (each refusal a ControlError naming the parameter), and shared setters."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simulator.control.registry import ControlError

if TYPE_CHECKING:
    from simulator.server import SimulatorServer
    from simulator.tokens import TokenStore


def read_text(payload: dict[str, Any], key: str) -> str:
    """Return the non-empty string at KEY."""
    value = payload.get(key)
    if not isinstance(value, str) or not value:
        raise ControlError(f"{key} is required (a string)")
    return value


def read_number(payload: dict[str, Any], key: str, default: float, low: float, high: float) -> float:
    """Return the number at KEY (DEFAULT when absent), between LOW and HIGH."""
    value = payload.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ControlError(f"{key} must be a number from {low} to {high}")
    return float(value)


def read_flag(payload: dict[str, Any], key: str, default: bool = False) -> bool:
    """Return the boolean at KEY (DEFAULT when absent)."""
    value = payload.get(key, default)
    if not isinstance(value, bool):
        raise ControlError(f"{key} must be true or false")
    return value


def read_path(payload: dict[str, Any], default: str) -> str:
    """Return the path prefix at ``path`` (DEFAULT when absent)."""
    path = payload.get("path", default)
    if not isinstance(path, str) or not path.startswith("/"):
        raise ControlError("path must start with /")
    return path


def read_seconds(payload: dict[str, Any], key: str = "seconds") -> float | None:
    """Return a duration from PAYLOAD, or None (until cleared) when it is absent."""
    if payload.get(key) is None:
        return None
    return read_number(payload, key, 0, 0.001, 86400)


def read_queue_id(server: SimulatorServer, payload: dict[str, Any]) -> str:
    """Return ``queue_id``, a queue of the model."""
    queue_id = read_text(payload, "queue_id")
    if queue_id not in server.model.queues:
        raise ControlError(f"no queue {queue_id!r}")
    return queue_id


def read_channel_id(server: SimulatorServer, payload: dict[str, Any]) -> str | None:
    """Return ``channel_id``, a live channel, or None (every channel) when absent."""
    channel_id = payload.get("channel_id")
    if channel_id is None:
        return None
    if not isinstance(channel_id, str) or channel_id not in server.hub.channels:
        raise ControlError(f"no channel {channel_id!r}")
    return channel_id


def read_user_id(server: SimulatorServer, payload: dict[str, Any]) -> str:
    """Return ``user_id``, an agent of the model."""
    user_id = read_text(payload, "user_id")
    if user_id not in server.model.agents:
        raise ControlError(f"no agent {user_id!r}")
    return user_id


def arm_rest_error(
    server: SimulatorServer, payload: dict[str, Any], status: int, path: str, throttle_wait: int | None
) -> dict[str, Any]:
    """Arm an HTTP fault from PAYLOAD; STATUS and PATH are the defaults, THROTTLE_WAIT a 429's default Retry-After."""
    status = int(read_number(payload, "status", status, 400, 599))
    count = int(read_number(payload, "count", 1, 1, 100_000))
    path = read_path(payload, path)
    retry_after = throttle_wait if status == 429 else None
    if payload.get("retry_after") is not None:
        retry_after = int(read_number(payload, "retry_after", 0, 0, 86400))
    server.faults.add_rest_error(status, count, path, retry_after)
    return server.faults.describe()


def set_lifetime(tokens: TokenStore, payload: dict[str, Any]) -> dict[str, Any]:
    """Set the lifetime of TOKENS' new tokens (and with ``existing``, of live ones) from PAYLOAD."""
    seconds = int(read_number(payload, "seconds", -1, 1, 172800))
    shortened = tokens.set_lifetime(seconds, existing=read_flag(payload, "existing"))
    return {"token_lifetime": seconds, "shortened": shortened}
