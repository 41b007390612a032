"""Two real ``runstreams`` workers against one Redis: one streams, the other takes over when it is killed.

Checked where it matters, at the simulator: at no sample are two notification
sockets open for the connection, and after a SIGKILL the survivor has the
stream back within 15 s. A SIGTERM then closes the socket and frees the lease.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import redis

from tests.redis_util import REDIS_TEST_URL, unique_prefix
from tests.test_board_browser import free_port, wait_until
from tests.timing import scaled

pytestmark = pytest.mark.redis

ROOT = Path(__file__).resolve().parent.parent
SECRET = "fleet-test-secret"

SEED = """
import json, urllib.request
from django.contrib.auth.models import Group
from dashboard.models import Board
from streams.models import Connection, Queue

truth = json.load(urllib.request.urlopen(%(sim)r + "/simulator/truth"))
connection = Connection(name="Genesys", base_url=%(sim)r, client_id="floorview-demo")
connection.set_client_secret(%(secret)r)
connection.save()
queues = [
    Queue.objects.create(connection=connection, vendor_id=qid, name=q["name"]) for qid, q in truth["queues"].items()
]
board = Board.objects.create(slug="floor", title="Floor", coalesce_ms=100)
board.queues.set(queues)
print(json.dumps({"source": connection.source_key, "board": board.pk}))
"""


class Fleet:
    """A simulator and two workers in subprocesses, sharing a SQLite file and the test Redis."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.prefix = unique_prefix()
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "dashboard_project.settings",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "REDIS_URL": REDIS_TEST_URL,
            "REDIS_PREFIX": self.prefix,
            "CHANNEL_LAYER_PREFIX": self.prefix,
            "FLOORVIEW_CONFIG_POLL": "1",
            "PYTHONUNBUFFERED": "1",
        }
        self.processes: dict[str, subprocess.Popen] = {}
        self.redis = redis.from_url(REDIS_TEST_URL, decode_responses=True)

    def start(self, name: str, *args: str) -> subprocess.Popen:
        log = (self.tmp_path / f"{name}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        self.processes[name] = process
        return process

    def log(self, name: str) -> str:
        return (self.tmp_path / f"{name}.log").read_text(errors="replace")

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=scaled(60),
            check=True,
        )
        return done.stdout

    def truth(self) -> dict:
        with urllib.request.urlopen(f"{self.sim_url}/simulator/truth", timeout=scaled(5)) as response:
            return json.load(response)

    def sockets_open(self) -> int:
        channels = self.truth()["channels"].get("floorview-demo", {})
        return sum(channel["sockets_open"] for channel in channels.values())

    def holder_pid(self) -> int | None:
        owner = self.redis.get(f"{self.prefix}:lease:source:{self.source}")
        return int(owner.split(":")[1]) if owner else None

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
        keys = list(self.redis.scan_iter(match=f"{self.prefix}*"))
        if keys:
            self.redis.delete(*keys)
        self.redis.close()


class SocketSampler(threading.Thread):
    """Count the connection's open sockets at the simulator every few milliseconds, keeping the highest."""

    def __init__(self, fleet: Fleet) -> None:
        super().__init__(daemon=True)
        self.fleet = fleet
        self.highest = 0
        self.samples = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.highest = max(self.highest, self.fleet.sockets_open())
                self.samples += 1
            except OSError:
                pass
            self.stopping.wait(0.02)


def test_a_killed_workers_stream_moves_to_another_without_ever_doubling(tmp_path):
    fleet = Fleet(tmp_path)
    sampler = SocketSampler(fleet)
    try:
        port = free_port()
        fleet.start("simulator", "simulate", "--port", str(port), "--client-secret", SECRET, "--heartbeat", "2")
        wait_until(lambda: "Press Ctrl-C" in fleet.log("simulator"), scaled(30), "the simulator")
        fleet.sim_url = re.search(r"Base URL: +(\S+)", fleet.log("simulator")).group(1)
        fleet.manage("migrate", "--noinput", "-v", "0")
        ids = json.loads(fleet.manage("shell", "-c", SEED % {"sim": fleet.sim_url, "secret": SECRET}).splitlines()[-1])
        fleet.source = ids["source"]
        workers = {fleet.start(name, "runstreams").pid: name for name in ("worker-a", "worker-b")}
        sampler.start()

        wait_until(lambda: fleet.sockets_open() == 1, scaled(30), "one worker streaming")
        holder = fleet.holder_pid()
        assert holder in workers
        epoch_key = f"{fleet.prefix}:board:{ids['board']}:meta"
        wait_until(lambda: fleet.redis.hget(epoch_key, "epoch"), scaled(10), "the board published")
        first_epoch = fleet.redis.hget(epoch_key, "epoch")

        fleet.processes[workers[holder]].send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        survivor = next(pid for pid in workers if pid != holder)
        wait_until(
            lambda: fleet.holder_pid() == survivor and fleet.sockets_open() == 1, scaled(20), "the survivor streaming"
        )
        takeover = time.monotonic() - killed_at
        assert takeover < 15.0 * max(1.0, scaled(1)), f"took {takeover:.1f} s"
        # The survivor publishes the board under its own epoch, so viewers resync.
        wait_until(lambda: fleet.redis.hget(epoch_key, "epoch") != first_epoch, scaled(10), "a new epoch")

        survivor_process = fleet.processes[workers[survivor]]
        survivor_process.send_signal(signal.SIGTERM)
        assert survivor_process.wait(timeout=scaled(20)) == 0, fleet.log(workers[survivor])
        wait_until(lambda: fleet.sockets_open() == 0, scaled(10), "the socket closed on SIGTERM")
        assert fleet.holder_pid() is None  # released at once, not left to lapse
        sampler.stopping.set()
        sampler.join()
        assert sampler.samples > 50
        assert sampler.highest == 1, "two sockets served the same connection at once"
        for name in ("worker-a", "worker-b"):
            assert "Traceback" not in fleet.log(name), fleet.log(name)[-4000:]
    finally:
        sampler.stopping.set()
        fleet.stop_all()
