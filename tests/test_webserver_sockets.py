"""The web server's own bounds on WebSockets, over a real ``manage.py serve`` on 127.0.0.1.

The board socket closes a page that leaves too much unacknowledged, but
acknowledgements are the client's word. A client that acknowledges
everything and reads nothing must still not make the server buffer without
end: the server aborts it once its write backlog passes
``FLOORVIEW_SOCKET_BUFFER_CAP``. And what a client may send is small: the
page sends short JSON, so a large message is refused.
"""

from __future__ import annotations

import base64
import contextlib
import http.cookiejar
import json
import os
import re
import socket
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.board_site import PASSWORD, Worker, board_site
from tests.processes import wait_until
from tests.socket_util import ANNOUNCE, head_of
from tests.timing import scaled

pytestmark = [pytest.mark.redis]

BUFFER_CAP = 1024 * 1024
AGENTS_PER_DELTA = 2000
DELTAS = 80


def sign_in(base_url: str) -> str:
    """Sign in as the board's viewer through the login form; return the Cookie header for the session."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(f"{base_url}/login/", timeout=scaled(10)) as response:
        page = response.read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode(
        {"username": "sue", "password": PASSWORD, "csrfmiddlewaretoken": token, "next": "/boards/floor/"}
    ).encode()
    request = urllib.request.Request(f"{base_url}/login/", data=form, headers={"Referer": f"{base_url}/login/"})
    with opener.open(request, timeout=scaled(10)) as response:
        assert response.url.endswith("/boards/floor/"), response.url
    cookies = {cookie.name: cookie.value for cookie in jar}
    assert "sessionid" in cookies
    return "; ".join(f"{name}={value}" for name, value in cookies.items())


def open_board_socket(port: int, cookie: str, receive_buffer: int | None = None) -> socket.socket:
    """Open the board's socket by hand (optionally with a tiny receive buffer); return it after the 101."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer is not None:
        # Before connecting, so the window the server sees is small from the start.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(scaled(10))
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws/boards/floor/?{ANNOUNCE} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: http://127.0.0.1:{port}\r\nCookie: {cookie}\r\n\r\n"
        ).encode()
    )
    head = b""
    while not head.endswith(b"\r\n\r\n"):  # byte by byte: nothing of the first frame is taken
        byte = sock.recv(1)
        assert byte, f"the server closed the handshake: {head!r}"
        head += byte
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def client_frame(payload: bytes, opcode: int = 1) -> bytes:
    """Return PAYLOAD as one masked client frame (text unless OPCODE says otherwise)."""
    mask = os.urandom(4)
    size = len(payload)
    if size < 126:
        head = bytes([0x80 | opcode, 0x80 | size])
    elif size < 65536:
        head = bytes([0x80 | opcode, 0x80 | 126]) + size.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 0x80 | 127]) + size.to_bytes(8, "big")
    return head + mask + bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))


def read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, "the connection ended mid-frame"
        data += chunk
    return data


def read_frame(sock: socket.socket) -> tuple[int, bytes]:
    """Read one (unmasked, server) frame; return its opcode and payload."""
    first, second = read_exactly(sock, 2)
    size = second & 0x7F
    if size == 126:
        size = int.from_bytes(read_exactly(sock, 2), "big")
    elif size == 127:
        size = int.from_bytes(read_exactly(sock, 8), "big")
    return first & 0x0F, read_exactly(sock, size)


def rss(pid: int) -> int:
    """Return the resident memory of process PID, in bytes."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) * 1024


@pytest.fixture
def capped_site(tmp_path, monkeypatch):
    # The page-level cap is set out of reach: this client's acknowledgements are as good as a real page's,
    # so only the server's own backstop is left to stop it.
    monkeypatch.setenv("FLOORVIEW_SOCKET_UNREAD_CAP", str(1024**3))
    monkeypatch.setenv("FLOORVIEW_SOCKET_BUFFER_CAP", str(BUFFER_CAP))
    with board_site(tmp_path) as running:
        yield running


async def test_a_client_that_acknowledges_everything_and_reads_nothing_is_aborted_with_memory_bounded(capped_site):
    server, ids, prefix = capped_site
    worker = Worker(ids, prefix)
    now = time.time()
    await worker.write([worker.queue("q-sales")], reset=True)
    cookie = sign_in(server.url)
    sock = open_board_socket(server.port, cookie, receive_buffer=4096)
    agents = [
        worker.agent(f"agent-{n}", f"Agent {n} " + "x" * 100, "q-sales", "on_queue", now)
        for n in range(AGENTS_PER_DELTA)
    ]
    before = rss(server.process.pid)
    try:
        for delta in range(1, DELTAS + 1):
            await worker.push(agents)
            # The snapshot was frame 1; claim every delta as read as soon as it is pushed. Once the socket is
            # aborted the sends fail; the board goes on changing all the same.
            with contextlib.suppress(OSError):
                sock.sendall(client_frame(json.dumps({"type": "ack", "frames": delta + 1}).encode()))
        wait_until(
            lambda: "left over" in server.log_path.read_text(errors="replace"),
            scaled(30),
            "the server to abort the socket that reads nothing",
        )
        grown = rss(server.process.pid) - before
        # Without the backstop the server holds every delta (each over 1 MiB as a frame, 80 MiB and more); with
        # it, the cap and what the process keeps from rendering frames.
        assert grown < 40 * 1024 * 1024, f"the web process grew by {grown} bytes"
        # The client sees the connection end (reset, or closed after what little the kernel held).
        received = 0
        with pytest.raises((ConnectionResetError, EOFError)):
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    raise EOFError
                received += len(chunk)
                assert received < 16 * BUFFER_CAP, "the server went on sending to the aborted socket"
    finally:
        sock.close()
        await worker.close()


def connection_ended(sock: socket.socket) -> bool:
    """Return whether the server ended the connection (dropped it, or sent a close); False on any other frame."""
    try:
        opcode, _payload = read_frame(sock)
    except (ConnectionResetError, AssertionError):
        return True  # reset, or closed mid-frame
    return opcode == 8


async def test_a_client_message_over_the_cap_ends_the_socket_and_large_server_frames_still_go_out(site):
    server, ids, prefix = site
    worker = Worker(ids, prefix)
    now = time.time()
    await worker.write([worker.queue("q-sales")], reset=True)
    cookie = sign_in(server.url)
    sock = open_board_socket(server.port, cookie)
    try:
        opcode, snapshot = read_frame(sock)
        assert opcode == 1 and head_of(snapshot)["type"] == "snapshot"
        # The client's cap is not the server's: a delta larger than Daphne's 1 MiB default still goes out.
        agents = [
            worker.agent(f"agent-{n}", f"Agent {n} " + "x" * 100, "q-sales", "on_queue", now) for n in range(2000)
        ]
        await worker.push(agents)
        opcode, delta = read_frame(sock)
        assert opcode == 1 and len(delta) > 1024 * 1024 and head_of(delta)["type"] == "delta"
        # A message the page could send is taken: the socket stays open and answers a ping.
        sock.sendall(client_frame(json.dumps({"type": "ack", "frames": 2}).encode()))
        sock.sendall(client_frame(b"still there?", opcode=9))
        assert read_frame(sock) == (10, b"still there?")
        # 100 KiB: far more than any message of the page, within Daphne's own 1 MiB default.
        sock.sendall(client_frame(json.dumps({"type": "filter", "pad": "x" * 100 * 1024}).encode()))
        # The ping would be answered by a server that kept the socket; one that already dropped it may reset the
        # connection under this write, which is the same outcome.
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            sock.sendall(client_frame(b"still there?", opcode=9))
        assert connection_ended(sock)
    finally:
        sock.close()
        await worker.close()
