"""Whole reply bodies, capped: replies far larger than one socket buffer, as every HTTP client of Floorview reads them.

A real aiohttp server on 127.0.0.1 serves bodies of 1-4 MB, with a
Content-Length or chunked; a raw socket server declares a huge length and
never sends it. A single ``content.read(n)`` returns what happens to be
buffered (about 128 KiB), so these replies come back cut short unless the
whole body is read.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web

from streams.http_body import BodyTooLarge, read_body
from streams.oauth import TokenProvider, TokenUnavailable
from streams.vendors.cxone.auth import CxoneAuth
from streams.vendors.cxone.rest import CxoneError, CxoneRest
from streams.vendors.genesys.rest import GenesysRest, RestError
from tests.timing import scaled

MB = 1024 * 1024
PIECE = 16 * 1024  # the chunked replies go out in pieces this large, each its own chunk


def padded(value: dict, size: int) -> bytes:
    """Return VALUE as JSON padded (with a "padding" member) to SIZE bytes."""
    bare = json.dumps(value | {"padding": ""}).encode()
    return json.dumps(value | {"padding": "x" * (size - len(bare))}).encode()


async def send(request: web.Request, body: bytes) -> web.StreamResponse:
    """Answer REQUEST with BODY: with a Content-Length, or chunked in PIECE-sized chunks when ``?chunked``."""
    if "chunked" not in request.query:
        return web.Response(body=body, content_type="application/json")
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    for start in range(0, len(body), PIECE):
        await response.write(body[start : start + PIECE])
    await response.write_eof()
    return response


def claims_token(size: int) -> str:
    """Return an unsigned JWT whose claims (a tenant and padding) make it about SIZE bytes long."""
    claims = base64.urlsafe_b64encode(padded({"tenantId": "t1"}, size)).decode().rstrip("=")
    return f"e30.{claims}.sig"


@asynccontextmanager
async def upstream():
    """Serve large replies on 127.0.0.1; yield the base URL."""
    page = padded(
        {"lastPollTime": "2026-01-01T00:00:00.000Z", "totalRecords": 1, "agentStates": [{"agentId": 7}]}, 3 * MB
    )

    async def cxone(request: web.Request) -> web.StreamResponse:
        return await send(request, page)

    async def token(request: web.Request) -> web.StreamResponse:
        # The id_token is small (a JWT is refused above 64 kB); the rest of the 2 MB is an unknown member.
        reply = {"access_token": "tok", "expires_in": 3600, "id_token": claims_token(1000)}
        return await send(request, padded(reply, 2 * MB))

    async def genesys(request: web.Request) -> web.StreamResponse:
        return await send(request, padded({"entities": [{"id": "q1"}]}, 4 * MB))

    async def sized(request: web.Request) -> web.StreamResponse:
        return await send(request, b"y" * int(request.match_info["size"]))

    async def gzipped(request: web.Request) -> web.StreamResponse:
        # A few kilobytes on the wire (and in Content-Length) for megabytes once decompressed.
        body = gzip.compress(b"y" * int(request.match_info["size"]))
        return web.Response(body=body, content_type="application/json", headers={"Content-Encoding": "gzip"})

    app = web.Application()
    app.router.add_get("/api/agents/states", cxone)
    app.router.add_post("/auth/token", token)
    app.router.add_post("/oauth/token", token)
    app.router.add_get("/api/v2/routing/queues", genesys)
    app.router.add_get("/bytes/{size}", sized)
    app.router.add_get("/gzip/{size}", gzipped)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


class FixedTokens:
    """A token source that always hands out the same bearer token (the REST clients' tests need no sign-in)."""

    fetched = 0

    async def token(self) -> str:
        return "tok"

    async def invalidate(self, value: str) -> None:
        pass


def timeout() -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=scaled(30))


# -- the helper ------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunked", [False, True])
async def test_read_body_returns_a_body_of_megabytes_whole(chunked):
    async with upstream() as base, aiohttp.ClientSession(timeout=timeout()) as session:
        query = "?chunked" if chunked else ""
        async with session.get(f"{base}/bytes/{3 * MB + 7}{query}") as response:
            body = await read_body(response, 4 * MB)
        assert body == b"y" * (3 * MB + 7)


async def test_read_body_enforces_the_cap_over_the_whole_chunked_read():
    # No Content-Length to judge by, and every chunk is small: only the running total can tell.
    async with upstream() as base, aiohttp.ClientSession(timeout=timeout()) as session:
        async with session.get(f"{base}/bytes/{2 * MB + 1}?chunked") as response:
            with pytest.raises(BodyTooLarge) as caught:
                await read_body(response, 2 * MB)
        assert caught.value.declared is None
        # Exactly at the cap is fine.
        async with session.get(f"{base}/bytes/{2 * MB}?chunked") as response:
            assert len(await read_body(response, 2 * MB)) == 2 * MB


async def test_read_body_caps_a_compressed_body_by_its_decompressed_bytes():
    async with upstream() as base, aiohttp.ClientSession(timeout=timeout()) as session:
        async with session.get(f"{base}/gzip/{2 * MB + 1}") as response:
            assert response.headers["Content-Encoding"] == "gzip" and response.content_length < 64 * 1024
            with pytest.raises(BodyTooLarge) as caught:
                await read_body(response, 2 * MB)
        assert caught.value.declared is None  # found while reading, not by the (small) declared length
        async with session.get(f"{base}/gzip/{2 * MB}") as response:
            assert await read_body(response, 2 * MB) == b"y" * (2 * MB)


async def test_read_body_refuses_a_declared_length_above_the_cap_without_reading():
    # The server declares two gigabytes and then sends nothing more, ever: only a refusal by the
    # declared length can return (reading would wait for bytes that never come).
    async def declare(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2000000000\r\n\r\n{")
        await writer.drain()
        await reader.read()  # hold the connection until the client leaves
        writer.close()

    server = await asyncio.start_server(declare, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout()) as session,
            session.get(f"http://127.0.0.1:{port}/") as response,
        ):
            with pytest.raises(BodyTooLarge) as caught:
                await read_body(response, 1 * MB)
        assert caught.value.declared == 2_000_000_000
        assert "2000000000" in str(caught.value)
    finally:
        server.close()
        await server.wait_closed()


# -- every client ----------------------------------------------------------------------------------


@pytest.mark.parametrize("chunked", [False, True])
async def test_cxone_rest_reads_a_page_of_megabytes_whole(chunked):
    async with upstream() as base, aiohttp.ClientSession() as session:
        rest = CxoneRest(f"{base}/api", FixedTokens(), session)
        url = rest.url("agents/states") + ("?chunked" if chunked else "")
        reply = await rest.get(url)
        assert reply.status == 200 and reply.size == 3 * MB
        assert reply.body["agentStates"] == [{"agentId": 7}]
        fetched = await rest.fetch("agents/states", "agentStates", "2026-01-01T00:00:00.000Z", top=10)
        assert fetched.complete and fetched.items == [{"agentId": 7}]


async def test_cxone_rest_caps_a_page_and_a_fetch_over_the_whole_read():
    async with upstream() as base, aiohttp.ClientSession() as session:
        small = CxoneRest(f"{base}/api", FixedTokens(), session, max_bytes=2 * MB)
        with pytest.raises(CxoneError, match=f"more than {2 * MB} bytes"):
            await small.get(small.url("agents/states") + "?chunked")
        budget = CxoneRest(f"{base}/api", FixedTokens(), session, max_fetch_bytes=2 * MB)
        with pytest.raises(CxoneError, match="pages add up to more than"):
            await budget.fetch("agents/states", "agentStates", "2026-01-01T00:00:00.000Z", top=10)


@pytest.mark.parametrize("chunked", [False, True])
async def test_cxone_sign_in_reads_a_token_reply_of_megabytes_whole(chunked):
    async with upstream() as base, aiohttp.ClientSession() as session:
        auth = CxoneAuth(base, "app", "secret", "key", "key-secret", session=session, max_reply_bytes=4 * MB)
        auth.token_url += "?chunked" if chunked else ""
        assert await auth.sign_in() == "tok"
        assert auth.claims is not None and auth.claims["tenantId"] == "t1"
        capped = CxoneAuth(base, "app", "secret", "key", "key-secret", session=session, max_reply_bytes=1 * MB)
        capped.token_url = auth.token_url
        with pytest.raises(TokenUnavailable, match=f"more than {1 * MB} bytes"):
            await capped.sign_in()


async def test_oauth_token_replies_are_capped_and_read_whole():
    async with upstream() as base, aiohttp.ClientSession() as session:
        # A 2 MB token reply is far above any real one: refused, not buffered without end.
        provider = TokenProvider(base, "id", "secret", session=session)
        with pytest.raises(TokenUnavailable, match="more than"):
            await provider.token()
        roomy = TokenProvider(
            "", "id", "secret", session=session, token_url=f"{base}/oauth/token?chunked", max_reply_bytes=4 * MB
        )
        assert await roomy.token() == "tok"


async def test_genesys_rest_reads_replies_of_megabytes_whole_and_caps_them():
    async with upstream() as base, aiohttp.ClientSession() as session:
        rest = GenesysRest(base, FixedTokens(), session)
        for query in ({}, {"chunked": "1"}):
            body = await rest.request("GET", "/api/v2/routing/queues", params=query)
            assert body["entities"] == [{"id": "q1"}]
        small = GenesysRest(base, FixedTokens(), session, max_bytes=1 * MB)
        for query in ({}, {"chunked": "1"}):
            with pytest.raises(RestError, match=f"more than {1 * MB} bytes"):
                await small.request("GET", "/api/v2/routing/queues", params=query)
