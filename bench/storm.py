"""Reconnect storm: N viewers on one board, then Daphne restarted, then every socket dropped at once.

Against the production-shaped stack (``bench/stacks.py`` ``Fleet``: simulate,
runstreams and ``manage.py serve`` sharing a Redis on 127.0.0.1). Every viewer
reconnects the way ``static/dashboard/board.js`` does, re-implemented here:

- a close with a refusal code (4401, 4403, 4404) ends the viewer;
- a close with a restart code (``protocol.for_page()["restarts"]``) comes back
  after a uniform wait in the window the close reason names
  (``protocol.restart_spread``), else within one second;
- any other close whose reason names a window (4011) comes back after a
  uniform wait in it (past 5 such refusals in a row, after the longer of that
  and the backoff below);
- any other close, and a handshake that fails, comes back after the page's
  backoff: full jitter over min(30 s, 1 s x 2^min(retries, 5));
- the retry count restarts when a socket that had been open 10 s closes;
- frames are acknowledged every 16 frames or 256 KiB, as the page does.

A viewer "has its board" again when the last part of a snapshot arrives on a
new socket. Two phases, each bounded by ``PHASE_LIMIT`` seconds: (a) Daphne
gets SIGTERM (it closes every socket with 4012), and is started again on the
same port once it exited; (b) the client aborts every TCP connection at once
(the page sees 1006). Prints per phase the time until each viewer has a
snapshot again (p50/p95/max/all), the failed handshakes by kind and Daphne's
CPU. Asserts nothing. Every process started is stopped by pid.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from bench.stacks import Fleet
from bench.viewers import Client, _poll, _returning, percentile
from dashboard import protocol
from dashboard.handshake import SOCKET_PASS_COOKIE
from dashboard.protocol import PROTOCOL_VERSION, VERSION_PARAM

PHASE_LIMIT = float(os.environ.get("STORM_PHASE_LIMIT", 60))  # seconds a phase waits for every viewer
SETTLE = 11.0  # board.js resets its retry count once a socket has been open 10 s
OPEN_TIMEOUT = 30.0  # a browser waits long for a handshake; this bounds the harness
HEALTHY_AFTER = 10.0
SPREAD_RETRIES = 5
ACK_EVERY_FRAMES = 16
ACK_EVERY_CHARS = 256 * 1024
RESTARTS = set(protocol.for_page()["restarts"])
REFUSALS = {int(code) for code in protocol.for_page()["refusals"]}
INITIAL_CONCURRENCY = 100  # the first connections only: screens switched on over a minute, not at once


class Storm:
    """The viewers' shared bookkeeping: when each one last had a full snapshot, and what failed."""

    def __init__(self, viewers: int) -> None:
        self.viewers = viewers
        self.phase_started = 0.0
        self.recovered: dict[int, float] = {}
        self.failures: Counter[str] = Counter()
        self.all_back = asyncio.Event()
        self.sockets: dict[int, object] = {}
        self.stopping = False
        self.refused = 0

    def start_phase(self) -> None:
        """Start the clock: every viewer must get a snapshot again from now on."""
        self.phase_started = time.perf_counter()
        self.recovered = {}
        self.failures = Counter()
        self.all_back.clear()

    def snapshot(self, index: int) -> None:
        """Note that viewer INDEX has just received a complete snapshot."""
        if index not in self.recovered:
            self.recovered[index] = time.perf_counter() - self.phase_started
            if len(self.recovered) >= self.viewers:
                self.all_back.set()


def _complete_snapshot(frame: str) -> bool:
    if not frame.startswith("{"):
        return False
    head = json.loads(frame.partition("\n")[0])
    if head.get("type") not in (protocol.SNAPSHOT_FRAME, protocol.SNAPSHOT_PART_FRAME):
        return False
    return head.get("part", 1) == head.get("parts", 1)


class Viewer:
    """One page's socket, reconnecting as board.js does."""

    def __init__(self, index: int, url: str, headers: dict, origin: str, storm: Storm) -> None:
        self.index, self.url, self.headers, self.origin, self.storm = index, url, headers, origin, storm
        self.retries = 0

    def next_delay(self) -> float:
        """board.js nextDelay(): full jitter, growing, capped."""
        delay = random.random() * min(30.0, 1.0 * 2 ** min(self.retries, 5))
        self.retries += 1
        return delay

    async def run(self, gate: asyncio.Semaphore | None) -> None:
        """Hold the socket, reconnecting after every close, until the storm stops or a refusal."""
        delay = 0.0
        while not self.storm.stopping:
            if delay:
                await asyncio.sleep(delay)
            code, reason, opened_for = await self._one_socket(gate)
            gate = None
            if opened_for >= HEALTHY_AFTER:
                self.retries = 0
            if code in REFUSALS:
                self.storm.refused += 1
                return
            spread = protocol.restart_spread(reason)
            if code in RESTARTS:
                delay = random.random() * (spread if spread is not None else 1.0)
            elif spread is not None:
                delay = random.random() * spread
                if self.retries >= SPREAD_RETRIES:
                    delay = max(delay, self.next_delay())
                else:
                    self.retries += 1
            else:
                delay = self.next_delay()

    async def _one_socket(self, gate: asyncio.Semaphore | None) -> tuple[int, str, float]:
        """Open one socket (within GATE, if given) and read it until it closes; return (code, reason, seconds open)."""
        try:
            async with gate or contextlib.nullcontext():
                ws = await self._connect()
        except InvalidStatus as refused:
            self.storm.failures[f"HTTP {refused.response.status_code}"] += 1
            return 1006, "", 0.0
        except (OSError, TimeoutError, InvalidHandshake) as error:
            self.storm.failures[type(error).__name__] += 1
            return 1006, "", 0.0
        return await self._read(ws)

    async def _connect(self):
        return await connect(
            self.url,
            origin=self.origin,
            additional_headers=self.headers,
            max_size=None,
            open_timeout=OPEN_TIMEOUT,
            ping_interval=None,  # a browser sends no pings of its own
            close_timeout=2,
        )

    async def _read(self, ws) -> tuple[int, str, float]:
        opened = time.perf_counter()
        self.storm.sockets[self.index] = ws
        frames = acked = chars = 0
        had_snapshot = False
        try:
            async for frame in ws:
                text = frame if isinstance(frame, str) else frame.decode()
                frames += 1
                chars += len(text)
                if frames - acked >= ACK_EVERY_FRAMES or chars >= ACK_EVERY_CHARS:
                    await ws.send(json.dumps({"type": "ack", "frames": frames}))
                    acked, chars = frames, 0
                if not had_snapshot and _complete_snapshot(text):
                    had_snapshot = True
                    self.storm.snapshot(self.index)
        except ConnectionClosed:
            pass
        finally:
            self.storm.sockets.pop(self.index, None)
        rcvd = ws.protocol.close_rcvd
        code, reason = (rcvd.code, rcvd.reason) if rcvd is not None else (1006, "")
        if not had_snapshot:
            self.storm.failures[f"closed {code} before a snapshot"] += 1
        return code, reason, time.perf_counter() - opened


def _figures(storm: Storm, name: str, daphne_cpu: float | None, client_cpu: float) -> dict:
    times = sorted(storm.recovered.values())
    back = len(times)
    figures = {"phase": name, "back": back, "failures": dict(storm.failures)}
    line = f"{name}: {back} of {storm.viewers} viewers have a snapshot again"
    if times:
        p50, p95, worst = (percentile(times, q) for q in (0.5, 0.95, 1.0))
        figures |= {"p50": p50, "p95": p95, "max": worst}
        line += f"; p50 {p50:.1f} s, p95 {p95:.1f} s, max {worst:.1f} s"
        line += f", all {worst:.1f} s" if back == storm.viewers else ", not all within the phase's limit"
    print(line)
    waiting = sum(1 for index in storm.sockets if index not in storm.recovered)
    if waiting:
        print(f"  {waiting} sockets open without a snapshot at the end")
    print("  failed handshakes: " + (", ".join(f"{k}: {v}" for k, v in storm.failures.most_common()) or "none"))
    cpu = f"Daphne {daphne_cpu:.0%}" if daphne_cpu is not None else "Daphne n/a"
    print(f"  CPU over the recovery (share of one core): {cpu}, bench client {client_cpu:.0%}")
    return figures


async def _recovery(stack: Fleet, storm: Storm, name: str, action, limit: float = PHASE_LIMIT) -> dict:
    own, theirs = time.process_time(), None
    storm.start_phase()
    await action()
    theirs = stack.cpu_seconds().get("daphne")
    began = time.perf_counter()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(storm.all_back.wait(), limit)
    wall = max(time.perf_counter() - began, 1e-3)
    now = stack.cpu_seconds().get("daphne")
    daphne = (now - theirs) / wall if now is not None and theirs is not None else None
    return _figures(storm, name, daphne, (time.process_time() - own) / wall)


async def _measure(stack: Fleet, viewers: int) -> list[dict]:
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar, timeout=aiohttp.ClientTimeout(total=10)) as http:
        client = Client(stack, http)
        await _poll("/healthz", client.healthy, stack)
        board = await _poll("the board", _returning(stack.board_slug), stack)
        await client.login()
        await _poll("every agent on the board", lambda: client.board_source(board), stack)
    # Every screen its own session, as a wall of screens signed in one by one holds: a per-session cache
    # must not flatter the figures by serving 2,000 viewers from one entry.
    sessions = await asyncio.to_thread(stack.sessions, viewers)
    url = f"ws://127.0.0.1:{stack.port}/ws/boards/{board}/?{VERSION_PARAM}={PROTOCOL_VERSION}"
    storm = Storm(viewers)
    gate = asyncio.Semaphore(INITIAL_CONCURRENCY)
    crowd = [
        Viewer(i, url, {"Cookie": f"sessionid={key}; {SOCKET_PASS_COOKIE}={sent}"}, stack.url, storm)
        for i, (key, sent) in enumerate(sessions)
    ]
    storm.start_phase()
    tasks = [asyncio.create_task(viewer.run(gate)) for viewer in crowd]
    results = []
    try:
        # The first connections are a storm of their own (every screen switched on at once): given longer.
        results.append(await _recovery(stack, storm, "first connection", _nothing, 3 * PHASE_LIMIT))
        if not storm.recovered:
            print("no viewer connected: no storm measured")
            return results
        await asyncio.sleep(SETTLE)

        async def restart() -> None:
            await asyncio.to_thread(stack.restart_web)

        results.append(await _recovery(stack, storm, "(a) Daphne restarted", restart))
        await asyncio.sleep(SETTLE)

        async def drop() -> None:
            for ws in list(storm.sockets.values()):
                ws.transport.abort()

        results.append(await _recovery(stack, storm, "(b) every socket dropped", drop))
    finally:
        storm.stopping = True
        for task in tasks:
            task.cancel()
        for ws in list(storm.sockets.values()):
            ws.transport.abort()
        ended = await asyncio.gather(*tasks, return_exceptions=True)
        crashed = [e for e in ended if isinstance(e, Exception) and not isinstance(e, asyncio.CancelledError)]
        if crashed:
            print(f"  {len(crashed)} viewers crashed in the harness, e.g. {crashed[0]!r}")
    return results


async def _nothing() -> None:
    return None


def run(*, viewers: int = 2000, redis_url: str, queues: int = 5, agents: int = 60) -> list[dict]:
    """Start the fleet, connect VIEWERS, restart Daphne, drop every socket, print the figures; stop the fleet."""
    print(f"== Reconnect storm ({viewers} viewers on one board; Daphne over Redis, {agents} agents) ==")
    with tempfile.TemporaryDirectory(prefix="floorview-bench-") as workdir:
        stack = Fleet(Path(workdir), queues=queues, agents=agents, redis_url=redis_url)
        try:
            stack.start()
            return asyncio.run(_measure(stack, viewers))
        finally:
            stack.stop()
            log = (Path(workdir) / "daphne.log").read_text(errors="replace").splitlines()
            if os.environ.get("STORM_KEEP_LOGS"):
                for name in ("daphne", "runstreams", "simulate"):
                    shutil.copy(Path(workdir) / f"{name}.log", Path(os.environ["STORM_KEEP_LOGS"]) / f"{name}.log")
            print(f"  Daphne's log: {len(log)} lines" + ("; last: " + log[-1][:200] if log else ""))
