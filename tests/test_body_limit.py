"""Oversized webhook bodies are refused before Django buffers them, whatever the request says of its length."""

from __future__ import annotations

from asgiref.testing import ApplicationCommunicator
from django.core.asgi import get_asgi_application

from streams.body_limit import BodyLimit
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
