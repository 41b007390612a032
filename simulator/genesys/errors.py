"""Genesys' error replies and what every route reads from a request (JSON bodies, paging)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from aiohttp import web

from simulator.http_input import int_param


class ApiError(Exception):
    """Stop handling a request and answer with Genesys' error body."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or CODES.get(status, "error")
        self.headers = headers or {}


CODES = {
    400: "bad.request",
    401: "bad.credentials",
    403: "missing.any.permissions",
    404: "not.found",
    405: "method.not.allowed",
    429: "too.many.requests.retry.after",
    500: "internal.server.error",
    502: "bad.gateway",
    503: "service.unavailable",
    504: "gateway.timeout",
}


def error_response(status: int, message: str, code: str | None = None, headers: dict | None = None) -> web.Response:
    """Return a response with Genesys' error body ``{"message","code","status","contextId","details","errors"}``."""
    body = {
        "message": message,
        "code": code or CODES.get(status, "error"),
        "status": status,
        "contextId": str(uuid.uuid4()),
        "details": [],
        "errors": [],
    }
    return web.json_response(body, status=status, headers=headers)


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def page_params(request: web.Request, max_page_size: int) -> tuple[int, int]:
    """Return (pageSize, pageNumber) of REQUEST: 25 and 1 by default, the size cut to MAX_PAGE_SIZE."""
    page_size = int_param(request, "pageSize", 25, 1, bad_request)
    page_number = int_param(request, "pageNumber", 1, 1, bad_request)
    return min(page_size, max_page_size), page_number


async def json_body(request: web.Request) -> Any:
    try:
        return await request.json(loads=json.loads)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "The request body is not valid JSON") from None
