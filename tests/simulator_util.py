"""Helpers for tests that talk to a running SimulatorServer over real HTTP and WebSocket."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from typing import Any

import aiohttp

from tests.timing import scaled


def basic(client_id: str, secret: str) -> dict[str, str]:
    """Return a Basic Authorization header."""
    encoded = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {encoded}"}


async def get_token(http: aiohttp.ClientSession, sim) -> str:
    """Return a fresh bearer token from SIM."""
    async with http.post(
        f"{sim.base_url}/oauth/token",
        data={"grant_type": "client_credentials"},
        headers=basic(sim.client_id, sim.client_secret),
    ) as response:
        assert response.status == 200, await response.text()
        return (await response.json())["access_token"]


async def bearer(http: aiohttp.ClientSession, sim) -> dict[str, str]:
    """Return Bearer headers with a fresh token."""
    return {"Authorization": f"Bearer {await get_token(http, sim)}"}


async def new_channel(http: aiohttp.ClientSession, sim, headers: dict, topics: list[str] | None = None) -> dict:
    """Create a channel (subscribing TOPICS if given) and return it."""
    async with http.post(f"{sim.base_url}/api/v2/notifications/channels", headers=headers) as response:
        assert response.status == 200, await response.text()
        channel = await response.json()
    if topics:
        url = f"{sim.base_url}/api/v2/notifications/channels/{channel['id']}/subscriptions"
        async with http.put(url, headers=headers, json=[{"id": t} for t in topics]) as response:
            assert response.status == 200, await response.text()
    return channel


async def next_message(
    ws: aiohttp.ClientWebSocketResponse, predicate: Callable[[dict], bool], within: float = 3.0
) -> dict[str, Any]:
    """Return the next JSON message on WS that satisfies PREDICATE, skipping others, WITHIN seconds (scaled)."""
    async with asyncio.timeout(scaled(within)):
        while True:
            message = await ws.receive()
            if message.type != aiohttp.WSMsgType.TEXT:
                raise AssertionError(f"socket ended: {message.type} {message.data!r} {message.extra!r}")
            data = json.loads(message.data)
            if predicate(data):
                return data


def on_topic(topic: str) -> Callable[[dict], bool]:
    """Return a predicate for messages on TOPIC."""
    return lambda data: data.get("topicName") == topic


def metrics_by_name(data: list[dict]) -> dict[str, dict]:
    """Index metric entries by name (qualified ones as name:qualifier)."""
    out = {}
    for entry in data:
        key = entry["metric"] + (f":{entry['qualifier']}" if entry.get("qualifier") else "")
        out[key] = entry
    return out
