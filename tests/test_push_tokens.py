"""Feed tokens: the form-body client-credentials request, the simulator's token endpoint, and the 401 rule."""

from __future__ import annotations

from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web

from simulator.server import SimulatorServer
from streams.feeds.mapped import FeedRefused
from streams.oauth import AuthFailed, TokenProvider, cache_key
from streams.vendors.push.connector import PushConnector
from streams.vendors.spec import ConnectionSpec
from tests.feed_util import SCOPE, feed_url


@asynccontextmanager
async def token_endpoint():
    """A token endpoint that records what it was sent and hands out t1, t2, ..."""
    seen: list[dict] = []

    async def token(request: web.Request) -> web.Response:
        seen.append({"form": dict(await request.post()), "authorization": request.headers.get("Authorization")})
        return web.json_response({"access_token": f"t{len(seen)}", "expires_in": 3600})

    app = web.Application()
    app.router.add_post("/connect/token", token)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/connect/token", seen
    finally:
        await runner.cleanup()


async def test_a_full_token_url_gets_the_credentials_and_scope_in_the_form_body():
    async with token_endpoint() as (url, seen), aiohttp.ClientSession() as session:
        tokens = TokenProvider("", "feed-client", "s3cret", session=session, token_url=url, scope="feeds:read")
        assert await tokens.token() == "t1"
        assert await tokens.token() == "t1"  # cached
    assert seen == [
        {
            "form": {
                "grant_type": "client_credentials",
                "client_id": "feed-client",
                "client_secret": "s3cret",
                "scope": "feeds:read",
            },
            "authorization": None,
        }
    ]
    assert tokens.token_url == url


def test_the_cache_key_tells_scopes_apart_and_is_unchanged_without_one():
    assert cache_key("https://x/oauth/token", "id") == cache_key("https://x/oauth/token", "id", "")
    assert cache_key("https://x/t", "id", "a") != cache_key("https://x/t", "id", "b")


async def test_the_simulator_issues_feed_tokens_for_good_credentials_and_scopes_only():
    sim = SimulatorServer(port=0, rate=0)
    base = await sim.start()
    url = f"{base}/feeds/oauth/token"

    async def ask(http, **form):
        async with http.post(url, data={"grant_type": "client_credentials", **form}) as response:
            return response.status, await response.json()

    try:
        async with aiohttp.ClientSession() as http:
            good = {"client_id": sim.client_id, "client_secret": sim.client_secret}
            status, body = await ask(http, **good, scope=SCOPE)
            assert status == 200 and body["scope"] == SCOPE and body["expires_in"] > 0
            token = body["access_token"]
            assert (await ask(http, **good))[0] == 200  # no scope: fine
            assert await ask(http, client_id=sim.client_id, client_secret="wrong") == (
                401,
                {"error": "invalid_client", "error_description": "Invalid client credentials"},
            )
            assert (await ask(http, **good, scope="admin"))[1]["error"] == "invalid_scope"
            async with http.get(f"{base}/feeds/sse", headers={"Authorization": "Bearer nope"}) as response:
                assert response.status == 401
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(feed_url(sim, "push"), headers={"Authorization": "Bearer nope"})
            assert refused.value.status == 401
            async with http.ws_connect(feed_url(sim, "push"), headers={"Authorization": f"Bearer {token}"}) as ws:
                assert not ws.closed
    finally:
        await sim.stop()
    assert sim.feeds.counters.unauthorized == 2


class StubTokens:
    """A token provider handing out t1, t2, ...; remembers what was invalidated."""

    def __init__(self) -> None:
        self.requests = 0
        self.current: str | None = None
        self.fetched = 0
        self.invalidated: list[str] = []
        self.refresh_fails = False  # a refresh that fails hands out the old token, as TokenProvider does

    async def token(self) -> str:
        if self.current is None or self.refresh_fails:
            self.requests += 1
            if self.refresh_fails and self.current is not None:
                return self.current
            self.current = f"t{self.requests}"
            self.fetched += 1
        return self.current

    async def invalidate(self, value: str) -> None:
        self.invalidated.append(value)
        if self.current == value:
            self.current = None


def connector() -> PushConnector:
    spec = ConnectionSpec.of(
        "push", "feed1", client_id="id", client_secret="secret", token_url="http://127.0.0.1:9/token"
    )
    feed = PushConnector(spec, lambda e: None)
    feed.tokens = StubTokens()
    return feed


async def test_a_401_to_a_cached_token_is_retried_once_with_a_new_one():
    feed = connector()
    await feed.tokens.token()  # t1 is cached before the attempt
    tried: list[str] = []

    async def attempt(headers):
        tried.append(headers["Authorization"])
        if len(tried) == 1:
            raise FeedRefused(401)
        return "connected"

    assert await feed.authorised(attempt) == "connected"
    assert tried == ["Bearer t1", "Bearer t2"] and feed.tokens.invalidated == ["t1"]


async def test_a_401_to_a_token_fetched_just_now_is_an_auth_failure_at_once():
    feed = connector()
    tried: list[str] = []

    async def attempt(headers):
        tried.append(headers["Authorization"])
        raise FeedRefused(401)

    with pytest.raises(AuthFailed):
        await feed.authorised(attempt)
    assert tried == ["Bearer t1"]


async def test_other_refusals_pass_through_with_their_retry_after():
    feed = connector()

    async def attempt(headers):
        raise FeedRefused(503, retry_after=7.0)

    with pytest.raises(FeedRefused) as raised:
        await feed.authorised(attempt)
    assert (raised.value.status, raised.value.retry_after) == (503, 7.0)


async def test_a_401_after_a_failed_refresh_is_not_taken_for_refused_credentials():
    # The token endpoint is down: the old token comes back although a request went out. Its 401 says
    # nothing about the credentials, so it must not be an auth failure (a 5-minute wait) at once.
    feed = connector()
    await feed.tokens.token()
    feed.tokens.refresh_fails = True
    token, fresh = await feed._bearer()
    assert (token, fresh) == ("t1", False)
