"""The web server's listening sockets: a backlog sized for a reconnect storm, one port for several processes."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from dashboard_project.listening import with_backlog
from tests.processes import ROOT, Daphne, free_port, wait_until
from tests.timing import scaled


def listening(port: int) -> list[str]:
    """Return ss's lines for the sockets listening on PORT (with their processes)."""
    out = subprocess.run(
        ["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True, check=True, timeout=scaled(10)
    ).stdout
    return out.splitlines()


def listen_backlog(port: int) -> int:
    """Return the backlog of the socket listening on 127.0.0.1:PORT, as the kernel holds it (ss's Send-Q)."""
    (line,) = listening(port)
    return int(line.split()[2])


def somaxconn() -> int:
    with open("/proc/sys/net/core/somaxconn") as f:
        return int(f.read())


@pytest.fixture
def serve(tmp_path):
    if shutil.which("ss") is None:
        pytest.skip("needs ss (iproute2) to read a listening socket's backlog")
    started = []

    def start(port: int | None = None, **env_extra: str) -> Daphne:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "dashboard_project.settings",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "REDIS_URL": "",
            "FLOORVIEW_REQUIRE_SECRETS": "false",
            **env_extra,
        }
        daphne = Daphne(env, port or free_port(), tmp_path / f"web{len(started)}.log")
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


def test_with_reuse_port_several_processes_serve_one_port(serve):
    first = serve(FLOORVIEW_REUSE_PORT="true", FLOORVIEW_LISTEN_BACKLOG="555")
    second = serve(port=first.port, FLOORVIEW_REUSE_PORT="true", FLOORVIEW_LISTEN_BACKLOG="555")
    # The first process answers the second's health check: wait for the second's own socket.
    wait_until(lambda: len(listening(first.port)) == 2, scaled(30), "the second process's listening socket")
    sockets = listening(first.port)
    # Two listening sockets on the one port, one per process, each with the configured backlog.
    assert sorted(int(re.search(r"pid=(\d+)", line)[1]) for line in sockets) == sorted(
        (first.process.pid, second.process.pid)
    )
    assert [int(line.split()[2]) for line in sockets] == [555, 555]
    first.stop()
    assert second.healthy()  # the port stays served while one process restarts


def test_without_reuse_port_a_second_process_cannot_take_the_port(serve, tmp_path):
    first = serve()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "dashboard_project.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "REDIS_URL": "",
        "FLOORVIEW_REQUIRE_SECRETS": "false",
    }
    second = subprocess.run(
        [sys.executable, "manage.py", "serve", "-b", "127.0.0.1", "-p", str(first.port)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=scaled(60),
    )
    # Daphne reports the refused listen and stops; the first process keeps the port alone.
    assert "Listen failure" in second.stderr + second.stdout
    assert [int(re.search(r"pid=(\d+)", line)[1]) for line in listening(first.port)] == [first.process.pid]
