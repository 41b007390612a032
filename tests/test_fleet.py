"""Several workers, one fleet: leases and the shared token cache on the real Redis, and how work is sharded."""

from __future__ import annotations

import asyncio

import pytest

from dashboard.publisher import BoardPlan
from dashboard.rows import QueueConfig
from dashboard.work_plan import Config, shards_of
from streams.leases import LeaseClock, RedisLeases
from streams.oauth import TokenProvider
from streams.token_cache import RedisTokenCache
from streams.vendors.spec import ConnectionSpec
from tests.redis_util import REDIS_TEST_URL, delete_prefix, unique_prefix
from tests.test_oauth import CLIENT_ID, SECRET, TokenEndpoint, serve
from tests.timing import scaled


@pytest.fixture
async def prefix():
    value = unique_prefix()
    yield value
    await delete_prefix(value)


@pytest.fixture
async def two_workers(prefix):
    first = RedisLeases(REDIS_TEST_URL, prefix=prefix, owner="worker-a")
    second = RedisLeases(REDIS_TEST_URL, prefix=prefix, owner="worker-b")
    yield first, second
    await first.close()
    await second.close()


@pytest.mark.redis
async def test_a_lease_has_one_holder_until_it_is_released(two_workers):
    first, second = two_workers
    assert await first.acquire("source:c1", ttl=scaled(5))
    assert not await second.acquire("source:c1", ttl=scaled(5))
    assert await first.acquire("source:c1", ttl=scaled(5))  # taking one's own lease again renews it
    # Nobody renews or releases a lease they do not hold.
    assert not await second.renew("source:c1", ttl=scaled(5))
    await second.release("source:c1")
    assert await second.holder("source:c1") == "worker-a"
    await first.release("source:c1")
    assert await second.acquire("source:c1", ttl=scaled(5))


@pytest.mark.redis
async def test_a_lease_its_holder_stopped_renewing_passes_on(two_workers):
    first, second = two_workers
    assert await first.acquire("source:c1", ttl=0.3)
    assert await first.renew("source:c1", ttl=0.3)
    deadline = asyncio.get_running_loop().time() + scaled(3)
    while not await second.acquire("source:c1", ttl=scaled(5)):
        assert asyncio.get_running_loop().time() < deadline, "the lapsed lease was never taken over"
        await asyncio.sleep(0.05)
    # The old holder finds out when it next renews: it must stop streaming.
    assert not await first.renew("source:c1", ttl=0.3)


@pytest.mark.redis
async def test_a_lease_redis_forgot_in_a_restart_is_taken_back_by_its_holder(two_workers, prefix):
    import redis.asyncio as redis

    first, second = two_workers
    assert await first.acquire("source:c1", ttl=scaled(5))
    client = redis.from_url(REDIS_TEST_URL)
    try:
        await client.delete(f"{prefix}:lease:source:c1")  # what a restart of a Redis without persistence does
    finally:
        await client.aclose()
    # The holder carries on without stopping its stream; nobody else could have held it meanwhile.
    assert await first.renew("source:c1", ttl=scaled(5))
    assert await second.holder("source:c1") == "worker-a"
    assert not await second.acquire("source:c1", ttl=scaled(5))


def test_a_worker_cut_off_from_redis_stops_before_its_leases_could_lapse():
    now = [100.0]
    lease_clock = LeaseClock(ttl=10.0, clock=lambda: now[0])
    assert lease_clock.expired()  # nothing confirmed yet
    lease_clock.confirm()
    now[0] += 5.9
    assert not lease_clock.expired()
    now[0] += 0.2  # past 60% of the TTL: a successor's acquisition is near
    assert lease_clock.expired()


@pytest.mark.redis
async def test_workers_share_one_token_and_refresh_it_once(prefix):
    endpoint = TokenEndpoint()
    endpoint.gate = asyncio.Event()
    caches = [RedisTokenCache(REDIS_TEST_URL) for _ in range(3)]
    try:
        async with serve(endpoint) as (base, session):
            providers = [TokenProvider(base, CLIENT_ID, SECRET, session=session, cache=cache) for cache in caches]
            for provider in providers:
                provider.key = f"{prefix}:{provider.key}"
            callers = [asyncio.create_task(p.token()) for p in providers for _ in range(5)]
            await asyncio.sleep(0.2)  # every worker is now queued on the one Redis lock
            endpoint.gate.set()
            tokens = await asyncio.wait_for(asyncio.gather(*callers), scaled(10))
            assert set(tokens) == {"token-1"} and endpoint.requests == 1
            # At rest the token is encrypted: Redis never holds it in the clear.
            raw = await caches[0]._client.get(providers[0].key)
            assert raw and "token-1" not in raw
            # A 401 seen by one worker sends every worker to the new token.
            await providers[0].invalidate("token-1")
            assert await providers[1].token() == "token-2"
            assert await providers[2].token() == "token-2" and endpoint.requests == 2
    finally:
        for cache in caches:
            await cache.close()


@pytest.mark.redis
async def test_the_token_cache_falls_back_to_the_process_while_redis_is_away():
    endpoint = TokenEndpoint()
    cache = RedisTokenCache("redis://127.0.0.1:9/0")  # nothing listens there
    try:
        async with serve(endpoint) as (base, session):
            provider = TokenProvider(base, CLIENT_ID, SECRET, session=session, cache=cache)
            assert await provider.token() == "token-1"
            assert await provider.token() == "token-1"
        assert endpoint.requests == 1
    finally:
        await cache.close()


def _spec(source: str) -> ConnectionSpec:
    return ConnectionSpec.of("genesys", source, queue_ids=("q",), base_url="http://x", client_id="id")


def _plan(board_id: int, *sources: str) -> BoardPlan:
    queues = {(s, f"q{n}"): QueueConfig(pk=n, vendor_id=f"q{n}", name=s) for n, s in enumerate(sources)}
    return BoardPlan(board_id=board_id, slug=f"b{board_id}", window=0.25, queues=queues)


def test_boards_that_share_a_source_share_a_shard():
    config = Config(
        specs={s: _spec(s) for s in ("c1", "c2", "c3", "c4")},
        boards=(_plan(1, "c1"), _plan(2, "c1", "c2"), _plan(3, "c3"), _plan(4), _plan(5, "c9")),
        names={},
    )
    shards = shards_of(config)
    assert {
        name: (sorted(shard.sources), sorted(p.board_id for p in shard.boards)) for name, shard in shards.items()
    } == {
        "shard:c1": (["c1", "c2"], [1, 2]),
        "shard:c3": (["c3"], [3]),
        "shard:c4": (["c4"], []),
        # Boards with nothing streaming (no queues, or a disabled connection's) still get a publisher.
        "shard:board-4": ([], [4]),
        "shard:board-5": ([], [5]),
    }
