"""Handshake burst: many anonymous socket upgrades at once while one signed-in viewer connects.

Against the real demo (``manage.py demo``, one process), on 127.0.0.1 only:
opens ``--burst`` upgrades without a session cookie, ``--burst-concurrency``
at a time, and meanwhile a signed-in viewer opens the board. Prints how the
anonymous sockets ended (4401 is the answer they should get), their
handshake times, and how long the viewer waited for its snapshot. Asserts
nothing; ``tests/test_socket_processes.py`` holds the small, asserted version.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from bench.stacks import Demo
from bench.viewers import Client, _poll, _returning, percentile
from dashboard.protocol import PROTOCOL_VERSION, VERSION_PARAM


async def _anonymous(url: str, origin: str, gate: asyncio.Semaphore, started: asyncio.Event) -> tuple[str, float]:
    async with gate:
        started.set()
        began = time.perf_counter()
        try:
            async with connect(url, origin=origin, open_timeout=60) as ws:
                try:
                    async with asyncio.timeout(60):
                        await ws.recv()
                    outcome = "frame"
                except ConnectionClosed as closed:
                    outcome = str(closed.rcvd.code) if closed.rcvd else "1006"
        except InvalidStatus as refused:
            outcome = f"HTTP {refused.response.status_code}"
        except (OSError, TimeoutError, InvalidHandshake) as error:
            outcome = type(error).__name__
        return outcome, time.perf_counter() - began


async def _measure(stack: Demo, burst: int, concurrency: int) -> dict:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        client = Client(stack, http)
        await _poll("/healthz", client.healthy, stack)
        board = await _poll("the board", _returning(stack.board_slug), stack)
        session = await client.login()
    url = f"ws://127.0.0.1:{stack.port}/ws/boards/{board}/?{VERSION_PARAM}={PROTOCOL_VERSION}"
    gate, started = asyncio.Semaphore(concurrency), asyncio.Event()
    began = time.perf_counter()
    tasks = [asyncio.create_task(_anonymous(url, stack.url, gate, started)) for _ in range(burst)]
    await started.wait()
    viewer_began = time.perf_counter()
    viewer = "snapshot"
    try:
        async with connect(url, origin=stack.url, additional_headers={"Cookie": f"sessionid={session}"}) as ws:
            async with asyncio.timeout(60):
                frame = await ws.recv()
            if json.loads(frame.partition("\n")[0]).get("type") != "snapshot":
                viewer = "no snapshot"
    except Exception as error:
        viewer = f"failed: {error!r}"
    viewer_wait = time.perf_counter() - viewer_began
    results = await asyncio.gather(*tasks)
    return {
        "outcomes": Counter(outcome for outcome, _ in results),
        "times": [seconds for _, seconds in results],
        "burst_seconds": time.perf_counter() - began,
        "viewer": viewer,
        "viewer_wait": viewer_wait,
    }


def run(*, burst: int = 1000, concurrency: int = 400, agents: int = 60) -> dict:
    """Start the demo, fire the burst with a viewer in it, print the figures, stop the demo; return the figures."""
    print(f"== Handshake burst ({burst} anonymous upgrades, {concurrency} at a time, one signed-in viewer) ==")
    with tempfile.TemporaryDirectory(prefix="floorview-bench-") as workdir:
        stack = Demo(Path(workdir), queues=5, agents=agents)
        try:
            stack.start()
            figures = asyncio.run(_measure(stack, burst, concurrency))
        finally:
            stack.stop()
    times = [t * 1000 for t in figures["times"]]
    print("anonymous sockets ended:", ", ".join(f"{k}: {v}" for k, v in figures["outcomes"].most_common()))
    print(
        f"anonymous handshake to close: p50 {percentile(times, 0.5):.0f} ms, p99 {percentile(times, 0.99):.0f} ms, "
        f"whole burst {figures['burst_seconds']:.1f} s"
    )
    print(f"signed-in viewer during the burst: {figures['viewer']} after {figures['viewer_wait'] * 1000:.0f} ms")
    return figures
