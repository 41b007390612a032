"""Oversized bodies are refused before anything buffers them, whatever the request says of its length.

Two layers: the ASGI guard around the application (``streams.body_limit``,
tested here on its own), and the web server itself (``manage.py serve``,
tested over real sockets against a real process with a small cap).
"""

from __future__ import annotations

import http.client
import http.cookiejar
import json
import os
import re
import select
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from asgiref.testing import ApplicationCommunicator
from django.core.asgi import get_asgi_application

from streams.body_limit import BodyLimit
from streams.hooks.signatures import signature
from tests.processes import ROOT, Daphne, free_port, wait_until
from tests.timing import scaled

LIMIT = 1000


def request(path: str, headers: list[tuple[bytes, bytes]] | None = None) -> dict:
    return {
        "type": "http",
        "method": "POST",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"testserver"), *(headers or [])],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
    }


async def answer(communicator: ApplicationCommunicator) -> tuple[int, bytes]:
    start = await communicator.receive_output(scaled(5))
    body = await communicator.receive_output(scaled(5))
    return start["status"], body.get("body", b"")


async def test_a_declared_length_over_the_cap_is_refused_without_reading_a_byte():
    app = BodyLimit(get_asgi_application(), prefix="/hooks/", limit=LIMIT)
    scope = request("/hooks/crm/", [(b"content-length", b"5000000")])
    communicator = ApplicationCommunicator(app, scope)
    # No body is ever sent: the refusal must not wait for one.
    status, body = await answer(communicator)
    assert status == 413 and b"larger than this server accepts" in body


async def test_a_streamed_body_is_cut_off_once_it_passes_the_cap():
    app = BodyLimit(get_asgi_application(), prefix="/hooks/", limit=LIMIT)
    communicator = ApplicationCommunicator(app, request("/hooks/crm/"))
    for _ in range(5):
        await communicator.send_input({"type": "http.request", "body": b"x" * 400, "more_body": True})
    status, _ = await answer(communicator)
    assert status == 413


async def test_other_paths_are_not_limited():
    app = BodyLimit(get_asgi_application(), prefix="/hooks/", limit=LIMIT)
    communicator = ApplicationCommunicator(app, {**request("/healthz"), "method": "GET"})
    await communicator.send_input({"type": "http.request", "body": b"x" * 5000, "more_body": False})
    status, body = await answer(communicator)
    assert (status, body) == (200, b"ok")


# The server itself: a real web process started as production starts it (``manage.py serve``), over 127.0.0.1.

CAP = 64 * 1024
HOOK_SECRET = "body-limit-hook-secret"
ADMIN_PASSWORD = "body-limit-admin-pw-81"
SEED = """
from django.contrib.auth.models import User
from streams.models import Connection
c = Connection.of("webhook", name="CRM webhook", slug="crm", webhook_secret=%(secret)r)
c.save()
User.objects.create_superuser("admin", "admin@example.com", %(password)r)
"""


class WebProcess:
    """The web process under test, and the directory its temporary files go to (its TMPDIR)."""

    def __init__(self, daphne: Daphne, spool: Path) -> None:
        self.daphne = daphne
        self.spool = spool

    @property
    def pid(self) -> int:
        return self.daphne.process.pid

    def spooled(self) -> dict[str, int]:
        """Return the files in the spool directory the process holds open, by name, with their sizes.

        Twisted buffers a body in an unnamed temporary file, which only shows as an open descriptor.
        """
        held = {}
        fds = Path(f"/proc/{self.pid}/fd")
        for fd in fds.iterdir():
            try:
                target = os.readlink(fd)
                if target.startswith(str(self.spool)):
                    held[target] = fd.stat().st_size
            except FileNotFoundError:
                continue  # closed while we looked
        return held

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.daphne.port), timeout=scaled(5))
        return sock


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("body-limit")
    spool = tmp / "spool"
    spool.mkdir()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "dashboard_project.settings",
        "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}",
        "REDIS_URL": "",
        "SECRET_KEY": "body-limit-test-secret-key-0123456789-abcdefghijklmnop",
        "FIELD_ENCRYPTION_KEY": "body-limit-test-field-key-0123456789-abcdefghijklmnop",
        "FLOORVIEW_MAX_REQUEST_BODY": str(CAP),
        "TMPDIR": str(spool),
        "PYTHONUNBUFFERED": "1",
    }
    for args in (
        ["migrate", "--noinput", "-v", "0"],
        ["shell", "-c", SEED % {"secret": HOOK_SECRET, "password": ADMIN_PASSWORD}],
    ):
        subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, timeout=scaled(120))
    daphne = Daphne(env, free_port(), tmp / "web.log")
    daphne.start()
    try:
        yield WebProcess(daphne, spool)
    finally:
        daphne.stop()


def read_answer(sock: socket.socket, within: float = 5.0) -> bytes:
    """Read what the server sends until it closes the connection or WITHIN (scaled) seconds pass."""
    deadline = time.monotonic() + scaled(within)
    received = b""
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            break  # the server closed with our unread bytes in its buffer; what came before counts
        if not data:
            break
        received += data
    return received


def status_of(answer: bytes) -> int | None:
    match = re.match(rb"HTTP/1\.[01] (\d{3}) ", answer)
    return int(match.group(1)) if match else None


def head(path: str, *lines: str) -> bytes:
    return "\r\n".join([f"POST {path} HTTP/1.1", "Host: 127.0.0.1", *lines, "", ""]).encode()


def test_the_server_refuses_a_declared_length_over_its_cap_without_reading_or_storing_the_body(web):
    with web.connect() as sock:
        started = time.monotonic()
        sock.sendall(head("/hooks/crm/", "Content-Length: 2000000000", "Content-Type: application/json") + b'[{"id":')
        answer = read_answer(sock)
        # Read before asserting: a server that waits for the body still holds its file now.
        held = web.spooled()
    assert status_of(answer) == 413, answer[:200]
    assert b"larger than this server accepts" in answer
    # Answered with the headers, not after a timeout, and the connection was closed (read_answer saw its end).
    assert time.monotonic() - started < scaled(3)
    assert held == {}


def test_a_client_that_asks_before_sending_is_told_413_not_invited_to_send(web):
    with web.connect() as sock:
        sock.sendall(head("/admin/login/", f"Content-Length: {CAP + 1}", "Expect: 100-continue"))
        answer = read_answer(sock)
    assert status_of(answer) == 413, answer[:200]
    assert b"100 Continue" not in answer


def test_a_chunked_body_is_refused_once_it_passes_the_cap_and_never_held_beyond_it(web):
    chunk = b"x" * 4096
    frame = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    largest_held = 0
    answer = b""
    with web.connect() as sock:
        sock.sendall(head("/hooks/crm/", "Transfer-Encoding: chunked", "Content-Type: application/json"))
        # Half the cap first, and see it held: the spool is where a body under the cap waits (this proves
        # the look at the process's files below sees a buffered body at all).
        sock.sendall(frame * (CAP // 2 // len(chunk)))
        wait_until(lambda: CAP // 2 in web.spooled().values(), scaled(10), "half the cap buffered in the spool")
        # Then up to twenty times the cap, never the final chunk: only a server that counts as it reads answers.
        for _ in range(CAP * 20 // len(chunk)):
            try:
                sock.sendall(frame)
            except (BrokenPipeError, ConnectionResetError):
                break  # refused and closed; the answer was sent before
            largest_held = max(largest_held, *web.spooled().values(), 0)
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
        answer = read_answer(sock)
        held_after = web.spooled()
    assert status_of(answer) == 413, answer[:200]
    assert largest_held <= CAP
    assert held_after == {}


def test_a_declared_length_at_the_cap_is_read_and_reaches_the_view(web):
    # Exactly the cap is allowed: the webhook view reads it all and refuses it for its own reason (unsigned).
    with web.connect() as sock:
        lines = (f"Content-Length: {CAP}", "Content-Type: application/json", "Connection: close")
        sock.sendall(head("/hooks/crm/", *lines) + b"x" * CAP)
        answer = read_answer(sock)
    assert status_of(answer) == 401, answer[:200]


def signed_headers(body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Floorview-Timestamp": str(int(time.time())),
        "X-Floorview-Signature": signature(HOOK_SECRET, body),
    }


def webhook_body(record_id: str) -> bytes:
    record = {
        "id": record_id,
        "type": "interaction.created",
        "timestamp": int(time.time() * 1000),
        "interaction_id": "c-1",
        "queue_id": "q-sales",
        "state": "waiting",
        "payload": {"media": "voice", "note": "y" * 20_000},
    }
    return json.dumps([record]).encode()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_signed_delivery_under_the_cap_reaches_the_webhook_view(web, chunked):
    body = webhook_body(f"r-body-limit-{int(chunked)}")
    assert len(body) < CAP
    connection = http.client.HTTPConnection("127.0.0.1", web.daphne.port, timeout=scaled(10))
    try:
        if chunked:
            parts = iter([body[: len(body) // 2], body[len(body) // 2 :]])
            headers = {**signed_headers(body), "Transfer-Encoding": "chunked"}
            connection.request("POST", "/hooks/crm/", body=parts, headers=headers, encode_chunked=True)
        else:
            connection.request("POST", "/hooks/crm/", body=body, headers=signed_headers(body))
        response = connection.getresponse()
        assert (response.status, response.read()) == (204, b"")
    finally:
        connection.close()


def test_the_admin_login_still_works(web):
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    login = f"{web.daphne.url}/admin/login/?next=/admin/"
    with opener.open(login, timeout=scaled(10)) as response:
        page = response.read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode(
        {"csrfmiddlewaretoken": token, "username": "admin", "password": ADMIN_PASSWORD, "next": "/admin/"}
    ).encode()
    with opener.open(urllib.request.Request(login, data=form), timeout=scaled(10)) as response:
        # Signed in: the admin's index, which sends anyone signed out back to the login form.
        assert response.url == f"{web.daphne.url}/admin/"
        assert 'name="password"' not in response.read().decode()


def test_a_flood_of_oversized_requests_logs_one_line_with_a_count_not_a_line_each(web):
    def warnings() -> list[str]:
        return [line for line in web.daphne.log_path.read_text().splitlines() if "WARNING" in line]

    before = len(warnings())
    for n in range(20):
        with web.connect() as sock:
            sock.sendall(head(f"/flood-{n}/", "Content-Length: 2000000000"))
            assert status_of(read_answer(sock)) == 413
    # The access log has its line per request (Daphne's own, at the proxy in production); our warning does not,
    # whatever the path.
    wait_until(lambda: '"POST /flood-19/" 413' in web.daphne.log_path.read_text(), scaled(5), "the access log")
    assert len(warnings()) - before <= 1, warnings()[before:]
