"""Socket addresses: one live feed per board, and a quiet refusal for every other path."""

from __future__ import annotations

import logging
from typing import Any

from channels.routing import URLRouter
from django.urls import path, re_path

from dashboard.consumers import BoardConsumer
from dashboard.handshake import SessionGate
from dashboard.origins import OriginCheck

log = logging.getLogger(__name__)

BOARD_PATH = "ws/boards/<slug:slug>/"


async def refuse_unknown_path(scope: dict, receive: Any, send: Any) -> None:
    """Refuse a socket to an address that serves nothing, before the handshake (the server answers 403)."""
    # Without this route the router raises, and Daphne answers 500 and logs a traceback for every probe.
    log.debug("refused a socket to unknown path %r", scope.get("path", "")[:200])
    message = await receive()
    if message["type"] == "websocket.connect":
        await send({"type": "websocket.close"})


def _routes(board_app: Any) -> list:
    return [path(BOARD_PATH, board_app), re_path(r"", refuse_unknown_path)]


# The consumer as routed; tests put a user in the scope themselves.
websocket_urlpatterns = _routes(BoardConsumer.as_asgi())


def socket_application() -> Any:
    """Return the WebSocket side of the site: origin check, then routing, then the cheap session gate."""
    # The origin and the path are checked before any session work, so probes cost no database time.
    return OriginCheck(URLRouter(_routes(SessionGate(BoardConsumer.as_asgi()))))
