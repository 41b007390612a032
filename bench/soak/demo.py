"""The demo under soak: ``manage.py demo`` in a process group of its own (``Demo``), and this process's
HTTP side of it, 127.0.0.1 only (``Client``): the board's JSON signed in, the simulator's truth and control.
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import json
import math
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

from bench.procfs import cpu_seconds, rss_kib
from bench.stacks import free_port

ROOT = Path(__file__).resolve().parent.parent.parent
BOARD_SLUG = "cxone"  # the slug the demo gives its CXone board
STARTUP_TIMEOUT = 120.0
HTTP_TIMEOUT = 5.0


class RunFailed(RuntimeError):
    """The soak could not be carried out (the demo would not start, died, or stopped answering)."""


class Demo:
    """``manage.py demo`` in a process group of its own, with a throwaway database in WORKDIR."""

    def __init__(self, workdir: Path, *, agents: int, queues: int, rate: float) -> None:
        self.workdir = workdir
        self.port, self.sim_port = free_port(), free_port()
        self.password = secrets.token_urlsafe(12)
        self.database = workdir / "soak.sqlite3"
        self.log_path = workdir / "demo.log"
        self.options = ["--agents", str(agents), "--queues", str(queues), "--rate", str(rate)]
        # The demo refuses REDIS_URL, and nothing may touch the developer's database.
        self.env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
        self.env |= {
            "DATABASE_URL": f"sqlite:///{self.database}",
            "DJANGO_SETTINGS_MODULE": "dashboard_project.settings",
            "DEMO_PASSWORD": self.password,
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
        }
        self.process: subprocess.Popen | None = None
        self.sim_url = ""

    @property
    def url(self) -> str:
        """Return the web server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the demo; return once it printed its addresses (it migrates and seeds by itself)."""
        command = [sys.executable, "manage.py", "demo", "--host", "127.0.0.1", "--port", str(self.port)]
        command += ["--sim-port", str(self.sim_port), *self.options]
        with self.log_path.open("wb") as log:
            # A session of its own: its process group is ours to end, and a Ctrl-C here does not reach it first.
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while "Press Ctrl-C" not in self.output():
            self.check_alive()
            if time.monotonic() > deadline:
                raise RunFailed(f"the demo did not start within {STARTUP_TIMEOUT:.0f} s:\n{self.tail()}")
            time.sleep(0.2)
        found = re.search(r"Simulator: +(http://127\.0\.0\.1:\d+)", self.output())
        if found is None:
            raise RunFailed(f"the demo named no simulator on 127.0.0.1:\n{self.tail()}")
        self.sim_url = found.group(1)
        if f"/boards/{BOARD_SLUG}/" not in self.output():
            raise RunFailed(f"the demo has no board {BOARD_SLUG!r}:\n{self.tail()}")

    def output(self) -> str:
        """Return what the demo printed so far."""
        return self.log_path.read_text(errors="replace")

    def tail(self, lines: int = 30) -> str:
        """Return the end of the demo's output, for error messages."""
        return "\n".join(self.output().splitlines()[-lines:])

    def check_alive(self) -> None:
        """Raise RunFailed (with the log's end) if the demo has exited."""
        if self.process is not None and self.process.poll() is not None:
            raise RunFailed(f"the demo exited with {self.process.returncode}:\n{self.tail()}")

    def usage(self) -> tuple[float, float] | None:
        """Return the demo's CPU seconds so far and its resident memory (MiB), or None where /proc is not."""
        if self.process is None:
            return None
        try:
            cpu, rss = cpu_seconds(self.process.pid), rss_kib(self.process.pid).get("VmRSS")
        except OSError:
            return None
        return cpu, (rss / 1024 if rss is not None else math.nan)

    def stop(self, grace: float = 20.0) -> int | None:
        """End the demo's process group: SIGTERM (it flushes and closes), then SIGKILL after GRACE seconds.

        The group is signalled only while its leader is not yet reaped, so its id cannot have been reused.
        Return the demo's exit code (None if it never started).
        """
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=grace)
        return process.returncode


class Client:
    """This process's HTTP side, 127.0.0.1 only: the board's JSON (signed in), the simulator's truth and control."""

    def __init__(self, demo: Demo) -> None:
        self.demo = demo
        self.jar = http.cookiejar.CookieJar()
        # No proxy: a proxy from the environment must never see this traffic (or the session cookie).
        self.opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(self.jar)
        )

    def _open(self, request: urllib.request.Request | str) -> bytes:
        with self.opener.open(request, timeout=HTTP_TIMEOUT) as response:
            return response.read()

    def get_json(self, url: str) -> dict:
        """Return the JSON at URL."""
        return json.loads(self._open(url))

    def login(self) -> None:
        """Sign in as admin through the admin's login form; the session cookie stays in the jar."""
        login_url = f"{self.demo.url}/admin/login/"
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', self._open(login_url).decode())
        if token is None:
            raise RunFailed("no CSRF token on the login page")
        form = {"csrfmiddlewaretoken": token.group(1), "username": "admin", "password": self.demo.password}
        self._open(urllib.request.Request(login_url, data=urllib.parse.urlencode(form).encode()))
        if not any(cookie.name == "sessionid" for cookie in self.jar):
            raise RunFailed("signing in set no session cookie")

    def board(self) -> dict:
        """Return the CXone board's JSON."""
        return self.get_json(f"{self.demo.url}/api/boards/{BOARD_SLUG}/")

    def truth(self) -> dict:
        """Return the simulator's ground truth."""
        return self.get_json(f"{self.demo.sim_url}/simulator/truth")

    def control(self, payload: dict) -> dict:
        """Send one action or fault to the simulator's control endpoint; return its answer."""
        request = urllib.request.Request(
            f"{self.demo.sim_url}/simulator/control",
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
        )
        answer = json.loads(self._open(request))
        if not answer.get("ok"):
            raise RunFailed(f"the simulator refused {payload}: {answer}")
        return answer
