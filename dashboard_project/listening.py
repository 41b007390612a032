"""How the web server's sockets listen: a backlog sized for a reconnect storm, and one port for several processes.

Daphne builds Twisted endpoint descriptions from ``-b``/``-p``, ``-u`` and
``--fd``; ``FloorviewServer`` passes them through here before it listens.
"""

from __future__ import annotations

import logging
import re
import socket

log = logging.getLogger("dashboard_project.webserver")  # the server's own log, where operators look for it


# A TCP endpoint as Daphne builds it from -b/-p for an IPv4 address (IPv6 ones escape their colons).
_IPV4_ENDPOINT = re.compile(r"^tcp:port=(?P<port>\d+):interface=(?P<host>[0-9.]+)(?::backlog=(?P<backlog>\d+))?$")


def reuse_port(endpoint: str, backlog: int) -> str:
    """Return ENDPOINT as an already listening socket that other processes may bind too (SO_REUSEPORT).

    Each ``manage.py serve`` with ``FLOORVIEW_REUSE_PORT`` listens on the same address with a socket of
    its own, and the kernel spreads new connections over them: one port, one process per core, no
    proxy. Only IPv4 TCP endpoints (``-b``/``-p``) can be taken over; any other is returned as it is.
    """
    match = _IPV4_ENDPOINT.match(endpoint)
    if match is None:
        log.warning("FLOORVIEW_REUSE_PORT applies to IPv4 -b/-p endpoints only; %s is listened on as it is", endpoint)
        return endpoint
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((match["host"], int(match["port"])))
        sock.listen(int(match["backlog"] or backlog))
    except OSError:
        sock.close()
        raise
    # Twisted adopts the descriptor (a duplicate) and closes this one: the socket object lets go of it.
    return f"fd:fileno={sock.detach()}"


def with_backlog(endpoint: str, backlog: int) -> str:
    """Return a Twisted endpoint description listening with BACKLOG, unless it is not ours to set or names one."""
    kind = endpoint.split(":", 1)[0]
    # An fd: endpoint is a socket already listening, with the backlog its creator (systemd, ...) gave it.
    if kind not in ("tcp", "tcp6", "unix") or re.search(r"(?<!\\):backlog=", endpoint):
        return endpoint
    return f"{endpoint}:backlog={backlog}"
