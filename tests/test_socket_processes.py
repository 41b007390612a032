"""Board sockets on real Daphne processes over Redis: revocations reach every process, and handshake bursts.

127.0.0.1 only, bounded counts; every wait is on an event (a close, a frame)
with a deadline scaled by tests/timing.py.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.request

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from tests.board_site import Worker, board_site
from tests.processes import ROOT, Daphne, free_port
from tests.socket_util import ANNOUNCE, head_of
from tests.timing import scaled

SESSION_FOR = """
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore

user = User.objects.get(username=%r)
session = SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.create()
print(session.session_key)
"""


def manage_shell(env: dict, code: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=scaled(60),
    )
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


def socket_url(server: Daphne) -> str:
    return f"ws://127.0.0.1:{server.port}/ws/boards/floor/?{ANNOUNCE}"


async def open_viewer(server: Daphne, session_key: str):
    """Open the board as the signed-in viewer and return the socket once its snapshot arrived."""
    ws = await connect(
        socket_url(server),
        origin=f"http://127.0.0.1:{server.port}",
        additional_headers={"Cookie": f"sessionid={session_key}"},
        open_timeout=scaled(10),
    )
    frame = await asyncio.wait_for(ws.recv(), scaled(10))
    assert head_of(frame)["type"] == "snapshot"
    return ws


async def close_code(ws) -> int:
    """Return the code the server closes WS with, reading (and acknowledging nothing) until then."""
    try:
        async with asyncio.timeout(scaled(10)):
            while True:
                await ws.recv()
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else 1006


def test_a_change_made_in_another_process_closes_sockets_in_every_web_process(tmp_path):
    with board_site(tmp_path) as (first, _ids, _prefix):
        # The periodic re-check is an hour away: a close can only come from the announcement.
        first.stop()
        first.env = {**first.env, "FLOORVIEW_ACCESS_RECHECK": "3600"}
        first.start()
        second = Daphne(first.env, free_port(), tmp_path / "daphne-2.log")
        second.start()
        try:
            key = manage_shell(first.env, SESSION_FOR % "sue")

            async def scenario() -> list[int]:
                sockets = [await open_viewer(first, key), await open_viewer(second, key)]
                # A third process (a shell, as an admin script would be) takes sue out of the board's group.
                await asyncio.to_thread(
                    manage_shell,
                    first.env,
                    "from django.contrib.auth.models import User, Group\n"
                    "User.objects.get(username='sue').groups.remove(Group.objects.get(name='Supervisors'))",
                )
                codes = await asyncio.gather(*(close_code(ws) for ws in sockets))
                return list(codes)

            assert asyncio.run(scenario()) == [4403, 4403]
        finally:
            second.stop()


def db_calls(server: Daphne) -> int:
    with urllib.request.urlopen(f"{server.url}/__probe__/db-calls", timeout=scaled(5)) as response:
        return int(response.read())


async def anonymous_upgrade(server: Daphne) -> int | str:
    """Open the board without a session; return the close code, or what went wrong instead."""
    try:
        async with connect(socket_url(server), origin=f"http://127.0.0.1:{server.port}", open_timeout=scaled(30)) as ws:
            return await close_code(ws)
    except InvalidStatus as refused:
        return f"HTTP {refused.response.status_code}"
    except (OSError, TimeoutError, InvalidHandshake) as error:
        return type(error).__name__


def test_a_burst_of_anonymous_upgrades_is_refused_cheaply_while_a_viewer_connects(tmp_path):
    with board_site(tmp_path, app="tests.handshake_probe:application") as (server, _ids, _prefix):
        key = manage_shell(server.env, SESSION_FOR % "sue")

        async def scenario() -> tuple[list, int]:
            limit = asyncio.Semaphore(100)
            under_way = asyncio.Event()

            async def one() -> int | str:
                async with limit:
                    outcome = await anonymous_upgrade(server)
                    under_way.set()
                    return outcome

            before = await asyncio.to_thread(db_calls, server)
            burst = [asyncio.ensure_future(one()) for _ in range(300)]
            # The viewer arrives once the burst is answering, with most of it still to come.
            await asyncio.wait_for(under_way.wait(), scaled(30))
            # It gets its snapshot within open_viewer's (scaled) deadlines, burst or not.
            viewer = await open_viewer(server, key)
            outcomes = await asyncio.gather(*burst)
            await viewer.close()
            after = await asyncio.to_thread(db_calls, server)
            return outcomes, after - before

        outcomes, calls = asyncio.run(scenario())
        counts = json.dumps({str(o): outcomes.count(o) for o in set(outcomes)})
        # Every socket the application saw was answered 4401. A loaded machine may drop a few connections
        # below the application (the listen queue), which close without any HTTP answer: a few, never most.
        assert set(outcomes) <= {4401, "InvalidMessage", "ConnectionResetError"}, counts
        assert outcomes.count(4401) >= 0.95 * len(outcomes), counts
        # The viewer's own session load, board check and handler cleanups; nothing per anonymous socket.
        assert calls < 20, calls


async def drain(ws) -> tuple[int, int]:
    """Read WS to its end; return (bytes received, close code)."""
    received = 0
    try:
        async with asyncio.timeout(scaled(15)):
            while True:
                received += len((await ws.recv()).encode())
    except ConnectionClosed as closed:
        return received, closed.rcvd.code if closed.rcvd else 1006


def test_under_daphne_a_flooding_client_and_a_reader_that_never_acknowledges_are_closed(tmp_path):
    with board_site(tmp_path) as (server, ids, prefix):
        key = manage_shell(server.env, SESSION_FOR % "sue")

        async def scenario() -> tuple[tuple[int, int], tuple[int, int]]:
            worker = Worker(ids, prefix)
            try:
                await worker.push([worker.queue("q-sales", waiting=1)], reset=True)
                flooder = await open_viewer(server, key)
                for _ in range(1000):
                    await flooder.send('{"type": "resync"}')
                flooded = await drain(flooder)

                silent = await open_viewer(server, key)  # Reads nothing from here on, and acknowledges nothing.
                padding = "x" * 4000
                for n in range(60):  # About 4 KB a delta: well past the 64 KiB cap.
                    await worker.push([worker.agent(f"u{n}", f"Agent {n} {padding}", "q-sales", "on_queue", 0)])
                return flooded, await drain(silent)
            finally:
                await worker.close()

        server.stop()
        server.env = {**server.env, "FLOORVIEW_SOCKET_UNREAD_CAP": "65536"}
        server.start()
        (flood_bytes, flood_code), (silent_bytes, silent_code) = asyncio.run(scenario())
        assert flood_code == 4008
        # The connect snapshot and at most one per message the bucket let through (30), of a one-row board.
        assert flood_bytes < 32 * 4096, flood_bytes
        assert silent_code == 4008
        # What reached the silent reader is bounded by the cap and its newest frame (a delta here).
        assert silent_bytes <= 65536 + 2 * 4500, silent_bytes
