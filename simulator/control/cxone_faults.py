"""Faults of the NICE CXone stand-in (``cxone_*``): REST errors, tokens, reply shapes, link forms, redirects."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simulator.control.params import arm_rest_error, read_flag, read_number, read_path, read_text, set_lifetime
from simulator.control.registry import fault

if TYPE_CHECKING:
    from simulator.server import SimulatorServer


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
    return arm_rest_error(server, payload, 429, "/inContactAPI/", 2)


@fault(
    "cxone_token_lifetime",
    "Set expires_in of new CXone tokens; expired tokens get 401.",
    {"seconds": "lifetime (1 to 172800)", "existing": "also cut live tokens down to it (default false)"},
)
def _cxone_token_lifetime(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    return set_lifetime(server.cxone.tokens, payload)


@fault(
    "cxone_revoke_tokens",
    "Revoke every CXone access token (the next call with one gets 401), and refresh tokens if asked.",
    {"refresh": "also revoke refresh tokens, so only a new sign-in helps (default false)"},
)
def _cxone_revoke_tokens(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    return server.cxone.revoke(refresh=read_flag(payload, "refresh"))


@fault(
    "cxone_reply_shape",
    "Answer CXone's real-time calls in today's shape or wrapped in resultSet, as older versions do.",
    {"shape": "flat or resultSet"},
)
def _cxone_reply_shape(server: SimulatorServer, payload: dict[str, Any]) -> dict[str, Any]:
    server.cxone.set_shape(read_text(payload, "shape"))
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
    status = int(read_number(payload, "status", 307, 301, 308))
    count = int(read_number(payload, "count", 1, 1, 100_000))
    server.cxone.add_redirect(status, read_text(payload, "location"), read_path(payload, "/auth/token"), count)
    return server.cxone.settings()
