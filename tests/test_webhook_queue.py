"""The hook queue: Redis Streams on the real server, and the embedded mode across threads and loops."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest
import redis.asyncio as redis

from streams.hooks import targets
from streams.hooks.memory_queue import MemoryHookQueue
from streams.hooks.process_queue import reset_hook_queue
from streams.hooks.queue import SEEN_TTL, HookItem, HookQueueFull, HookQueueUnavailable
from streams.hooks.redis_queue import RedisHookQueue
from streams.hooks.signatures import signature
from streams.link.failures import LinkLost
from streams.models import Connection
from tests.processes import free_port
from tests.redis_util import REDIS_TEST_URL, delete_prefix, unique_prefix
from tests.timing import scaled


def items(*ids: str) -> list[HookItem]:
    return [HookItem(json.dumps({"id": i, "interaction_id": f"i-{i}"}), i) for i in ids]


def ids_of(frame: bytes) -> list[str]:
    return [record["id"] for record in json.loads(frame)]


async def next_frame(reader) -> bytes:
    return await asyncio.wait_for(anext(reader), scaled(5))


# -- Redis ---------------------------------------------------------------------------------------


@pytest.fixture
async def rq():
    """A Redis hook queue under a private prefix, with short claim periods."""
    prefix = unique_prefix()
    queue = RedisHookQueue(REDIS_TEST_URL, prefix=prefix, read_block=0.1, claim_idle=0.3, claim_every=0.2)
    yield queue
    await queue.close()
    await delete_prefix(prefix)


@pytest.mark.redis
async def test_redis_queues_new_ids_once_and_remembers_them_for_an_hour(rq):
    assert await rq.offer("c1", items("a", "b")) == (2, 0)
    assert await rq.offer("c1", items("b", "c", "c")) == (1, 2)
    assert await rq.offer("c2", items("a")) == (1, 0)  # ids are per source
    reader = rq.reader("c1", "w1")
    assert ids_of(await next_frame(reader)) == ["a", "b"]
    assert ids_of(await next_frame(reader)) == ["c"]
    await reader.close()
    client = redis.from_url(REDIS_TEST_URL)
    try:
        ttl = await client.ttl(f"{rq.prefix}:hook:{{c1}}:seen:a")
        assert SEEN_TTL - 5 <= ttl <= SEEN_TTL
    finally:
        await client.aclose()
    assert await rq.backlog_of("c1") == 0  # handled entries are acknowledged and deleted


@pytest.mark.redis
async def test_redis_refuses_a_delivery_when_full_without_marking_its_ids(rq):
    rq.backlog = 2
    await rq.offer("c1", items("a"))
    await rq.offer("c1", items("b"))
    with pytest.raises(HookQueueFull):
        await rq.offer("c1", items("c"))
    reader = rq.reader("c1", "w1")
    assert ids_of(await next_frame(reader)) == ["a"]
    assert ids_of(await next_frame(reader)) == ["b"]
    await reader.close()
    # The retry of the refused delivery is new, not a duplicate.
    assert await rq.offer("c1", items("c")) == (1, 0)


@pytest.mark.redis
async def test_redis_deliveries_survive_a_reader_that_dies_and_go_to_the_next_one(rq):
    await rq.offer("c1", items("a"))
    await rq.offer("c1", items("b"))
    await rq.offer("c1", items("c"))
    first = rq.reader("c1", "worker-1")
    assert ids_of(await next_frame(first)) == ["a"]
    assert ids_of(await next_frame(first)) == ["b"]
    # worker-1 dies here, before acknowledging: acknowledgements go out once a reader has handed on
    # all it read, so its whole read is delivered again to the next reader, in order (at least once).
    second = rq.reader("c1", "worker-2")
    assert [ids_of(await next_frame(second)) for _ in range(3)] == [["a"], ["b"], ["c"]]
    # worker-2 handed everything on and asks for more: what it handled is acknowledged...
    waiting = asyncio.ensure_future(next_frame(second))
    await rq.offer("c1", items("d"))
    assert ids_of(await waiting) == ["d"]
    # ...so when it dies in turn, a third reader gets only "d" (handed over, never acknowledged).
    third = rq.reader("c1", "worker-3")
    assert ids_of(await next_frame(third)) == ["d"]
    await third.close()
    assert await rq.backlog_of("c1") == 0
    client = redis.from_url(REDIS_TEST_URL, decode_responses=True)
    try:
        consumers = await client.xinfo_consumers(rq.stream_key("c1"), "workers")
    finally:
        await client.aclose()
    # The dead readers, holding nothing once their entries were claimed, were tidied away.
    assert [c["name"] for c in consumers] == ["worker-3"]


@pytest.mark.redis
async def test_redis_a_running_reader_claims_what_another_reader_left_pending(rq):
    await rq.offer("c1", items("a"))
    runner = rq.reader("c1", "alive")
    assert ids_of(await next_frame(runner)) == ["a"]
    # Meanwhile a reader that overlapped (then died) takes the next entry and never acknowledges it.
    await rq.offer("c1", items("b"))
    client = redis.from_url(REDIS_TEST_URL)
    try:
        assert await client.xreadgroup("workers", "dead", {rq.stream_key("c1"): ">"}, count=1)
    finally:
        await client.aclose()
    # Once it has been pending longer than claim_idle, the running reader claims it.
    assert ids_of(await next_frame(runner)) == ["b"]
    await runner.close()
    assert await rq.backlog_of("c1") == 0


@pytest.mark.redis
async def test_redis_a_new_reader_claims_at_once_what_a_dead_reader_left_pending(rq):
    await rq.offer("c1", items("a"))
    client = redis.from_url(REDIS_TEST_URL)
    try:
        await client.xgroup_create(rq.stream_key("c1"), "workers", id="0", mkstream=True)
        stolen = await client.xreadgroup("workers", "dead", {rq.stream_key("c1"): ">"}, count=1)
        assert stolen
    finally:
        await client.aclose()
    runner = rq.reader("c1", "alive")
    # The first claim at start takes it at once (a new reader owns the source under the lease).
    assert ids_of(await next_frame(runner)) == ["a"]
    await rq.offer("c1", items("b"))
    assert ids_of(await next_frame(runner)) == ["b"]
    await runner.close()


@pytest.mark.redis
async def test_redis_unreachable_fails_the_offer_and_the_reader():
    queue = RedisHookQueue(f"redis://127.0.0.1:{free_port()}/0", prefix=unique_prefix())
    with pytest.raises(HookQueueUnavailable):
        await queue.offer("c1", items("a"))
    with pytest.raises(LinkLost):
        await queue.reader("c1", "w").open()
    with pytest.raises(LinkLost):
        await next_frame(queue.reader("c1", "w"))
    await queue.close()


# -- the view on Redis ----------------------------------------------------------------------------


@pytest.fixture
def redis_hook(settings):
    prefix = unique_prefix()
    settings.REDIS_URL = REDIS_TEST_URL
    settings.REDIS_PREFIX = prefix
    reset_hook_queue()
    targets.hook_targets.clear()
    connection = Connection.of("webhook", name="CRM", slug="crm", webhook_secret="s3cret")
    connection.save()
    yield connection, prefix
    targets.hook_targets.clear()
    reset_hook_queue()


def signed_post(body: bytes, secret: str = "s3cret"):
    from django.test import Client

    return Client().post(
        "/hooks/crm/",
        data=body,
        content_type="application/json",
        HTTP_X_FLOORVIEW_SIGNATURE=signature(secret, body),
        HTTP_X_FLOORVIEW_TIMESTAMP=str(int(time.time())),
    )


@pytest.mark.redis
@pytest.mark.django_db
def test_the_view_queues_in_redis_once_per_id(redis_hook):
    connection, prefix = redis_hook
    body = json.dumps([{"id": "r1", "interaction_id": "i1"}, {"id": "r2", "interaction_id": "i2"}]).encode()
    assert signed_post(body).status_code == 204
    assert signed_post(body).status_code == 204

    async def read() -> tuple[list[str], int]:
        queue = RedisHookQueue(REDIS_TEST_URL, prefix=prefix, read_block=0.1)
        reader = queue.reader(connection.source_key, "t")
        frame = ids_of(await next_frame(reader))
        await reader.close()  # acknowledges it
        backlog = await queue.backlog_of(connection.source_key)
        await queue.close()
        await delete_prefix(prefix)
        return frame, backlog

    frame, backlog = asyncio.run(read())
    assert frame == ["r1", "r2"]
    assert backlog == 0  # the retry queued nothing


@pytest.mark.redis
@pytest.mark.django_db
def test_the_view_answers_503_with_retry_after_when_redis_is_unreachable(redis_hook, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    reset_hook_queue()
    response = signed_post(b'[{"id": "r1", "interaction_id": "i1"}]')
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0


# -- the embedded mode ---------------------------------------------------------------------------


async def test_memory_a_reader_in_one_loop_wakes_for_an_offer_from_another_thread():
    queue = MemoryHookQueue()
    reader = queue.reader("c1", "w")
    waiting = asyncio.ensure_future(next_frame(reader))
    await asyncio.sleep(0)
    assert not waiting.done()
    thread = threading.Thread(target=lambda: asyncio.run(queue.offer("c1", items("a", "b"))))
    thread.start()
    assert ids_of(await waiting) == ["a", "b"]
    thread.join(scaled(5))
    await reader.close()
    assert queue.backlog_of("c1") == 0


async def test_memory_an_unacknowledged_delivery_goes_to_the_next_reader():
    queue = MemoryHookQueue()
    await queue.offer("c1", items("a"))
    await queue.offer("c1", items("b"))
    first = queue.reader("c1", "w1")
    assert ids_of(await next_frame(first)) == ["a"]
    assert ids_of(await next_frame(first)) == ["b"]
    # The first reader is dropped without a close: "b" was never acknowledged.
    second = queue.reader("c1", "w2")
    assert ids_of(await next_frame(second)) == ["b"]
    await second.close()
    assert queue.backlog_of("c1") == 0


async def test_memory_closing_a_waiting_reader_ends_its_iteration():
    queue = MemoryHookQueue()
    reader = queue.reader("c1", "w")
    waiting = asyncio.ensure_future(anext(reader))
    await asyncio.sleep(0)
    await reader.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(waiting, scaled(5))


async def test_memory_ids_are_forgotten_after_the_ttl_and_the_set_is_bounded():
    now = [0.0]
    queue = MemoryHookQueue(seen_ttl=3600, seen_max=3, clock=lambda: now[0])
    assert await queue.offer("c1", items("a", "b")) == (2, 0)
    now[0] = 3599
    assert await queue.offer("c1", items("a")) == (0, 1)
    now[0] = 3601
    assert await queue.offer("c1", items("a")) == (1, 0)
    await queue.offer("c1", items("x", "y", "z"))
    assert await queue.offer("c1", items("a")) == (1, 0)  # pushed out by newer ids: the set stays bounded


async def test_memory_long_or_odd_ids_are_remembered_by_hash():
    queue = MemoryHookQueue()
    odd = "\ud800" + "x" * 500
    assert await queue.offer("c1", items(odd)) == (1, 0)
    assert await queue.offer("c1", items(odd)) == (0, 1)
