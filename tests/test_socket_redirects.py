"""A notification socket follows a redirect only within its origin: the upgrade may carry a bearer token."""

from __future__ import annotations

import socket

import pytest
from aiohttp import web

from streams.link.failures import LinkLost
from streams.link.sockets import SameOriginRedirects


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.create_server(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    return runner, f"ws://127.0.0.1:{sock.getsockname()[1]}"


async def test_a_redirect_to_another_origin_is_refused_and_one_within_it_followed():
    seen_elsewhere: list[str] = []

    async def elsewhere(request: web.Request) -> web.StreamResponse:
        seen_elsewhere.append(request.headers.get("Authorization", ""))
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.close()
        return ws

    other = web.Application()
    other.router.add_get("/", elsewhere)
    other_runner, other_url = await serve(other)

    async def home(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str("hello")
        await ws.close()
        return ws

    async def away(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(f"{other_url}/")

    async def moved(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/home")

    app = web.Application()
    app.router.add_get("/home", home)
    app.router.add_get("/away", away)
    app.router.add_get("/moved", moved)
    runner, url = await serve(app)
    headers = {"Authorization": "Bearer secret-token"}
    try:
        with pytest.raises(LinkLost, match="another origin"):
            await SameOriginRedirects(f"{url}/away", additional_headers=headers)
        assert seen_elsewhere == []  # the token never reached the other host
        ws = await SameOriginRedirects(f"{url}/moved", additional_headers=headers)
        assert await ws.recv() == "hello"
        await ws.close()
    finally:
        await runner.cleanup()
        await other_runner.cleanup()
