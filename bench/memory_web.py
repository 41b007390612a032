"""Memory per idle viewer: the web process's RSS with no board socket open, then with N.

It starts the stack as the viewers benchmark does (``bench/stacks.py``: the
embedded demo, or with ``--redis`` simulate + runstreams + ``manage.py serve``
over Redis, where the web process is Daphne alone), signs in once, and opens
N board sockets with the session cookie. Each viewer reads its frames and
acknowledges them as the page does, and does nothing else: an idle viewer.
The web process's RSS is read from /proc with none open, with N open (after
they settle), and once they closed again.

With ``trace`` the web process starts tracemalloc (``bench/memhook``, put on
its PYTHONPATH) and dumps a snapshot on SIGUSR2; the difference between the
snapshot with none and with N open is what the viewers hold, by line. A
traced process is slower and bigger, so the RSS figures come from an
untraced run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import tempfile
import time
import tracemalloc
from pathlib import Path

import aiohttp
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidMessage

from bench.memory import ROOT
from bench.procfs import rss_kib
from bench.stacks import Demo, Fleet, Stack
from bench.viewers import Client, _poll, _returning
from dashboard.protocol import PROTOCOL_VERSION, VERSION_PARAM, Close

HOOK = ROOT / "bench" / "memhook"
CONNECT_CONCURRENCY = 50
ACK_EVERY_FRAMES = 10  # as the page acknowledges (static/dashboard/board.js)
TRY_LATER_ATTEMPTS = 30  # thousands of sign-ins at once: many are told to come back later, as pages are
SETTLE = 3.0  # seconds for the process to finish its work after the last viewer opened


async def _idle_viewer(url: str, headers: dict, origin: str, gate: asyncio.Semaphore, opened: list) -> None:
    """Hold one board socket: read every frame and acknowledge as the page does, until cancelled."""
    async with gate:
        for attempt in range(TRY_LATER_ATTEMPTS):
            try:
                ws = await connect(url, origin=origin, additional_headers=headers, max_size=None, open_timeout=60)
            except InvalidMessage:
                # A handshake the server dropped under the burst (a traced server is slow): come back, as a page does.
                if attempt == TRY_LATER_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(random.uniform(0.2, 1.0) * min(attempt + 1, 4))
                continue
            try:
                await asyncio.wait_for(ws.recv(), timeout=30)  # the snapshot
                break
            except ConnectionClosed as closed:
                # A crowd of sign-ins is told to come back later (4011): retry after a jittered wait, as a page does.
                if closed.rcvd is None or closed.rcvd.code != Close.TRY_LATER or attempt == TRY_LATER_ATTEMPTS - 1:
                    raise
            await asyncio.sleep(random.uniform(0.2, 1.0) * min(attempt + 1, 4))
    opened.append(ws)
    frames = 1
    try:
        async for _frame in ws:
            frames += 1
            if frames % ACK_EVERY_FRAMES == 0:
                await ws.send(json.dumps({"type": "ack", "frames": frames}))
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.close(), 2)


def _web_pid(stack: Stack) -> int:
    return stack.processes["daphne" if "daphne" in stack.processes else "demo"].pid


async def _dump(stack: Stack, path: Path) -> None:
    """Have the traced web process write its tracemalloc snapshot to PATH (see bench/memhook)."""
    marker = Path(f"{path}.done")
    os.kill(_web_pid(stack), signal.SIGUSR2)
    await _poll("the tracemalloc snapshot", _returning(marker.exists), stack, limit=120)
    marker.unlink()  # noqa: ASYNC240 (a file of a few bytes, once per run)


async def _rss_settled(stack: Stack) -> int:
    """Return the web process's RSS (KiB) once it stopped moving (two reads a second apart within 1%)."""
    last = rss_kib(_web_pid(stack))["VmRSS"]
    for _ in range(10):
        await asyncio.sleep(1.0)
        now = rss_kib(_web_pid(stack))["VmRSS"]
        if abs(now - last) <= last * 0.01:
            return now
        last = now
    return last


async def _measure(stack: Stack, viewers: int, snapshots: Path | None) -> dict:
    jar = aiohttp.CookieJar(unsafe=True)  # unsafe: accept cookies from an IP address host
    async with aiohttp.ClientSession(cookie_jar=jar, timeout=aiohttp.ClientTimeout(total=30)) as http:
        client = Client(stack, http)
        await _poll("/healthz", client.healthy, stack, limit=120)
        board = await _poll("the board", _returning(stack.board_slug), stack, limit=120)
        await _poll("the worker's notification socket", client.subscribed, stack, limit=120)
        session = await client.login()
        await _poll("every agent on the board", lambda: client.board_source(board), stack, limit=120)
        # No new contacts: the board stays quiet, the viewers idle (ticks and agents' own changes remain).
        await client.control({"action": "set_rate", "rate": 0})
        url = f"ws://127.0.0.1:{stack.port}/ws/boards/{board}/?{VERSION_PARAM}={PROTOCOL_VERSION}"
        headers = {"Cookie": f"sessionid={session}"}
        # One viewer opens and closes first, so what the first socket alone loads (modules, caches) is in both.
        warm: list = []
        task = asyncio.create_task(_idle_viewer(url, headers, stack.url, asyncio.Semaphore(1), warm))
        await _poll("a first viewer", _returning(lambda: bool(warm)), stack)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        figures = {"zero": await _rss_settled(stack)}
        if snapshots:
            await _dump(stack, snapshots / "zero")
        opened: list = []
        # A traced server is several times slower: fewer handshakes at once keep it under its timeouts.
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY // 5 if snapshots else CONNECT_CONCURRENCY)
        started = time.perf_counter()
        tasks = [asyncio.create_task(_idle_viewer(url, headers, stack.url, gate, opened)) for _ in range(viewers)]
        try:

            async def all_open() -> bool:
                failed = [t for t in tasks if t.done() and not t.cancelled() and t.exception()]
                if failed:
                    raise RuntimeError(f"{len(failed)} viewers failed, e.g. {failed[0].exception()!r}")
                return len(opened) == viewers

            await _poll(f"{viewers} viewers", all_open, stack, limit=300)
            figures["connect_seconds"] = time.perf_counter() - started
            await asyncio.sleep(SETTLE)
            figures["open"] = await _rss_settled(stack)
            if snapshots:
                await _dump(stack, snapshots / "open")
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.sleep(SETTLE)
        figures["closed"] = await _rss_settled(stack)
    return figures


def _stack(workdir: Path, redis_url: str | None, agents: int, trace: bool) -> Stack:
    queues = 5
    stack = Fleet(workdir, queues=queues, agents=agents, redis_url=redis_url) if redis_url else None
    stack = stack or Demo(workdir, queues=queues, agents=agents)
    if trace:
        stack.env |= {"PYTHONPATH": f"{HOOK}:{ROOT}", "FLOORVIEW_BENCH_TRACEMALLOC": str(workdir / "snapshots")}
    return stack


def run_web(
    *, viewers: int = 2000, agents: int = 60, redis_url: str | None = None, trace: bool = True, rss: bool = True
) -> dict:
    """Measure the web process's memory per idle viewer (RSS, then TRACE's breakdown); print and return the figures."""
    results: dict = {}
    for traced in (False,) * rss + (True,) * trace:
        with tempfile.TemporaryDirectory(prefix="floorview-memory-") as workdir:
            stack = _stack(Path(workdir), redis_url, agents, traced)
            snapshots = Path(workdir) / "snapshots" if traced else None
            if not traced:
                print(
                    f"== Web process memory per idle viewer (0 vs {viewers}; {stack.description}, {agents} agents) =="
                )
            try:
                stack.start()
                figures = asyncio.run(_measure(stack, viewers, snapshots))
                if snapshots:
                    _print_difference(snapshots, viewers)
            finally:
                stack.stop()
        if not traced:
            results = figures
            per = (figures["open"] - figures["zero"]) / viewers
            print(f"{viewers} viewers opened in {figures['connect_seconds']:.1f} s")
            print(
                f"web RSS: {figures['zero'] / 1024:.1f} MiB with 0 viewers, {figures['open'] / 1024:.1f} MiB with "
                f"{viewers}, {figures['closed'] / 1024:.1f} MiB after they closed"
            )
            print(f"per idle viewer: {per:.1f} KiB; target <= 40 KB: {'met' if per * 1.024 <= 40 else 'NOT met'}")
            results["per_viewer_kib"] = per
    return results


def _print_difference(snapshots: Path, viewers: int, top: int = 20) -> None:
    zero = tracemalloc.Snapshot.load(str(snapshots / "zero"))
    opened = tracemalloc.Snapshot.load(str(snapshots / "open"))
    diff = opened.compare_to(zero, "lineno")
    total = sum(stat.size_diff for stat in diff)
    print(f"tracemalloc (a second, traced run): {total / viewers / 1024:.1f} KiB per viewer traced; top lines:")
    by_part: dict[str, float] = {}
    for stat in diff:
        by_part[_part_of(stat.traceback[0].filename)] = by_part.get(_part_of(stat.traceback[0].filename), 0) + (
            stat.size_diff
        )
    ranked = sorted(by_part.items(), key=lambda item: -item[1])
    print("  by package: " + ", ".join(f"{part} {size / viewers:,.0f} B" for part, size in ranked if size > 0))
    for stat in diff[:top]:
        where = str(stat.traceback).replace(str(ROOT) + "/", "").replace(os.path.dirname(os.__file__) + "/", "")
        print(f"  {stat.size_diff / viewers:8.0f} B/viewer {stat.count_diff / viewers:6.1f} blocks  {where}")


def _part_of(filename: str) -> str:
    """Return the package a traced line belongs to: a site package's name, the project's app, or the stdlib's module."""
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1].split("/", 1)[0]
    if filename.startswith(str(ROOT)):
        return filename[len(str(ROOT)) + 1 :].split("/", 1)[0]
    return "stdlib " + Path(filename).stem
