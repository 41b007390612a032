"""``/simulator/control``: named actions (``{"action": ...}``) and faults (``{"fault": ...}``).

Each entry is a small function registered with ``@action`` or ``@fault``; the
dispatcher looks the name up, and ``GET /simulator/control`` lists both
registries with their parameters. Adding a fault is adding one function.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from simulator.genesys.sockets import envelope
from simulator.presence import canonical

if TYPE_CHECKING:
    from simulator.server import SimulatorServer
    from simulator.tokens import TokenStore

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


def _path(payload: dict[str, Any], default: str) -> str:
    path = payload.get("path", default)
    if not isinstance(path, str) or not path.startswith("/"):
        raise ControlError("path must start with /")
    return path


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
    presence = canonical(_text(payload, "presence"))
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


def _arm_rest_error(
    server: SimulatorServer, payload: dict[str, Any], status: int, path: str, throttle_wait: int | None
) -> dict[str, Any]:
    """Arm an HTTP fault from PAYLOAD; STATUS and PATH are the defaults, THROTTLE_WAIT a 429's default Retry-After."""
    status = int(_number(payload, "status", status, 400, 599))
    count = int(_number(payload, "count", 1, 1, 100_000))
    path = _path(payload, path)
    retry_after = throttle_wait if status == 429 else None
    if payload.get("retry_after") is not None:
        retry_after = int(_number(payload, "retry_after", 0, 0, 86400))
    server.faults.add_rest_error(status, count, path, retry_after)
    return server.faults.describe()


def _set_lifetime(tokens: TokenStore, payload: dict[str, Any]) -> dict[str, Any]:
    """Set the lifetime of TOKENS' new tokens (and with ``existing``, of live ones) from PAYLOAD."""
    seconds = int(_number(payload, "seconds", -1, 1, 172800))
    shortened = tokens.set_lifetime(seconds, existing=_flag(payload, "existing"))
    return {"token_lifetime": seconds, "shortened": shortened}


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
    return _arm_rest_error(server, payload, 503, "/api/v2/", None)


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
    "Make every token endpoint (Genesys, CXone sign-in and refresh, the feeds) refuse all credentials: 401.",
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
    return _set_lifetime(server.tokens, payload)


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


# -- generic feeds: push and SSE (``feeds.py``) -------------------------------------------------


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
    count = int(_number(payload, "count", 5, 1, 10_000))
    return {"sessions": server.feeds.malformed(_feed(payload), count), "count": count}


@fault(
    "feed_oversized",
    "Send one well-formed record padded to a size (a new interaction that must not show).",
    _FEED | {"bytes": "size (default 2 MiB)", "queue_id": "its queue (default: the first)"},
)
def _feed_oversized(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    size = int(_number(payload, "bytes", 2 << 20, 64, 64 << 20))
    queue_id = _queue_id(server, payload) if payload.get("queue_id") is not None else None
    return {"sessions": server.feeds.oversized(_feed(payload), size, queue_id), "bytes": size}


@fault(
    "feed_stall",
    "Keep feed connections open but send nothing: no records, keepalives or pongs.",
    _FEED | {"seconds": "how long (default: until cleared)"},
)
def _feed_stall(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    return {"stalled": server.feeds.stall(_feed(payload), _seconds(payload))}


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
        body["retryAfterMs"] = int(_number(payload, "retry_after_ms", 1000, 0, 3_600_000))
    return {"streams": server.feeds.control_event("reconnect", body)}


@fault(
    "feed_busy",
    "Turn the next new SSE streams away: a reconnect event {retryAfterMs} is the first thing each reads.",
    {"streams": "how many new streams (default 1)", "retry_after_ms": "the wait asked for (default 1000)"},
)
def _feed_busy(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    server.feeds.busy_streams = int(_number(payload, "streams", 1, 1, 1000))
    server.feeds.busy_retry_ms = int(_number(payload, "retry_after_ms", 1000, 0, 3_600_000))
    return {"streams": server.feeds.busy_streams}


@fault(
    "feed_error",
    "Send an SSE error event {status, message}, then end each event stream (401 also revokes its token).",
    {"status": "HTTP-like status (default 500)", "message": "text (default: a generic one)"},
)
def _feed_error(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    status = int(_number(payload, "status", 500, 100, 599))
    message = payload.get("message", "the feed had a problem")
    if not isinstance(message, str):
        raise ControlError("message must be a string")
    body = {"status": status, "message": message}
    return {"streams": server.feeds.control_event("error", body, revoke=status == 401)}


# -- NICE CXone (``cxone.py``) ------------------------------------------------------------


@fault(
    "cxone_rest_error",
    "Answer the next CXone calls with an error status (429 with Retry-After by default; 503: unavailable).",
    {
        "status": "4xx/5xx (default 429)",
        "count": "how many calls (default 1)",
        "retry_after": "seconds, sent as Retry-After (default 2 for 429, none otherwise)",
        "path": "path prefix (default /inContactAPI/; /auth/token: the token endpoint)",
    },
)
def _cxone_rest_error(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    return _arm_rest_error(server, payload, 429, "/inContactAPI/", 2)


@fault(
    "cxone_token_lifetime",
    "Set expires_in of new CXone tokens; expired tokens get 401.",
    {"seconds": "lifetime (1 to 172800)", "existing": "also cut live tokens down to it (default false)"},
)
def _cxone_token_lifetime(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    return _set_lifetime(server.cxone.tokens, payload)


@fault(
    "cxone_revoke_tokens",
    "Revoke every CXone access token (the next call with one gets 401), and refresh tokens if asked.",
    {"refresh": "also revoke refresh tokens, so only a new sign-in helps (default false)"},
)
def _cxone_revoke_tokens(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    return server.cxone.revoke(refresh=_flag(payload, "refresh"))


@fault(
    "cxone_reply_shape",
    "Answer CXone's real-time calls in today's shape or wrapped in resultSet, as older versions do.",
    {"shape": "flat or resultSet"},
)
def _cxone_reply_shape(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    server.cxone.set_shape(_text(payload, "shape"))
    return server.cxone.settings()


@fault(
    "cxone_next_links",
    "Write CXone's _links as absolute URLs (as CXone does) or as server-relative paths.",
    {"form": "absolute or relative"},
)
def _cxone_next_links(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    server.cxone.set_link_form(str(payload.get("form", "")))
    return server.cxone.settings()


@fault(
    "cxone_retry_after_form",
    "Send the Retry-After of injected CXone faults (cxone_rest_error) as seconds or as an HTTP date.",
    {"form": "seconds or date"},
)
def _cxone_retry_after_form(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    server.cxone.set_retry_after_form(str(payload.get("form", "")))
    return server.cxone.settings()


@fault(
    "cxone_redirect",
    "Answer the next CXone calls under a path with a redirect (a client must not follow it).",
    {
        "location": "where to (an http or https URL)",
        "status": "301, 302, 303, 307 or 308 (default 307)",
        "path": "path prefix (default /auth/token; /inContactAPI/ or /.well-known/ too)",
        "count": "how many calls (default 1)",
    },
)
def _cxone_redirect(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    status = int(_number(payload, "status", 307, 301, 308))
    count = int(_number(payload, "count", 1, 1, 100_000))
    server.cxone.add_redirect(status, _text(payload, "location"), _path(payload, "/auth/token"), count)
    return server.cxone.settings()


# -- webhooks (``webhooks.py``): the simulator posts to Floorview -------------------------------


@action(
    "webhook_target",
    "Post the generic records to a Floorview webhook from now on (the live contacts first); no url: stop.",
    {
        "url": "e.g. http://127.0.0.1:8000/hooks/<slug>/ (empty or absent: stop posting)",
        "secret": "the webhook's signing secret",
        "eventbridge": "also forward Genesys notifications in EventBridge envelopes (default false)",
    },
)
def _webhook_target(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    url = payload.get("url")
    if url in (None, ""):
        server.webhooks.clear_target()
        return server.webhooks.describe()
    if not isinstance(url, str):
        raise ControlError("url must be a string")
    server.webhooks.set_target(url, _text(payload, "secret"), eventbridge=_flag(payload, "eventbridge"))
    return server.webhooks.describe()


def _webhook_probe(server: SimulatorServer, payload: dict[str, Any], *, kind: str) -> dict[str, Any]:
    count = int(_number(payload, "count", 1, 1, 100))
    return {"queued": server.webhooks.probe(kind, count)}


_PROBE_COUNT = {"count": "how many (default 1); the replies show in settings.webhook.probes"}
# Each probe of ``webhooks.PROBES`` is the fault webhook_<probe>.
_PROBES = {
    "duplicate": "Post the last delivered batch again (same ids): acknowledged, applied once.",
    "forged_signature": "Post a made-up contact signed with the wrong secret: 401.",
    "stale_timestamp": "Post a made-up contact, signed, stamped 10 minutes ago: 401.",
    "oversized_body": "Post a signed 2 MiB body (above the default 1 MiB limit): 413.",
    "garbage_body": "Post a signed body that is not JSON: 400.",
}
for _kind, _help in _PROBES.items():
    fault(f"webhook_{_kind}", _help, _PROBE_COUNT)(partial(_webhook_probe, kind=_kind))
del _kind, _help
