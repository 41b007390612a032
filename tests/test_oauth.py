"""OAuth client credentials: refresh timing, single flight, invalidation, failures, no secrets in logs."""

import asyncio
import base64
import logging
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web

from streams.oauth import AuthFailed, TokenProvider, TokenUnavailable, token_for
from tests.timing import scaled

CLIENT_ID = "floor-client"
SECRET = "s3cr3t-never-logged"


class TokenEndpoint:
    """A tiny token endpoint: counts requests, can hold replies back, can refuse."""

    def __init__(self, expires_in: int = 86400) -> None:
        self.expires_in = expires_in
        self.requests = 0
        self.gate: asyncio.Event | None = None
        self.status = 200
        self.seen: list[tuple[str, str]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        form = await request.post()
        self.seen.append((request.headers.get("Authorization", ""), form.get("grant_type", "")))
        if self.gate is not None:
            await self.gate.wait()
        if self.status != 200:
            return web.json_response({"error": "invalid_client"}, status=self.status)
        return web.json_response(
            {"access_token": f"token-{self.requests}", "token_type": "bearer", "expires_in": self.expires_in}
        )


@asynccontextmanager
async def serve(endpoint: TokenEndpoint):
    app = web.Application()
    app.router.add_post("/oauth/token", endpoint.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        async with aiohttp.ClientSession() as session:
            yield f"http://127.0.0.1:{port}", session
    finally:
        await runner.cleanup()


class FakeClock:
    """A wall clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def test_it_refreshes_at_80_percent_or_5_minutes_before_expiry_whichever_is_sooner():
    assert token_for("t", 86400, 0.0).refresh_at == pytest.approx(69120.0)  # 80% is sooner
    assert token_for("t", 1000, 0.0).refresh_at == pytest.approx(700.0)  # 5 minutes before is sooner
    # A 5-minute token is not refreshed on every call: never in its first half.
    assert token_for("t", 300, 0.0).refresh_at == pytest.approx(150.0)
    assert token_for("t", 300, 0.0).expires_at == pytest.approx(300.0)


async def test_it_sends_client_credentials_with_basic_auth():
    endpoint = TokenEndpoint()
    async with serve(endpoint) as (base, session):
        provider = TokenProvider(base, CLIENT_ID, SECRET, session=session)
        assert await provider.token() == "token-1"
    expected = base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode()
    assert endpoint.seen == [(f"Basic {expected}", "client_credentials")]


async def test_it_sends_one_token_request_for_many_concurrent_callers():
    endpoint = TokenEndpoint()
    endpoint.gate = asyncio.Event()
    async with serve(endpoint) as (base, session):
        provider = TokenProvider(base, CLIENT_ID, SECRET, session=session)
        callers = [asyncio.create_task(provider.token()) for _ in range(50)]
        await asyncio.sleep(0)  # let every caller reach the lock before the reply is released
        endpoint.gate.set()
        tokens = await asyncio.wait_for(asyncio.gather(*callers), scaled(5))
    assert set(tokens) == {"token-1"}
    assert endpoint.requests == 1


async def test_it_reuses_the_token_until_refresh_time_then_fetches_a_new_one():
    endpoint = TokenEndpoint(expires_in=1000)
    clock = FakeClock()
    async with serve(endpoint) as (base, session):
        provider = TokenProvider(base, CLIENT_ID, SECRET, session=session, clock=clock)
        assert await provider.token() == "token-1"
        clock.now += 699
        assert await provider.token() == "token-1"
        clock.now += 2  # past 700 s: five minutes before the 1000 s expiry
        assert await provider.token() == "token-2"
    assert endpoint.requests == 2


async def test_it_fetches_a_new_token_after_invalidation_but_keeps_a_newer_one():
    endpoint = TokenEndpoint()
    async with serve(endpoint) as (base, session):
        provider = TokenProvider(base, CLIENT_ID, SECRET, session=session)
        first = await provider.token()
        await provider.invalidate(first)
        second = await provider.token()
        assert second == "token-2"
        # A late 401 for the old token must not throw away the new one.
        await provider.invalidate(first)
        assert await provider.token() == "token-2"
        await provider.forget()
        assert await provider.token() == "token-3"


async def test_it_keeps_using_a_valid_token_when_an_early_refresh_fails():
    endpoint = TokenEndpoint(expires_in=1000)
    clock = FakeClock()
    async with serve(endpoint) as (base, session):
        provider = TokenProvider(base, CLIENT_ID, SECRET, session=session, clock=clock)
        assert await provider.token() == "token-1"
        endpoint.status = 503
        clock.now += 800
        assert await provider.token() == "token-1"
        clock.now += 300  # now really expired: the failure shows
        with pytest.raises(TokenUnavailable):
            await provider.token()


async def test_it_reports_refused_credentials_without_logging_the_secret(caplog):
    endpoint = TokenEndpoint()
    endpoint.status = 401
    caplog.set_level(logging.DEBUG)
    async with serve(endpoint) as (base, session):
        provider = TokenProvider(base, CLIENT_ID, SECRET, session=session)
        with pytest.raises(AuthFailed) as raised:
            await provider.token()
    assert SECRET not in str(raised.value)
    assert SECRET not in caplog.text
    assert SECRET not in repr(provider)


async def test_it_calls_an_unreachable_endpoint_unavailable_not_an_auth_failure():
    async with aiohttp.ClientSession() as session:
        # Port 9 (discard) on loopback is closed: the connection is refused at once.
        provider = TokenProvider("http://127.0.0.1:9", CLIENT_ID, SECRET, session=session, timeout=scaled(2))
        with pytest.raises(TokenUnavailable):
            await provider.token()


async def test_it_never_logs_tokens(caplog):
    endpoint = TokenEndpoint()
    caplog.set_level(logging.DEBUG)
    async with serve(endpoint) as (base, session):
        provider = TokenProvider(base, CLIENT_ID, SECRET, session=session)
        token = await provider.token()
    assert token not in caplog.text
