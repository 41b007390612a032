"""The socket handshake through the real ASGI application: origins, cheap refusals, bounded auth, unknown paths."""

from __future__ import annotations

import asyncio
import logging

import pytest
from channels.testing import WebsocketCommunicator
from django.test import Client

from dashboard import consumers, handshake
from dashboard.handshake import BoundedAuthMiddleware
from dashboard_project.asgi import application
from tests.timing import eventually, scaled

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def cookie(p) -> bytes:
    client = Client()
    client.force_login(p.supervisor)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def opens(headers: list, path: str = "/ws/boards/sales/") -> bool:
    """Return whether a socket with HEADERS gets a snapshot (False: refused before the handshake)."""
    ws = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await ws.connect(timeout=scaled(3))
    if not connected:
        return False
    message = await ws.receive_output(timeout=scaled(3))
    await ws.disconnect()
    assert message["type"] == "websocket.send", message
    return True


# -- origins -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "origin", "allowed"),
    [
        (b"testserver", b"http://testserver", True),
        (b"testserver:8000", b"http://testserver:8000", True),
        (b"testserver", b"http://TestServer:80", True),
        (b"[::1]:8000", b"http://[::1]:8000", True),
        (b"testserver", b"http://testserver:8080", False),  # Another port of the same host.
        (b"testserver:8000", b"http://testserver:9000", False),
        (b"testserver", b"https://testserver", False),  # The site answered over http.
        (b"testserver", b"http://evil.example", False),
        (b"testserver", b"null", False),
        (b"evil.example", b"http://evil.example", False),  # A Host that is not ours.
    ],
)
async def test_it_compares_the_whole_origin_with_the_sites_own(p, cookie, host, origin, allowed):
    assert await opens([(b"host", host), (b"origin", origin), (b"cookie", cookie)]) is allowed


async def test_it_takes_the_scheme_from_the_proxy_header_when_configured(p, cookie, settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    behind_tls = [(b"host", b"testserver"), (b"x-forwarded-proto", b"https"), (b"cookie", cookie)]
    assert await opens([*behind_tls, (b"origin", b"https://testserver")])
    assert not await opens([*behind_tls, (b"origin", b"http://testserver")])
    plain = [(b"host", b"testserver"), (b"cookie", cookie)]
    assert await opens([*plain, (b"origin", b"http://testserver")])
    assert not await opens([*plain, (b"origin", b"https://testserver")])


async def test_it_accepts_trusted_origins_exactly(p, cookie, settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://floor.example.com", "https://*.wall.example.com"]
    ours = [(b"host", b"testserver"), (b"cookie", cookie)]
    assert await opens([*ours, (b"origin", b"https://floor.example.com")])
    assert await opens([*ours, (b"origin", b"https://lobby.wall.example.com")])
    assert not await opens([*ours, (b"origin", b"https://floor.example.com:8443")])
    assert not await opens([*ours, (b"origin", b"http://floor.example.com")])
    assert not await opens([*ours, (b"origin", b"https://wall.example.com.evil.example")])


async def test_a_client_without_an_origin_needs_only_its_session(p, cookie):
    # Browsers always send Origin on an upgrade; without one this is a script, and the cookie decides.
    assert await opens([(b"host", b"testserver"), (b"cookie", cookie)])


# -- cheap refusals ------------------------------------------------------------------------


async def test_a_socket_without_a_session_cookie_is_closed_4401_without_session_or_database_work(p, monkeypatch):
    async def no_session_work(self, scope):
        raise AssertionError("the session was loaded")

    async def no_consumer(self):
        raise AssertionError("a consumer was started")

    monkeypatch.setattr(BoundedAuthMiddleware, "resolve_scope", no_session_work)
    monkeypatch.setattr(consumers.BoardConsumer, "connect", no_consumer)
    before = handshake.refused["no cookie"]
    headers = [(b"host", b"testserver"), (b"origin", b"http://testserver"), (b"cookie", b"csrftoken=abc")]
    ws = WebsocketCommunicator(application, "/ws/boards/sales/", headers=headers)
    # Accepted, then closed: the browser needs the code to show "signed out".
    assert (await ws.connect(timeout=scaled(3)))[0]
    assert await ws.receive_output(timeout=scaled(3)) == {"type": "websocket.close", "code": 4401}
    assert handshake.refused["no cookie"] == before + 1


async def test_a_bogus_session_cookie_is_signed_out(p):
    headers = [(b"host", b"testserver"), (b"origin", b"http://testserver"), (b"cookie", b"sessionid=forged")]
    ws = WebsocketCommunicator(application, "/ws/boards/sales/", headers=headers)
    assert (await ws.connect(timeout=scaled(3)))[0]
    assert await ws.receive_output(timeout=scaled(3)) == {"type": "websocket.close", "code": 4401}


async def test_session_loads_are_bounded_and_the_excess_is_told_to_come_back_later(p, monkeypatch):
    release = asyncio.Event()
    loading = 0

    async def slow_load(self, scope):
        nonlocal loading
        loading += 1
        await release.wait()
        scope["user"]._wrapped = p.supervisor

    async def inner(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})

    monkeypatch.setattr(BoundedAuthMiddleware, "resolve_scope", slow_load)
    gate = BoundedAuthMiddleware(inner, concurrency=2, waiting=1)
    sockets = [WebsocketCommunicator(gate, "/ws/boards/sales/") for _ in range(4)]
    for ws in sockets:
        ws.scope["session"] = None
    pending = [asyncio.ensure_future(ws.connect(timeout=scaled(3))) for ws in sockets[:3]]
    await eventually(lambda: gate._queued == 3, within=3, what="two loads and one waiting")
    # The fourth finds two loading and one waiting: refused at once, 4011 (the page retries later).
    assert (await sockets[3].connect(timeout=scaled(3)))[0]
    assert await sockets[3].receive_output(timeout=scaled(3)) == {"type": "websocket.close", "code": 4011}
    assert loading == 2
    release.set()
    assert [connected for connected, _ in await asyncio.gather(*pending)] == [True, True, True]


# -- unknown paths ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/ws/x/", "/ws/boards/", "/ws/boards/sales/extra/", "/"])
async def test_an_unknown_socket_path_is_refused_quietly(p, cookie, caplog, path):
    with caplog.at_level(logging.INFO):
        for headers in ([], [(b"cookie", cookie)]):
            ws = WebsocketCommunicator(
                application, path, headers=[(b"host", b"testserver"), (b"origin", b"http://testserver"), *headers]
            )
            connected, _ = await ws.connect(timeout=scaled(3))
            assert not connected
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]


async def test_a_signed_in_viewer_opens_a_board_through_the_whole_stack(p, cookie):
    assert await opens([(b"host", b"testserver"), (b"origin", b"http://testserver"), (b"cookie", cookie)])
