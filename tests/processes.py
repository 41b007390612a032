"""Real processes for the end-to-end tests: Daphne, the simulator, ``runstreams`` workers, and Chromium's settings.

Each test ends what it started, by its own handle (never by name), in a
``finally`` block or a fixture's teardown.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import redis

from tests.redis_util import REDIS_TEST_URL, unique_prefix
from tests.timing import scaled

ROOT = Path(__file__).resolve().parent.parent
# Debian's Chromium, never a downloaded browser build.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SIMULATOR_SECRET = "fleet-test-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Daphne:
    """The real ASGI application in a Daphne subprocess, restartable on the same port.

    Started as production starts it, through ``manage.py serve`` (Daphne with the request body cap).
    """

    def __init__(self, env: dict, port: int, log_path: Path, app: str = "dashboard_project.asgi:application") -> None:
        self.env = env
        self.port = port
        self.log_path = log_path
        self.app = app
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=scaled(1)) as response:
                return response.status == 200
        except OSError:
            return False

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "manage.py",
                    "serve",
                    "-b",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    self.app,
                ],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_until(self.healthy, scaled(20), f"Daphne on port {self.port} (log: {self.log_path})")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=scaled(10))
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


FLEET_SEED = """
import json, urllib.request
from django.contrib.auth.models import Group
from dashboard.models import Board
from streams.models import Connection, Queue

truth = json.load(urllib.request.urlopen(%(sim)r + "/simulator/truth"))
connection = Connection.of(name="Genesys", base_url=%(sim)r, client_id="floorview-demo", client_secret=%(secret)r)
connection.save()
queues = [
    Queue.objects.create(connection=connection, vendor_id=qid, name=q["name"]) for qid, q in truth["queues"].items()
]
board = Board.objects.create(slug="floor", title="Floor", coalesce_ms=100)
board.queues.set(queues)
print(json.dumps({"source": connection.source_key, "board": board.pk}))
"""


class Fleet:
    """A simulator and workers in subprocesses, sharing a SQLite file and the test Redis under one prefix."""

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

    def start_simulator(self, *args: str) -> str:
        """Start ``manage.py simulate`` (with ARGS) on a free port; return its base URL once it serves."""
        self.start("simulator", "simulate", "--port", str(free_port()), "--client-secret", SIMULATOR_SECRET, *args)
        wait_until(lambda: "Press Ctrl-C" in self.log("simulator"), scaled(30), "the simulator")
        self.sim_url = re.search(r"Base URL: +(\S+)", self.log("simulator")).group(1)
        return self.sim_url

    def seed(self) -> dict:
        """Migrate, then add a connection to the simulator, its queues and a board; return their ids."""
        self.manage("migrate", "--noinput", "-v", "0")
        seeded = self.manage("shell", "-c", FLEET_SEED % {"sim": self.sim_url, "secret": SIMULATOR_SECRET})
        ids = json.loads(seeded.splitlines()[-1])
        self.source = ids["source"]
        return ids

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
