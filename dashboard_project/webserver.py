"""Floorview's web server: Daphne, refusing request bodies over a hard cap as they arrive.

Daphne is a Twisted web server, and Twisted reads a request's whole body
(into a temporary file past 100 KB) before Daphne hands the request to the
ASGI application, so no ASGI middleware can refuse a huge body in time: a
request declaring ``Content-Length: 2000000000`` would be written to disk
first, unauthenticated. Here the refusal happens in the server itself:

- a declared ``Content-Length`` over the cap is answered 413 as soon as the
  headers are in, before a byte of body is read or a file is opened (and a
  client that sent ``Expect: 100-continue`` is not invited to send it);
- a chunked body is counted as it arrives and answered 413 once the count
  passes the cap; what arrives after that is dropped, so the server never
  holds more than the cap.

The connection is closed after the 413. This covers HTTP/1.x, the only HTTP
Daphne speaks here (its HTTP/2 needs the optional h2 package and TLS, which
Floorview does not install). The cap is ``FLOORVIEW_MAX_REQUEST_BODY``
for every path; ``streams.body_limit`` still applies the (possibly smaller)
webhook cap inside the application. Refusals are logged at most once a
minute, with a count of the others.

WebSockets are bounded in both directions:

- what a client sends: a message or frame over ``CLIENT_MESSAGE_CAP``
  (64 KiB; the page sends small JSON) fails the connection. Autobahn
  applies its message limit to what the server sends too, so that limit is
  checked here for client messages only: a board's snapshot may be larger;
- what the server writes to a client that does not read: the board socket
  closes a page that leaves ``FLOORVIEW_SOCKET_UNREAD_CAP`` bytes
  unacknowledged, but acknowledgements are the client's word and can be
  faked. The transport itself is the backstop: each WebSocket registers a
  streaming producer with its transport, which Twisted pauses once more
  than its ``bufferSize`` waits to be written; every byte written while
  paused is counted, and past ``FLOORVIEW_SOCKET_BUFFER_CAP`` the connection
  is aborted (the buffered bytes are dropped, not sent). The count starts
  over when Twisted resumes the producer, which it does only once the
  buffer is empty.

Its listening sockets take ``FLOORVIEW_LISTEN_BACKLOG`` waiting connections
(Twisted's default is 50): after a deploy or a network blip every viewer
comes back at once, and a short queue refuses most of them. With
``FLOORVIEW_REUSE_PORT`` several such processes listen on one port
(``SO_REUSEPORT``), and the kernel spreads connections over them.

``python manage.py serve`` runs this server with the same arguments as
``daphne`` (the application defaults to ``dashboard_project.asgi:application``).
"""

from __future__ import annotations

import io
import logging
from pprint import pformat
from typing import Any

import txaio
from autobahn.websocket import protocol as autobahn_protocol
from daphne.cli import CommandLineInterface
from daphne.http_protocol import HTTPFactory, WebRequest
from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol
from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

from dashboard_project.app_inbox import LeanInboxServer
from dashboard_project.listening import reuse_port, with_backlog
from streams.body_limit import TOO_LARGE
from streams.log_throttle import ThrottledLog

log = logging.getLogger(__name__)
# One line per kind of refusal a minute at most, with a count: unauthenticated clients cause these as fast as
# they like, on any path.
refusal_log = ThrottledLog(log, 60.0)

DEFAULT_APPLICATION = "dashboard_project.asgi:application"
# The largest WebSocket message (and frame) a client may send: the page sends small JSON (filters, acks).
CLIENT_MESSAGE_CAP = 64 * 1024

REFUSAL = (
    b"HTTP/1.1 413 Content Too Large\r\n"
    b"Content-Type: application/json\r\n"
    b"Content-Length: %d\r\n"
    b"Connection: close\r\n"
    b"\r\n" % len(TOO_LARGE)
) + TOO_LARGE


class BodyLimitedRequest(WebRequest):
    """Daphne's HTTP request, refusing a body larger than the server's ``max_request_body`` before storing it."""

    refused = False
    received = 0

    def gotLength(self, length: int | None) -> None:
        # Twisted calls this once the headers are in, to open the body's buffer (a file for a large one).
        if length is not None and length > self.server.max_request_body:
            self.refuse()
            return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self.refused:
            return  # already answered; the rest is dropped as it arrives
        self.received += len(data)
        if self.received > self.server.max_request_body:
            # Only a chunked body gets here: a declared length over the cap was refused with the headers.
            self.refuse()
            return
        super().handleContentChunk(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        # A refused body can still end within the read that passed the cap; it must not reach the application.
        if not self.refused:
            super().requestReceived(command, path, version)

    def refuse(self) -> None:
        """Answer 413 and close the connection, dropping whatever part of the body was kept."""
        self.refused = True
        if getattr(self, "content", None) is not None:
            self.content.close()
        # Daphne and Twisted read ``content`` later (on close, or if the body ends in this same read).
        self.content = io.BytesIO()
        # Twisted sends "100 Continue" after this returns if the client asked for it; it must not be invited.
        self.requestHeaders.removeHeader(b"expect")
        channel = self.channel
        channel.transport.write(REFUSAL)
        # Stops reading at once and closes once the answer is written; no request follows on this connection.
        channel.loseConnection()
        method = getattr(channel, "_command", b"?")
        path = getattr(channel, "_path", b"?")
        peer = f"{self.client.host}:{self.client.port}" if hasattr(self.client, "port") else None
        # The request line is the client's: quoted and cut short so it cannot forge log lines, and
        # throttled so a flood of refusals cannot flood the log.
        shown_path = path.decode("ascii", "replace")[:200]
        refusal_log.log(
            "413",  # one key for all: paths are the client's to vary
            logging.WARNING,
            "Refused %r %r from %s: the body is over %d bytes",
            method.decode("ascii", "replace")[:20],
            shown_path,
            peer,
            self.server.max_request_body,
        )
        self.server.log_action(
            "http",
            "complete",
            {
                "path": path.decode("ascii", "replace"),
                "status": 413,
                "method": method.decode("ascii", "replace"),
                "client": peer,
                "time_taken": 0,
                "size": len(TOO_LARGE),
            },
        )


class BodyLimitedHTTPFactory(HTTPFactory):
    """Daphne's HTTP factory, building channels whose requests are ``BodyLimitedRequest``."""

    def buildProtocol(self, addr):
        protocol = super().buildProtocol(addr)
        protocol.requestFactory = BodyLimitedRequest
        return protocol


@implementer(IPushProducer)
class WriteBacklog:
    """The transport's producer for one WebSocket: counts what is written while Twisted says the buffer is full.

    Twisted calls ``pauseProducing`` when more than the transport's
    ``bufferSize`` waits to be written and ``resumeProducing`` once all of it
    is written, so the bytes buffered are at most ``bufferSize``, the write
    that filled it, and ``paused_bytes``.
    """

    def __init__(self, protocol: BufferCappedWebSocketProtocol, cap: int) -> None:
        self.protocol = protocol
        self.cap = cap
        self.paused = False
        self.paused_bytes = 0
        self.closed = False  # the connection is lost or being aborted: nothing more is written

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        self.paused_bytes = 0

    def stopProducing(self) -> None:
        self.closed = True

    def wrote(self, size: int) -> None:
        """Count SIZE bytes about to be written; abort the connection once the backlog passes the cap."""
        if not self.paused or self.closed:
            return
        self.paused_bytes += size
        if self.paused_bytes > self.cap:
            self.closed = True
            self.protocol.abort_slow_reader(self.paused_bytes)


class BufferCappedWebSocketProtocol(WebSocketProtocol):
    """Daphne's WebSocket protocol, aborting a client that leaves over the server's ``socket_buffer_cap`` unread."""

    backlog: WriteBacklog | None = None

    def connectionMade(self) -> None:
        super().connectionMade()
        transport = self.transport
        # Daphne hands over the HTTP channel's transport with the channel still registered as its producer.
        transport.unregisterProducer()
        self.backlog = WriteBacklog(self, self.factory.server_class.socket_buffer_cap)
        transport.registerProducer(self.backlog, True)

    def onMessageFrameBegin(self, length: int) -> None:
        # Autobahn's own message limit is off (see BufferCappedWebSocketFactory): client messages are checked here.
        cap = self.factory.client_message_cap
        size = self.message_data_total_length + length
        if not self.failedByMe and 0 < cap < size:
            self.wasMaxMessagePayloadSizeExceeded = True
            self._max_message_size_exceeded(size, cap, f"a client message of {size} bytes is over {cap}")
        super().onMessageFrameBegin(length)

    def handle_reply(self, message: dict) -> None:
        # Daphne drops a close's reason; the page reads from it how long to spread its return over
        # (dashboard.protocol.spread_reason), so a close that carries one is sent here, reason and all.
        reason = message.get("reason") if message.get("type") == "websocket.close" else None
        if reason and self.state != self.STATE_CONNECTING:
            self.sendClose(code=message.get("code") or 1000, reason=str(reason)[:120])
            return
        super().handle_reply(message)

    def sendData(self, data: bytes, sync: bool = False, chopsize: int | None = None) -> None:
        # Every byte autobahn sends (frames, pings, closes) comes through here, queued or not.
        if self.backlog is not None:
            if self.backlog.closed:
                return
            self.backlog.wrote(len(data))
            if self.backlog.closed:
                return
        super().sendData(data, sync, chopsize)

    def abort_slow_reader(self, backlog: int) -> None:
        """Drop the connection at once: a close frame would only wait behind what the client does not read."""
        address = getattr(self, "client_addr", None)
        request = getattr(self, "request", None)
        refusal_log.log(
            ("ws-backlog",),
            logging.WARNING,
            "Aborted the WebSocket of %s (%r): it left over %d bytes unread",
            f"{address[0]}:{address[1]}" if address else None,
            request.path[:200] if request is not None else "?",
            backlog,
        )
        self.transport.abortConnection()


def _pformat_when_debugging(value: Any) -> str:
    """autobahn's ``pformat``, skipped unless its debug lines are on.

    autobahn formats its whole configuration for a debug line on every connection, whatever the log
    level: a quarter of a handshake's time on the event loop in a reconnect storm (bench/storm.py).
    """
    if isinstance(value, dict) or txaio.get_global_log_level() in ("debug", "trace"):
        return pformat(value)  # a dict is autobahn's timings, formatted only when asked for
    return ""


autobahn_protocol.pformat = _pformat_when_debugging


class BufferCappedWebSocketFactory(WebSocketFactory):
    """Daphne's WebSocket factory, building ``BufferCappedWebSocketProtocol``, its message limit for clients only."""

    protocol = BufferCappedWebSocketProtocol
    client_message_cap = CLIENT_MESSAGE_CAP

    def setProtocolOptions(self, *, maxMessagePayloadSize: int | None = None, **options) -> None:
        # Autobahn applies its message limit to what the server sends as well: a board whose snapshot is
        # larger would lose every viewer. The limit (Daphne's --websocket-max-message-size) is kept for
        # client messages, which the protocol checks itself; what the server sends is bounded by the
        # write backlog cap instead. The frame limit is autobahn's own, and applies to client frames only.
        if maxMessagePayloadSize is not None:
            self.client_message_cap = maxMessagePayloadSize
            options["maxMessagePayloadSize"] = 0
        super().setProtocolOptions(**options)


class FloorviewServer(LeanInboxServer):
    """Daphne's server with a hard cap on every request body and on what a WebSocket client may leave unread.

    Each connection's messages reach its application through a small ``AppInbox`` (dashboard_project.app_inbox).

    ``max_request_body`` defaults to ``FLOORVIEW_MAX_REQUEST_BODY``, ``socket_buffer_cap`` to
    ``FLOORVIEW_SOCKET_BUFFER_CAP``, and client WebSocket messages to ``CLIENT_MESSAGE_CAP``. Its
    listening sockets take ``FLOORVIEW_LISTEN_BACKLOG`` waiting connections (``listen_backlog``).
    """

    def __init__(
        self,
        *args,
        max_request_body: int | None = None,
        socket_buffer_cap: int | None = None,
        listen_backlog: int | None = None,
        **kwargs,
    ) -> None:
        kwargs.setdefault("websocket_max_message_size", CLIENT_MESSAGE_CAP)
        kwargs.setdefault("websocket_max_frame_size", CLIENT_MESSAGE_CAP)
        super().__init__(*args, **kwargs)
        from django.conf import settings

        if max_request_body is None:
            max_request_body = settings.FLOORVIEW["MAX_REQUEST_BODY"]
        if socket_buffer_cap is None:
            socket_buffer_cap = settings.FLOORVIEW["SOCKET_BUFFER_CAP"]
        self.max_request_body = int(max_request_body)
        self.socket_buffer_cap = int(socket_buffer_cap)
        if listen_backlog is None:
            listen_backlog = settings.FLOORVIEW["LISTEN_BACKLOG"]
        # Twisted listens with a backlog of 50: a reconnect storm of a few thousand viewers overflows it,
        # and the kernel drops or refuses the rest, which the pages then retry on top of the next ones.
        self.endpoints = [with_backlog(endpoint, int(listen_backlog)) for endpoint in self.endpoints]
        if settings.FLOORVIEW["REUSE_PORT"]:
            self.endpoints = [reuse_port(endpoint, int(listen_backlog)) for endpoint in self.endpoints]

    # ``Server.run`` builds Daphne's own factory and listens with it at once; taking the assignment over is
    # the one place to put ours in without repeating ``run``. Daphne's factory is dropped unused.
    @property
    def http_factory(self) -> HTTPFactory:
        return self._http_factory

    @http_factory.setter
    def http_factory(self, factory: HTTPFactory) -> None:
        if not isinstance(factory, BodyLimitedHTTPFactory):
            factory = BodyLimitedHTTPFactory(self)
        self._http_factory = factory

    # The same for the WebSocket factory, which ``run`` builds and configures right after.
    @property
    def ws_factory(self) -> WebSocketFactory:
        return self._ws_factory

    @ws_factory.setter
    def ws_factory(self, factory: WebSocketFactory) -> None:
        if not isinstance(factory, BufferCappedWebSocketFactory):
            factory = BufferCappedWebSocketFactory(self, server=self.server_name)
        self._ws_factory = factory


class ServeCommandLine(CommandLineInterface):
    """Daphne's command line (same arguments) running ``FloorviewServer``; the application is optional."""

    description = (
        "Floorview's web server: Daphne with hard caps on request bodies (FLOORVIEW_MAX_REQUEST_BODY), "
        "on what a WebSocket client may leave unread (FLOORVIEW_SOCKET_BUFFER_CAP) and on client WebSocket messages"
    )
    server_class = FloorviewServer

    def __init__(self) -> None:
        super().__init__()
        for action in self.parser._actions:
            if action.dest == "application":
                # Daphne's parser makes it required; every Floorview deployment serves the same one.
                action.nargs = "?"
                action.required = False
                action.default = DEFAULT_APPLICATION
                action.help = f"The application as path.to.module:instance.path (default {DEFAULT_APPLICATION})"
            elif action.dest in ("websocket_max_message_size", "websocket_max_frame_size"):
                # The page sends small JSON; Daphne's 1 MiB default lets any client make the server hold more.
                action.default = CLIENT_MESSAGE_CAP
                action.help = f"{action.help.split('.')[0]} (default {CLIENT_MESSAGE_CAP})."
