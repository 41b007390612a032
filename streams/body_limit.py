"""An ASGI guard that refuses oversized webhook bodies before Django buffers them: the second layer.

The first layer is the web server itself (``python manage.py serve``, see
``dashboard_project.webserver``): it refuses any request whose body passes
``FLOORVIEW_MAX_REQUEST_BODY`` while the body arrives, before anything is
buffered. This guard is not redundant with it: under that server it applies
the webhook cap (``FLOORVIEW_WEBHOOK_MAX_BODY``) to ``/hooks/`` when the
server-wide cap is set higher, and under any other ASGI server (plain
``daphne``, ``runserver``, uvicorn), which may have read the whole body
already, it still keeps Django from buffering and parsing it.

Django's ASGI handler reads a request's whole body (spilling to a temporary
file) before any view runs, so a view's own size check bounds only what it
parses. For ``/hooks/`` (unauthenticated until the signature is checked) this
guard answers 413 as soon as ``Content-Length``, or the bytes actually
received, pass the hard cap. Each connection's own, smaller limit is still
applied by the view.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from django.core.exceptions import RequestAborted

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

TOO_LARGE = b'{"error": "the body is larger than this server accepts"}'


class BodyLimit:
    """Wrap an ASGI app so requests under PREFIX may carry at most LIMIT bytes of body."""

    def __init__(self, app: Callable, *, prefix: str, limit: int) -> None:
        self.app = app
        self.prefix = prefix
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            await _refuse(send)
            return
        received = 0
        started = False
        too_large = False

        async def limited_receive() -> dict[str, Any]:
            nonlocal received, too_large
            message = await receive()
            if message.get("type") == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    too_large = True
                    # Django stops reading and gives up on the request quietly; the 413 is ours to send.
                    raise RequestAborted("the body is over the limit")
            return message

        async def watched_send(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message.get("type") == "http.response.start"
            await send(message)

        await self.app(scope, limited_receive, watched_send)
        if too_large and not started:
            await _refuse(send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the view answers 400 for that
    return None


async def _refuse(send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(TOO_LARGE)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": TOO_LARGE})
