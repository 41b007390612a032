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
webhook cap inside the application.

``python manage.py serve`` runs this server with the same arguments as
``daphne`` (the application defaults to ``dashboard_project.asgi:application``).
"""

from __future__ import annotations

import io
import logging

from daphne.cli import CommandLineInterface
from daphne.http_protocol import HTTPFactory, WebRequest
from daphne.server import Server

from streams.body_limit import TOO_LARGE

log = logging.getLogger(__name__)

DEFAULT_APPLICATION = "dashboard_project.asgi:application"

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
        # The request line is the client's: quoted and cut short so it cannot forge or flood log lines.
        log.warning(
            "Refused %r %r from %s: the body is over %d bytes",
            method.decode("ascii", "replace")[:20],
            path.decode("ascii", "replace")[:200],
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


class FloorviewServer(Server):
    """Daphne's server with a hard cap on every request body (``FLOORVIEW_MAX_REQUEST_BODY`` unless given)."""

    def __init__(self, *args, max_request_body: int | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if max_request_body is None:
            from django.conf import settings

            max_request_body = settings.FLOORVIEW["MAX_REQUEST_BODY"]
        self.max_request_body = int(max_request_body)

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


class ServeCommandLine(CommandLineInterface):
    """Daphne's command line (same arguments) running ``FloorviewServer``; the application is optional."""

    description = "Floorview's web server: Daphne with a hard cap on request bodies (FLOORVIEW_MAX_REQUEST_BODY)"
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
