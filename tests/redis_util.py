"""Helpers for tests that use the real Redis server."""

import os
import secrets

REDIS_TEST_URL = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/15")


def unique_prefix() -> str:
    """Return a key prefix no other test run shares, so nothing needs flushing."""
    return f"fvtest-{secrets.token_hex(4)}"


async def delete_prefix(prefix: str) -> None:
    """Delete every key under PREFIX."""
    import redis.asyncio as redis

    client = redis.from_url(REDIS_TEST_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()
