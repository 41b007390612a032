"""The web server listens with a backlog sized for a reconnect storm, not Twisted's 50."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from dashboard_project.webserver import with_backlog
from tests.processes import Daphne, free_port
from tests.timing import scaled


def listen_backlog(port: int) -> int:
    """Return the backlog of the socket listening on 127.0.0.1:PORT, as the kernel holds it (ss's Send-Q)."""
    out = subprocess.run(
        ["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True, timeout=scaled(10)
    ).stdout
    (line,) = out.splitlines()
    return int(line.split()[2])


def somaxconn() -> int:
    with open("/proc/sys/net/core/somaxconn") as f:
        return int(f.read())


@pytest.fixture
def serve(tmp_path):
    if shutil.which("ss") is None:
        pytest.skip("needs ss (iproute2) to read a listening socket's backlog")
    started = []

    def start(**env_extra: str) -> Daphne:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "dashboard_project.settings",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "REDIS_URL": "",
            "FLOORVIEW_REQUIRE_SECRETS": "false",
            **env_extra,
        }
        daphne = Daphne(env, free_port(), tmp_path / f"web{len(started)}.log")
        daphne.start()
        started.append(daphne)
        return daphne

    yield start
    for daphne in started:
        daphne.stop()


def test_it_listens_with_the_configured_backlog(serve):
    assert listen_backlog(serve(FLOORVIEW_LISTEN_BACKLOG="777").port) == 777


def test_its_default_backlog_is_the_kernels_cap_not_fifty(serve):
    assert listen_backlog(serve().port) == min(4096, somaxconn())


def test_only_endpoints_it_opens_get_the_backlog():
    assert with_backlog("tcp:port=8000:interface=127.0.0.1", 900) == "tcp:port=8000:interface=127.0.0.1:backlog=900"
    assert with_backlog("unix:/run/floorview.sock", 900) == "unix:/run/floorview.sock:backlog=900"
    # A socket handed over already listening keeps its creator's backlog; an explicit one stands.
    assert with_backlog("fd:fileno=3", 900) == "fd:fileno=3"
    assert with_backlog("tcp:port=8000:backlog=20", 900) == "tcp:port=8000:backlog=20"
