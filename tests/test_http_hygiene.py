"""Quiet, honest answers to odd requests: path traversal under /static/, unknown paths, refusals, the favicon."""

from __future__ import annotations

import http.client
import io
import logging
import os
import re
from urllib.parse import unquote

import pytest
from asgiref.testing import ApplicationCommunicator
from django.contrib.auth.models import User
from django.test import Client

from dashboard_project.asgi import application
from tests.processes import Daphne, free_port
from tests.timing import scaled

TRAVERSALS = ["/static/..%2f..%2fmanage.py", "/static/../../manage.py", "/static/dashboard/..%2f..%2f..%2fREADME.md"]


async def get(path: str) -> dict:
    """GET PATH from the real ASGI application, as Daphne passes it (percent-escapes decoded)."""
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": unquote(path),
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    communicator = ApplicationCommunicator(application, scope)
    await communicator.send_input({"type": "http.request", "body": b""})
    start = await communicator.receive_output(timeout=scaled(5))
    response = {"status": start["status"], "headers": dict(start["headers"]), "body": b""}
    while True:
        chunk = await communicator.receive_output(timeout=scaled(5))
        response["body"] += chunk.get("body", b"")
        if not chunk.get("more_body"):
            return response


@pytest.mark.parametrize("path", TRAVERSALS)
async def test_a_path_out_of_static_is_simply_not_found(path):
    response = await get(path)
    assert response["status"] == 404
    assert b"Traceback" not in response["body"]


async def test_static_files_are_still_served():
    response = await get("/static/dashboard/board.css")
    assert response["status"] == 200
    assert b"--accent" in response["body"]


async def test_browsers_asking_for_favicon_ico_find_the_icon():
    response = await get("/favicon.ico")
    assert response["status"] == 301
    location = response["headers"][b"Location"].decode()
    assert location == "/static/dashboard/favicon.svg"
    icon = await get(location)
    assert icon["status"] == 200
    assert icon["headers"][b"Content-Type"] == b"image/svg+xml"
    assert icon["body"].startswith(b"<svg")


@pytest.mark.django_db
def test_every_page_links_the_icon():
    html = Client().get("/login/").content.decode()
    assert '<link rel="icon" href="/static/dashboard/favicon.svg" type="image/svg+xml">' in html


@pytest.fixture
def console():
    """The configured console handler's output, captured while the test runs."""
    handler = next(h for h in logging.getLogger().handlers if getattr(h, "name", "") == "console")
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    try:
        yield buffer
    finally:
        handler.setStream(previous)


@pytest.mark.django_db
def test_a_403_logs_one_line_without_a_traceback(console, settings):
    # Staff without any permission: the admin refuses the add page with PermissionDenied.
    staff = User.objects.create_user("clerk", password="unused-password-here", is_staff=True)
    client = Client()
    client.force_login(staff)
    assert client.get("/admin/streams/connection/add/").status_code == 403
    lines = console.getvalue().strip().splitlines()
    assert [line for line in lines if "Forbidden" in line and "/admin/streams/connection/add/" in line]
    # Every line is a record of its own: no traceback lines in between.
    assert all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [A-Z]+ ", line) for line in lines), lines


def test_a_server_error_keeps_its_traceback(console):
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("django.request").error("Internal Server Error: /x", exc_info=True)
    assert "Traceback" in console.getvalue()


@pytest.fixture
def daphne(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "dashboard_project.settings",
        "FLOORVIEW_REQUIRE_SECRETS": "false",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "REDIS_URL": "",
        "PYTHONUNBUFFERED": "1",
    }
    server = Daphne(env, free_port(), tmp_path / "daphne.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_a_real_server_answers_probes_with_quiet_404s(daphne):
    for path in [*TRAVERSALS, "/nowhere/", "/wp-login.php"]:
        connection = http.client.HTTPConnection("127.0.0.1", daphne.port, timeout=scaled(5))
        connection.request("GET", path)
        response = connection.getresponse()
        assert response.status == 404, path
        response.read()
        connection.close()
    connection = http.client.HTTPConnection("127.0.0.1", daphne.port, timeout=scaled(5))
    connection.request("GET", "/favicon.ico")
    assert connection.getresponse().status == 301
    connection.close()
    daphne.stop()
    log = daphne.log_path.read_text()
    assert "Traceback" not in log
    assert " 500 " not in log and "ERROR" not in log
