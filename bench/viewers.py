"""Change-to-viewer delay: one agent's status changes in the simulator, 200 board sockets see it.

It starts the real demo (``manage.py demo``: simulator, worker and Daphne in one
process, SQLite in a temporary directory, the in-memory layer; or with
``--redis`` the production-shaped processes, see ``bench/stacks.py``), signs in once
through the admin's login form, opens the viewers on one board with the session
cookie, stops arrivals so background churn stays low, then sets agents' presence
through ``/simulator/control`` and notes when each viewer receives a frame
holding that agent's row with the new ``data-status``. Delay is arrival minus
the moment just before the control POST, on one clock (this process's).
Everything listens on 127.0.0.1 and every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench.stacks import Demo, Fleet, Stack
from dashboard.protocol import PROTOCOL_VERSION, VERSION_PARAM, Close

# The statuses a row may show once an agent is put back On Queue: the routing status, lower-cased.
ON_QUEUE_STATUSES = frozenset({"idle", "interacting", "communicating", "not_responding", "on_queue"})
STARTUP_TIMEOUT = 60.0
CHANGE_TIMEOUT = 5.0
# Handshakes in flight at once: 200 viewers arrive quickly but not as one burst.
CONNECT_CONCURRENCY = 20
TRY_LATER = Close.TRY_LATER
TRY_LATER_ATTEMPTS = 8


def row_status(frame: str, row_id: str) -> str | None:
    """Return the ``data-status`` of row ROW_ID in a board frame, or None if the frame does not hold it."""
    at = frame.find(f'id="{row_id}"')
    if at < 0:
        return None
    tag_end = frame.find(">", at)
    start = frame.find('data-status="', at, tag_end)
    if start < 0:
        return None
    start += len('data-status="')
    return frame[start : frame.find('"', start)]


@dataclass
class Expectation:
    """One change in flight: the row, the statuses that show it, and when it was asked for."""

    row_id: str
    statuses: frozenset[str]
    asked_at: float
    seen: dict[int, float] = field(default_factory=dict)  # viewer → arrival


class Tracker:
    """Collect, per change, when each viewer received it."""

    def __init__(self, viewers: int) -> None:
        self.viewers = viewers
        self.open: set[int] = set()
        self.current: Expectation | None = None
        self.delays: list[float] = []
        self.firsts: list[float] = []
        self.lasts: list[float] = []
        self.missed = 0
        self.all_seen = asyncio.Event()
        self.cpu: dict[str, float] = {}  # process → share of one core while the changes ran

    def expect(self, row_id: str, statuses: frozenset[str]) -> Expectation:
        """Start watching for ROW_ID showing one of STATUSES; the clock starts now."""
        self.all_seen.clear()
        self.current = Expectation(row_id, statuses, time.perf_counter())
        return self.current

    def see(self, viewer: int, frame: str, at: float) -> None:
        """Note a frame VIEWER received AT (perf_counter seconds)."""
        current = self.current
        if current is None or viewer in current.seen or current.row_id not in frame:
            return
        if row_status(frame, current.row_id) in current.statuses:
            current.seen[viewer] = at - current.asked_at
            if self.open <= current.seen.keys():
                self.all_seen.set()

    def finish(self) -> None:
        """Close the current change: record its delays and count viewers that did not see it."""
        current, self.current = self.current, None
        if current is None:
            return
        delays = sorted(current.seen.values())
        self.delays.extend(delays)
        # A viewer whose socket died counts as missing the change, like one that timed out.
        self.missed += self.viewers - len(current.seen)
        if delays:
            self.firsts.append(delays[0])
            self.lasts.append(delays[-1])


def percentile(values: list[float], q: float) -> float:
    """Return the nearest-rank Q-quantile of VALUES (0 < Q <= 1)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


async def _poll(what: str, check, stack: Stack, limit: float = STARTUP_TIMEOUT):
    """Return CHECK()'s first truthy result, trying every 0.2 s; raise with the stack's logs after LIMIT seconds."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        stack.check_alive()
        try:
            result = await check()
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError):
            result = None  # not up yet, or half up
        if result:
            return result
        await asyncio.sleep(0.2)
    raise RuntimeError(f"timed out after {limit:.0f} s waiting for {what}\n{stack.log_tail()}")


class Client:
    """This process's HTTP side: the web server's pages and API, and the simulator's truth and control."""

    def __init__(self, stack: Stack, http: aiohttp.ClientSession) -> None:
        self.stack = stack
        self.http = http

    async def healthy(self) -> bool:
        """Return whether /healthz answers 200."""
        async with self.http.get(f"{self.stack.url}/healthz") as response:
            return response.status == 200

    async def truth(self) -> dict:
        """Return the simulator's ground truth."""
        async with self.http.get(f"{self.stack.sim_url}/simulator/truth") as response:
            return await response.json()

    async def control(self, payload: dict) -> dict:
        """Send one action to the simulator."""
        async with self.http.post(f"{self.stack.sim_url}/simulator/control", json=payload) as response:
            return await response.json()

    async def subscribed(self) -> bool:
        """Return whether the worker holds a notification socket on the simulator."""
        channels = (await self.truth()).get("channels", {})
        return any(c["sockets_open"] for client in channels.values() for c in client.values())

    async def login(self) -> str:
        """Sign in as admin through the login form; return the session id."""
        async with self.http.get(f"{self.stack.url}/admin/login/") as response:
            page = await response.text()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        if token is None:
            raise RuntimeError("no CSRF token on the login page")
        form = {"csrfmiddlewaretoken": token.group(1), "username": "admin", "password": self.stack.password}
        async with self.http.post(f"{self.stack.url}/admin/login/", data=form, allow_redirects=False) as response:
            if response.status != 302:
                raise RuntimeError(f"login failed: HTTP {response.status}")
        session = next((c.value for c in self.http.cookie_jar if c.key == "sessionid"), None)
        if not session:
            raise RuntimeError("login set no session cookie")
        return session

    async def board_source(self, slug: str) -> str:
        """Return the agents' source key ("c<pk>") once every agent is on the live board, else ""."""
        async with self.http.get(f"{self.stack.url}/api/boards/{slug}/") as response:
            data = await response.json()
        agents = data.get("agents", [])
        if data.get("health", {}).get("state") != "live" or len(agents) != len((await self.truth())["agents"]):
            return ""
        return agents[0]["source"]


async def _viewer(index: int, url: str, headers: dict, origin: str, tracker: Tracker, gate: asyncio.Semaphore) -> None:
    """Hold one board socket: after its snapshot, hand every frame to the tracker until cancelled."""
    async with gate:
        for attempt in range(TRY_LATER_ATTEMPTS):
            # No size cap: a snapshot of a big board is one large frame.
            ws: ClientConnection = await connect(url, origin=origin, additional_headers=headers, max_size=None)
            try:
                await asyncio.wait_for(ws.recv(), timeout=20)  # the snapshot
                break
            except ConnectionClosed as closed:
                # A crowd of sign-ins at once is told to come back later (4011), as a page is; it retries
                # after a jittered wait, as the page does.
                if closed.rcvd is None or closed.rcvd.code != TRY_LATER or attempt == TRY_LATER_ATTEMPTS - 1:
                    raise
            await asyncio.sleep(random.uniform(0.2, 1.0) * (attempt + 1))
    tracker.open.add(index)
    try:
        async for frame in ws:
            tracker.see(index, frame if isinstance(frame, str) else frame.decode(), time.perf_counter())
    finally:
        tracker.open.discard(index)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.close(), 2)


async def _change_presences(client: Client, tracker: Tracker, source: str, changes: int, seed: int) -> None:
    """Make CHANGES presence changes, each timed by the tracker, at varying spacing."""
    rng = random.Random(seed)
    agent_id = ""
    for n in range(changes):
        agents = (await client.truth())["agents"]
        if n % 2 == 0 or agents.get(agent_id, {}).get("presence") != "break":
            # Even steps send someone on a break; odd ones bring that agent back.
            agent_id = rng.choice(sorted(a for a, s in agents.items() if s["presence"] != "break"))
            presence, statuses = "BREAK", frozenset({"break"})
        else:
            presence, statuses = "ON_QUEUE", ON_QUEUE_STATUSES
        tracker.expect(f"a-{source}-{agent_id}", statuses)
        await client.control({"action": "set_presence", "user_id": agent_id, "presence": presence})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(tracker.all_seen.wait(), CHANGE_TIMEOUT)
        tracker.finish()
        # Spacing varies so changes meet the coalescing window at different phases.
        await asyncio.sleep(rng.uniform(0.35, 0.85))


async def _measure(stack: Stack, viewers: int, changes: int, seed: int) -> tuple[Tracker, int]:
    """Wait for the stack, open the viewers, time the changes; return the tracker and the board's window (ms)."""
    jar = aiohttp.CookieJar(unsafe=True)  # unsafe: accept cookies from an IP address host
    async with aiohttp.ClientSession(cookie_jar=jar, timeout=aiohttp.ClientTimeout(total=10)) as http:
        client = Client(stack, http)
        await _poll("/healthz", client.healthy, stack)
        await _poll("the simulator", client.truth, stack)
        board = await _poll("the board", _returning(stack.board_slug), stack)
        await _poll("the worker's notification socket", client.subscribed, stack)
        session = await client.login()
        source = await _poll("every agent on the board", lambda: client.board_source(board), stack)
        window = stack.coalesce_ms(board)
        # No new contacts: agents' own presence changes remain, as light background churn.
        await client.control({"action": "set_rate", "rate": 0})

        tracker = Tracker(viewers)
        url = f"ws://127.0.0.1:{stack.port}/ws/boards/{board}/?{VERSION_PARAM}={PROTOCOL_VERSION}"
        headers = {"Cookie": f"sessionid={session}"}
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
        opened = time.perf_counter()
        tasks = [asyncio.create_task(_viewer(i, url, headers, stack.url, tracker, gate)) for i in range(viewers)]
        try:
            await _poll(f"{viewers} viewers", _all_open(tracker, tasks), stack, limit=90)
            print(f"{viewers} viewers connected in {time.perf_counter() - opened:.1f} s")
            await asyncio.sleep(1.0)  # let the connection burst settle
            wall, own, theirs = time.perf_counter(), time.process_time(), stack.cpu_seconds()
            await _change_presences(client, tracker, source, changes, seed)
            # Both sides share the machine: how busy each was says who set the pace.
            wall = time.perf_counter() - wall
            used = {"bench client": time.process_time() - own}
            used |= {name: now - theirs[name] for name, now in stack.cpu_seconds().items() if name in theirs}
            tracker.cpu = {name: seconds / wall for name, seconds in used.items()}
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return tracker, window


def _returning(function):
    async def check():
        return function()

    return check


def _all_open(tracker: Tracker, tasks: list[asyncio.Task]):
    async def check() -> bool:
        failed = [t for t in tasks if t.done() and not t.cancelled() and t.exception() is not None]
        if failed:
            raise RuntimeError(f"{len(failed)} viewers failed to connect, e.g. {failed[0].exception()!r}")
        return len(tracker.open) == tracker.viewers

    return check


def run(
    *,
    viewers: int = 200,
    changes: int = 40,
    queues: int = 5,
    agents: int = 60,
    redis_url: str | None = None,
    seed: int = 1,
) -> dict:
    """Start the stack, measure, print the figures, stop the stack (also on errors); return the figures."""
    with tempfile.TemporaryDirectory(prefix="floorview-bench-") as workdir:
        if redis_url:
            stack: Stack = Fleet(Path(workdir), queues=queues, agents=agents, redis_url=redis_url)
        else:
            stack = Demo(Path(workdir), queues=queues, agents=agents)
        print(f"== Change-to-viewer delay ({viewers} viewers on one board; {stack.description}, {agents} agents) ==")
        try:
            stack.start()
            tracker, window = asyncio.run(_measure(stack, viewers, changes, seed))
        finally:
            stack.stop()
    return report(tracker, window, changes)


def report(tracker: Tracker, window_ms: int, changes: int) -> dict:
    """Print the delay figures of TRACKER and return them."""
    delays = [d * 1000 for d in tracker.delays]
    expected = tracker.viewers * changes
    print(f"changes: {changes}; receipts: {len(delays)} of {expected}", end="; ")
    print(f"missed: {tracker.missed} (a change times out after {CHANGE_TIMEOUT:.0f} s)")
    if not delays:
        print("no receipts: nothing to report")
        return {"missed": tracker.missed}
    p50, p95, p99, worst = (percentile(delays, q) for q in (0.5, 0.95, 0.99, 1.0))
    print(f"delay over all viewer-receipts (ms): p50 {p50:.0f}  p95 {p95:.0f}  p99 {p99:.0f}  max {worst:.0f}")
    first = percentile([d * 1000 for d in tracker.firsts], 0.5)
    last = percentile([d * 1000 for d in tracker.lasts], 0.5)
    print(f"per change, median over changes (ms): first viewer {first:.0f}, last viewer {last:.0f}")
    if tracker.cpu:
        print("CPU while changing (share of one core): " + ", ".join(f"{n} {u:.0%}" for n, u in tracker.cpu.items()))
    target = window_ms + 100
    verdict = "within" if p99 <= target else "OVER"
    print(f"coalescing window: {window_ms} ms; p99 {p99:.0f} ms vs target window + 100 = {target} ms: {verdict}")
    return {"p50": p50, "p95": p95, "p99": p99, "max": worst, "missed": tracker.missed, "window_ms": window_ms}
