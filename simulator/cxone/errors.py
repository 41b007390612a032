"""CXone's error replies: ``{"error", "errorDescription"}``, raised from anywhere in a handler."""

from __future__ import annotations

from aiohttp import web


class CxoneError(Exception):
    """Stop handling a request and answer ``{"error", "errorDescription"}``."""

    def __init__(self, status: int, error: str, description: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description
        self.headers = headers or {}


def error_response(status: int, error: str, description: str, headers: dict[str, str] | None = None) -> web.Response:
    """Return CXone's error body."""
    return web.json_response({"error": error, "errorDescription": description}, status=status, headers=headers)


def invalid(message: str) -> CxoneError:
    """Return the 400 for a bad query parameter (as ``int_param`` asks for it)."""
    return CxoneError(400, "InvalidParameter", f"{message}.")
