"""The processes the viewers benchmark measures, started on free 127.0.0.1 ports and stopped by pid.

``Demo`` is the embedded mode (``manage.py demo``: one process). ``Fleet`` is
production-shaped: ``manage.py simulate``, ``manage.py runstreams`` and Daphne
as three processes sharing Redis, under a key prefix of their own that is
deleted afterwards. Both use a throwaway SQLite database, never the
developer's.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from abc import ABC, abstractmethod
from pathlib import Path
from urllib.parse import urlparse

from bench.procfs import cpu_seconds

ROOT = Path(__file__).resolve().parent.parent
BOARD_SLUG = "contact-centre"  # the slug the demo seeds, and the one the fleet's seed uses too

# Run by ``manage.py shell`` in the fleet's database: what the demo seeds for itself.
FLEET_SEED = """
import os
from django.contrib.auth.models import Group, User
from dashboard.models import Board
from streams.models import Connection
from streams.queue_import import import_queues

user = User.objects.create_superuser("admin", "admin@example.com", os.environ["BENCH_PASSWORD"])
group = Group.objects.create(name="Supervisors")
user.groups.add(group)
connection = Connection.of(name="Genesys (simulator)", base_url=os.environ["BENCH_SIM_URL"],
                           client_id="floorview-bench", client_secret=os.environ["BENCH_SIM_SECRET"])
connection.save()
import_queues(connection)
board = Board.objects.create(slug=os.environ["BENCH_BOARD"], title="Contact centre", coalesce_ms=250)
board.queues.set(connection.queues.all())
board.groups.add(group)
"""

# Run by ``manage.py shell``: N sessions of the fleet's user, as N screens signed in one by one would hold
# (signing in through the form costs a password hash each), with their socket passes.
FLEET_SESSIONS = """
import os
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from django.db import transaction
from dashboard.handshake import socket_pass

user = User.objects.get(username="admin")
lines = []
with transaction.atomic():
    for _ in range(int(os.environ["BENCH_SESSIONS"])):
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[-1]  # the model backend, after axes
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        lines.append(session.session_key + " " + socket_pass(session.session_key))
with open(os.environ["BENCH_SESSIONS_FILE"], "w") as out:
    out.write("\\n".join(lines))
"""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(process: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM PROCESS, then SIGKILL it if it has not gone after GRACE seconds."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=grace)


class Stack(ABC):
    """What the benchmark needs from the processes under test."""

    description = ""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port, self.sim_port = free_port(), free_port()
        self.password = secrets.token_urlsafe(12)
        self.database = workdir / "bench.sqlite3"
        self.processes: dict[str, subprocess.Popen] = {}
        # The embedded demo refuses REDIS_URL, and nothing may touch the developer's database.
        self.env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
        self.env |= {
            "DATABASE_URL": f"sqlite:///{self.database}",
            "DJANGO_SETTINGS_MODULE": "dashboard_project.settings",
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
            # Every viewer is the same signed-in user: lift the per-user socket cap out of the bench's way.
            "FLOORVIEW_SOCKETS_PER_USER": "100000",
        }

    @property
    def url(self) -> str:
        """Return the web server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def sim_url(self) -> str:
        """Return the simulator's base URL."""
        return f"http://127.0.0.1:{self.sim_port}"

    def spawn(self, name: str, command: list[str]) -> subprocess.Popen:
        """Start one process of the stack, its output going to a log file in the work directory."""
        with (self.workdir / f"{name}.log").open("wb") as log:
            process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.processes[name] = process
        return process

    @abstractmethod
    def start(self) -> None:
        """Start the processes (``stop`` cleans up whatever got started, even if this fails)."""

    def check_alive(self) -> None:
        """Raise RuntimeError (with the logs) if a process of the stack has exited."""
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{self.log_tail()}")

    def cpu_seconds(self) -> dict[str, float]:
        """Return the CPU time (user + system) each running process has used so far; empty where /proc is not."""
        used = {}
        for name, process in self.processes.items():
            try:
                used[name] = cpu_seconds(process.pid)
            except OSError:
                continue
        return used

    def board_slug(self) -> str:
        """Return the board's slug once it exists, else ""."""
        return BOARD_SLUG

    def coalesce_ms(self, slug: str) -> int:
        """Return the board's coalescing window as stored."""
        with sqlite3.connect(self.database) as db:
            return db.execute("SELECT coalesce_ms FROM dashboard_board WHERE slug = ?", (slug,)).fetchone()[0]

    def log_tail(self, lines: int = 15) -> str:
        """Return the end of every process's output, for error messages."""
        parts = []
        for name in self.processes:
            text = (self.workdir / f"{name}.log").read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {name} ---\n" + "\n".join(text))
        return "\n".join(parts)

    def stop(self) -> None:
        """Stop every process this stack started, last started first."""
        for process in reversed(list(self.processes.values())):
            _stop(process)


class Demo(Stack):
    """``manage.py demo``: simulator, worker and Daphne in one process, with the in-memory layer."""

    description = "embedded demo: one process, in-memory layer"

    def __init__(self, workdir: Path, *, queues: int, agents: int) -> None:
        super().__init__(workdir)
        self.queues, self.agents = queues, agents
        self.env["DEMO_PASSWORD"] = self.password

    def start(self) -> None:
        """Start the demo; it migrates, seeds and serves by itself."""
        command = [sys.executable, "manage.py", "demo", "--port", str(self.port), "--sim-port", str(self.sim_port)]
        self.spawn("demo", [*command, "--queues", str(self.queues), "--agents", str(self.agents)])

    def board_slug(self) -> str:
        """Return the board the demo printed (it prints once seeding is done), or "" before that."""
        match = re.search(r"/boards/([\w-]+)/", (self.workdir / "demo.log").read_text(errors="replace"))
        return match.group(1) if match else ""


class Fleet(Stack):
    """Production-shaped: simulator, ``runstreams`` and Daphne as separate processes sharing Redis."""

    description = "simulate + runstreams + daphne over Redis"

    def __init__(self, workdir: Path, *, queues: int, agents: int, redis_url: str) -> None:
        super().__init__(workdir)
        if urlparse(redis_url).hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the benchmark only talks to a Redis on this machine (127.0.0.1)")
        self.redis_url = redis_url
        # A private key prefix (channel layer and snapshot store), deleted afterwards.
        self.prefix = f"fvbench-{secrets.token_hex(4)}"
        secret = secrets.token_urlsafe(18)
        self.env |= {
            "REDIS_URL": redis_url,
            "DJANGO_SETTINGS_MODULE": "bench.redis_settings",
            "FLOORVIEW_BENCH_PREFIX": self.prefix,
            # The settings read these too; set them so no key can land outside the prefix.
            "REDIS_PREFIX": self.prefix,
            "CHANNEL_LAYER_PREFIX": self.prefix,
            "BENCH_PASSWORD": self.password,
            "BENCH_SIM_URL": self.sim_url,
            "BENCH_SIM_SECRET": secret,
            "BENCH_BOARD": BOARD_SLUG,
        }
        self.queues, self.agents = queues, agents

    def start(self) -> None:
        """Start the simulator, migrate and seed the database, then start the worker and Daphne."""
        manage = [sys.executable, "manage.py"]
        simulate = [*manage, "simulate", "--port", str(self.sim_port), "--rate", "0.8"]
        # "--opt=value": a random secret may start with "-", which argparse would take for an option.
        simulate += ["--client-id", "floorview-bench", f"--client-secret={self.env['BENCH_SIM_SECRET']}"]
        self.spawn("simulate", [*simulate, "--queues", str(self.queues), "--agents", str(self.agents)])
        self._wait_for_simulator()
        with (self.workdir / "seed.log").open("wb") as log:
            for step in (["migrate", "--noinput", "-v", "0"], ["shell", "-v", "0", "-c", FLEET_SEED]):
                done = subprocess.run([*manage, *step], cwd=ROOT, env=self.env, stdout=log, stderr=log, timeout=120)
                if done.returncode:
                    tail = (self.workdir / "seed.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"{step[0]} failed ({done.returncode}):\n{tail}")
        self.spawn("runstreams", [*manage, "runstreams"])
        # The production web process: Daphne through the project's launcher (with its request body cap).
        daphne = [*manage, "serve", "-b", "127.0.0.1", "-p", str(self.port)]
        self.web_command = [*daphne, "dashboard_project.asgi:application"]
        self.spawn("daphne", self.web_command)

    def sessions(self, count: int) -> list[tuple[str, str]]:
        """Return COUNT new sessions of the fleet's user, each as (session key, socket pass)."""
        path = self.workdir / "sessions.txt"
        env = self.env | {"BENCH_SESSIONS": str(count), "BENCH_SESSIONS_FILE": str(path)}
        with (self.workdir / "seed.log").open("ab") as log:
            command = [sys.executable, "manage.py", "shell", "-v", "0", "-c", FLEET_SESSIONS]
            done = subprocess.run(command, cwd=ROOT, env=env, stdout=log, stderr=log, timeout=300)
        if done.returncode:
            raise RuntimeError(f"making sessions failed:\n{(self.workdir / 'seed.log').read_text()[-2000:]}")
        return [tuple(line.split()) for line in path.read_text().splitlines()]

    def restart_web(self) -> None:
        """Stop Daphne as a deploy does (SIGTERM: it closes its sockets with 4012), then start it on the same port."""
        _stop(self.processes["daphne"])
        # Appended to its log, so the first run's lines stay readable.
        with (self.workdir / "daphne.log").open("ab") as log:
            process = subprocess.Popen(self.web_command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.processes["daphne"] = process

    def _wait_for_simulator(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                with urllib.request.urlopen(f"{self.sim_url}/simulator/truth", timeout=2):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"the simulator did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """Stop the processes, then delete the Redis keys under this run's prefix."""
        super().stop()
        import redis

        from streams.oauth import cache_key

        client = redis.Redis.from_url(self.redis_url)
        try:
            keys = list(client.scan_iter(match=f"{self.prefix}*", count=1000))
            # The shared token cache keys by token endpoint and client, outside any prefix; this
            # run's endpoint (a fresh port) makes the key its own.
            keys.append(cache_key(f"{self.sim_url}/oauth/token", "floorview-bench"))
            if keys:
                client.delete(*keys)
        finally:
            client.close()
