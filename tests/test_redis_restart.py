"""A Redis restart under a running fleet: the worker and Daphne ride it out and viewers resync by themselves.

Uses a redis-server of the test's own on a free port (never the machine's
shared one), restarts it empty, and checks what a supervisor would notice:
the open board socket stays up and receives a fresh snapshot once Redis is
back, the worker keeps exactly one upstream socket, and the board agrees with
the simulator's truth again.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import redis
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.processes import Daphne, Fleet, free_port, wait_until
from tests.socket_util import ANNOUNCE, head_of
from tests.test_demo_end_to_end import board_matches_truth
from tests.timing import scaled

pytestmark = pytest.mark.redis

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"

# A superuser and a signed-in session for the viewer's socket and the board's JSON.
SESSION = """
from django.contrib.auth.models import User
from django.test import Client
User.objects.create_superuser("sue", "sue@example.com", "unused-password")
client = Client()
client.force_login(User.objects.get(username="sue"))
print(client.cookies["sessionid"].value)
"""


class RedisServer:
    """A throwaway redis-server on 127.0.0.1 that keeps nothing on disk, stopped and started by its pid."""

    def __init__(self, port: int, workdir: Path) -> None:
        self.port = port
        self.workdir = workdir
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        with (self.workdir / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(
                [*command, "--dir", str(self.workdir)], stdout=log, stderr=subprocess.STDOUT
            )
        wait_until(self.answers, scaled(10), f"redis-server on port {self.port}")

    def answers(self) -> bool:
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=scaled(10))
        self.process = None


class Viewer(threading.Thread):
    """One board socket, as a browser holds it: records every frame's head until it closes."""

    def __init__(self, url: str, cookie: str, origin: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.headers = {"Cookie": f"sessionid={cookie}", "Origin": origin}
        self.frames: list[tuple[float, str, int, str]] = []  # (when, kind, seq, health state)
        self.closed_with: int | None = None
        self.socket = None

    def run(self) -> None:
        try:
            with connect(self.url, additional_headers=self.headers) as self.socket:
                for message in self.socket:
                    head = head_of(message) or {}
                    frame = (head.get("type"), head.get("seq", 0), (head.get("health") or {}).get("state"))
                    self.frames.append((time.monotonic(), *frame))
                self.closed_with = self.socket.close_code
        except ConnectionClosed as closed:
            self.closed_with = closed.rcvd.code if closed.rcvd else 1006

    def close(self) -> None:
        if self.socket is not None:
            self.socket.close()
        self.join(scaled(5))

    def since(self, moment: float) -> list[tuple[float, str, int, str]]:
        return [frame for frame in self.frames if frame[0] >= moment]


def board_json(daphne: Daphne, cookie: str) -> dict:
    request = urllib.request.Request(f"{daphne.url}/api/boards/floor/", headers={"Cookie": f"sessionid={cookie}"})
    with urllib.request.urlopen(request, timeout=scaled(5)) as response:
        return json.load(response)


def test_the_fleet_rides_out_a_redis_restart_and_viewers_resync(tmp_path):
    server = RedisServer(free_port(), tmp_path)
    server.start()
    fleet = Fleet(tmp_path)
    fleet.redis.close()
    fleet.redis = redis.from_url(server.url, decode_responses=True)
    fleet.env["REDIS_URL"] = server.url
    daphne = Daphne(fleet.env, free_port(), tmp_path / "daphne.log")
    viewer = None
    try:
        fleet.start_simulator("--queues", "3", "--agents", "12", "--heartbeat", "2", "--rate", "0.5")
        fleet.seed()
        cookie = fleet.manage("shell", "-c", SESSION).split()[-1]
        worker = fleet.start("worker", "runstreams")
        daphne.start()
        wait_until(lambda: board_json(daphne, cookie)["agents"], scaled(30), "the worker's first picture of the board")
        viewer = Viewer(f"ws://127.0.0.1:{daphne.port}/ws/boards/floor/?{ANNOUNCE}", cookie, daphne.url)
        viewer.start()
        wait_until(lambda: any(kind == "snapshot" for _, kind, _, _ in viewer.frames), scaled(10), "the first snapshot")

        server.stop()
        # Redis is away: the web process keeps the socket open; the page would mark the data stale.
        down_since = time.monotonic()
        # The outage lasts until both processes have run into it: the web process's board feed and
        # the worker's publisher (it writes at least every liveness period).
        wait_until(
            lambda: (
                "lost the channel layer" in daphne.log_path.read_text(errors="replace")
                and "failed" in fleet.log("worker")
            ),
            scaled(10),
            "the web process and the worker to notice Redis is gone",
        )
        server.start()
        back = time.monotonic()

        def resynced() -> bool:
            frames = viewer.since(back)
            snapshots = [i for i, frame in enumerate(frames) if frame[1] == "snapshot" and frame[2] > 0]
            # A fresh snapshot of the rewritten board, and the stream flowing on after it.
            return bool(snapshots) and len(frames) > snapshots[0] + 1

        wait_until(resynced, scaled(20), f"the viewer to resync after the restart (frames: {viewer.since(down_since)})")
        assert viewer.closed_with is None, "the board socket closed during the outage"
        assert worker.poll() is None and daphne.process.poll() is None
        wait_until(lambda: viewer.frames[-1][3] == "live", scaled(15), "the board to say live again")
        assert fleet.sockets_open() == 1

        # Once the simulator holds still, the board agrees with it again (the store was rebuilt in full).
        urllib.request.urlopen(
            urllib.request.Request(
                f"{fleet.sim_url}/simulator/control",
                data=json.dumps({"action": "pause"}).encode(),
                headers={"Content-Type": "application/json"},
            ),
            timeout=scaled(5),
        )
        truth = fleet.truth()
        wait_until(
            lambda: not board_matches_truth(board_json(daphne, cookie), truth),
            scaled(15),
            "the board to agree with the truth",
        )
        # The worker took its leases back as it renewed them: its upstream stream never stopped.
        # (The key is back by the next renewal, a quarter of the lease TTL at most after the restart.)
        wait_until(lambda: fleet.holder_pid() == worker.pid, scaled(5), "the worker holding its lease again")
        assert "stopped connector" not in fleet.log("worker")
    finally:
        if viewer is not None:
            viewer.close()
        daphne.stop()
        fleet.stop_all()
        server.stop()
