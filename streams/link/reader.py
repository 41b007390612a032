"""A socket's reader: every frame to the connector's ``handle``, and whatever ends the wire to ``Link.fail``.

One odd frame never ends the stream (a handler's error is counted and
logged); the wire's end always does, with a reason fit for the admin: the
close code and reason, refused credentials (then the loop waits for an
admin), or the failure the wire raised. A wire's own bug fails the link too,
since a link that proves itself by opening would otherwise look connected
for ever.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.frames import CloseCode

from streams import sanity
from streams.health import LinkHealth
from streams.link.failures import AuthFailed, LinkLost
from streams.link.sockets import Link, Socket
from streams.log_safe import safe_text

log = logging.getLogger(__name__)


class Handler(Protocol):
    """What a reader needs of its connector."""

    health: LinkHealth

    def handle(self, socket: Socket, frame: Any) -> None:
        """Interpret one frame from SOCKET."""
        ...


async def read(handler: Handler, link: Link, socket: Socket) -> None:
    """Hand every frame of SOCKET to HANDLER until the wire ends, then fail LINK with the reason."""
    health = handler.health
    auth = False
    try:
        async for frame in socket.ws:
            health.record_message()
            try:
                # Figures and times the parsers refuse are counted on this link's health.
                with sanity.counting(health.count):
                    handler.handle(socket, frame)
            except Exception:
                # One odd frame must never end the stream.
                health.count("handler_error")
                log.exception("%s: handling a frame failed", handler)
        close_reason = safe_text(socket.ws.close_reason or "", 123)
        reason = f"socket closed ({socket.ws.close_code} {close_reason})".strip()
    except ConnectionClosed as exc:
        if exc.sent is not None and exc.sent.code == CloseCode.MESSAGE_TOO_BIG:
            # Past max_size: websockets closed with 1009; the reconnect's snapshot fills the gap.
            health.count("oversized_frame")
        reason = f"socket closed abnormally ({exc.rcvd.code if exc.rcvd else 1006})"
    except LinkLost as exc:
        reason = str(exc) or "the stream failed"
    except AuthFailed as exc:
        # A wire that signs in as it goes (a poller, a stream that fetched a new token) may be refused.
        auth = True
        reason = str(exc) or "the credentials were refused"
    except (OSError, WebSocketException) as exc:
        reason = f"socket failed ({type(exc).__name__})"
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.exception("%s: reading %s failed", handler, socket.name)
        reason = f"the stream failed ({type(exc).__name__})"
    if not link.closed:
        link.fail(reason, auth=auth)
