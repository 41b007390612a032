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
from tests.personas import PASSWORD
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
    # The fourth finds two loading and one waiting: refused at once, 4011 (the page retries later), told to
    # spread its return over the crowd's window (one refused and three queued: the shortest).
    assert (await sockets[3].connect(timeout=scaled(3)))[0]
    closed = await sockets[3].receive_output(timeout=scaled(3))
    assert closed == {"type": "websocket.close", "code": 4011, "reason": "spread=1.0"}
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


async def test_the_board_is_checked_in_the_same_database_call_as_the_session_and_user(p, cookie, monkeypatch):
    calls = []
    real = handshake.user_and_board

    def counted(*args):
        calls.append(args[1])
        return real(*args)

    def not_again(*args):
        raise AssertionError("the consumer read the board again")

    monkeypatch.setattr(handshake, "user_and_board", counted)
    monkeypatch.setattr(consumers, "board_grant", not_again)
    assert await opens([(b"host", b"testserver"), (b"origin", b"http://testserver"), (b"cookie", cookie)])
    assert calls == ["sales"]


async def test_a_board_the_user_may_not_see_is_refused_from_the_same_call(p, cookie):
    headers = [(b"host", b"testserver"), (b"origin", b"http://testserver"), (b"cookie", cookie)]
    ws = WebsocketCommunicator(application, "/ws/boards/no-such-board/", headers=headers)
    assert (await ws.connect(timeout=scaled(3)))[0]
    assert await ws.receive_output(timeout=scaled(3)) == {"type": "websocket.close", "code": 4404}


# -- cookies as the browser sends them ----------------------------------------------------------


@pytest.mark.parametrize(
    "before",
    [
        b'prefs={"theme": "dark"}',  # A JSON value: SimpleCookie stopped reading here.
        "name=Jérôme".encode(),  # Not ASCII.
        b"note=two words",  # A space in a value.
        b"broken; =empty name",
    ],
    ids=["json", "non-ascii", "space", "junk"],
)
async def test_the_session_cookie_is_found_behind_cookies_other_parsers_stop_at(p, cookie, before):
    headers = [(b"host", b"testserver"), (b"origin", b"http://testserver"), (b"cookie", before + b"; " + cookie)]
    assert handshake.session_cookie({"headers": headers}) == cookie.decode().split("=", 1)[1]
    # The page opened with these cookies (Django reads them so); the socket must open too.
    assert await opens(headers)


# -- the socket pass: a forged session cookie costs no session load --------------------------------


def test_signing_in_gives_the_session_its_socket_pass_and_signing_out_takes_it(p):
    client = Client()
    response = client.post("/login/", {"username": "sue", "password": PASSWORD, "next": "/boards/sales/"})
    assert response.status_code == 302
    key = client.cookies["sessionid"].value
    issued = client.cookies[handshake.SOCKET_PASS_COOKIE]
    assert issued.value == handshake.socket_pass(key) and issued["httponly"]
    assert client.get("/boards/sales/").status_code == 200
    assert client.cookies[handshake.SOCKET_PASS_COOKIE].value == issued.value
    client.post("/logout/")
    assert client.cookies[handshake.SOCKET_PASS_COOKIE].value == ""  # Deleted with the session.


@pytest.mark.parametrize("path", ["/login/", "/boards/sales/", "/favicon.ico", "/static/nothing.css"])
def test_a_made_up_session_key_never_gets_a_socket_pass(p, path):
    client = Client()
    client.cookies["sessionid"] = "f" * 32
    response = client.get(path)
    assert handshake.SOCKET_PASS_COOKIE not in response.cookies


async def test_a_socket_pass_that_does_not_match_its_session_is_refused_without_session_work(p, cookie, monkeypatch):
    async def no_session_work(self, scope):
        raise AssertionError("the session was loaded")

    monkeypatch.setattr(BoundedAuthMiddleware, "resolve_scope", no_session_work)
    before = handshake.refused["forged"]
    for forged in (b"sessionid=" + b"f" * 32, cookie):  # A made-up key, and a real one with another's pass.
        pass_ = handshake.socket_pass("someone-elses-session").encode()
        headers = [
            (b"host", b"testserver"),
            (b"origin", b"http://testserver"),
            (b"cookie", forged + b"; " + handshake.SOCKET_PASS_COOKIE.encode() + b"=" + pass_),
        ]
        ws = WebsocketCommunicator(application, "/ws/boards/sales/", headers=headers)
        assert (await ws.connect(timeout=scaled(3)))[0]
        assert await ws.receive_output(timeout=scaled(3)) == {"type": "websocket.close", "code": 4401}
    assert handshake.refused["forged"] == before + 2


def with_pass(cookie: bytes) -> bytes:
    key = cookie.decode().split("=", 1)[1]
    return cookie + b"; " + f"{handshake.SOCKET_PASS_COOKIE}={handshake.socket_pass(key)}".encode()


async def forged_burst(count: int, clients: list[str], monkeypatch, real: set[str]) -> tuple[list, asyncio.Event]:
    """Open COUNT sockets with made-up session cookies and no pass, from CLIENTS in turn; their loads hang.

    Returns the sockets' connect futures and the event that lets their loads finish. Loads of the
    sessions in REAL go through at once.
    """
    release = asyncio.Event()
    load = BoundedAuthMiddleware.resolve_scope

    async def forged_loads_hang(self, scope):
        if scope["cookies"].get("sessionid") not in real:
            await release.wait()
        await load(self, scope)

    monkeypatch.setattr(BoundedAuthMiddleware, "resolve_scope", forged_loads_hang)
    sockets = []
    for n in range(count):
        ws = WebsocketCommunicator(
            application,
            "/ws/boards/sales/",
            headers=[(b"host", b"testserver"), (b"origin", b"http://testserver"), (b"cookie", b"sessionid=%032d" % n)],
        )
        ws.scope["client"] = (clients[n % len(clients)], 40000 + n)
        sockets.append(ws)
    return sockets, release


async def test_a_viewer_with_its_socket_pass_connects_while_forged_cookies_fill_the_other_lane(p, cookie, monkeypatch):
    # Forged cookies from many addresses, more than the whole bound of session loads (4 + 64), all hanging.
    limit = handshake.AUTH_CONCURRENCY + handshake.AUTH_WAITING
    real = cookie.decode().split("=", 1)[1]
    addresses = [f"198.51.100.{n}" for n in range(1, 250)]
    forged, release = await forged_burst(limit + 10, addresses, monkeypatch, real={real})
    busy = handshake.refused["busy"]
    pending = [asyncio.ensure_future(ws.connect(timeout=scaled(10))) for ws in forged]
    await eventually(lambda: handshake.refused["busy"] >= busy + 10, within=5, what="the burst to fill the queue")
    # The viewer signed in through the site, so it holds its socket pass: it still gets its board.
    assert await opens([(b"host", b"testserver"), (b"origin", b"http://testserver"), (b"cookie", with_pass(cookie))])
    release.set()
    await asyncio.gather(*pending)
    for ws in forged:
        await ws.disconnect()


async def test_one_address_forging_cookies_cannot_fill_the_lane_of_sessions_without_a_pass(p, cookie, monkeypatch):
    forged, release = await forged_burst(30, ["203.0.113.9"], monkeypatch, real=set())
    busy = handshake.refused["busy client"]
    pending = [asyncio.ensure_future(ws.connect(timeout=scaled(10))) for ws in forged]
    # Four of its loads wait; the other 26 are told at once to come back later.
    await eventually(
        lambda: handshake.refused["busy client"] == busy + 30 - handshake.UNVOUCHED_PER_CLIENT,
        within=5,
        what="the address's excess to be refused",
    )
    # A session from before the pass existed, from another address, is queued, not refused.
    legacy = WebsocketCommunicator(
        application,
        "/ws/boards/sales/",
        headers=[(b"host", b"testserver"), (b"origin", b"http://testserver"), (b"cookie", cookie)],
    )
    legacy.scope["client"] = ("192.0.2.7", 50000)
    opening = asyncio.ensure_future(legacy.connect(timeout=scaled(10)))
    release.set()
    assert (await opening)[0]
    assert (await legacy.receive_output(timeout=scaled(3)))["type"] == "websocket.send"
    assert handshake.refused["busy client"] == busy + 30 - handshake.UNVOUCHED_PER_CLIENT
    await asyncio.gather(*pending)
    for ws in [*forged, legacy]:
        await ws.disconnect()
