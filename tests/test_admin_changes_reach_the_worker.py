"""Admin changes reach a running ``runstreams`` worker within 5 s, without a restart.

The issue's requirement, checked against real processes: the simulator, one
worker with the production configuration poll period (``FLOORVIEW_CONFIG_POLL``
unset, whatever the fleet helper sets), and the changes made the way operators
make them, by posting the admin's change forms (Django's test client, in a
``manage.py shell`` subprocess). Each latency runs from the moment the admin's
transaction committed to the moment the effect is visible outside the worker:

1. a queue added to a board gains its row in the board's Redis snapshot;
2. a disabled connection has no notification socket open at the simulator, and
   the worker has saved the connection's status as disabled;
3. re-enabled, it streams again over exactly one socket.

The worker is the same process throughout, and no sample ever sees two sockets.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.processes import ROOT, Fleet, wait_until
from tests.test_fleet_processes import SocketSampler
from tests.timing import scaled

pytestmark = pytest.mark.redis

# The issue's requirement: "Admin changes (connection disabled, queue added to a board) reach the
# worker within 5 s without a restart".
REQUIREMENT = 5.0
# The documented default of FLOORVIEW_CONFIG_POLL (README, settings): the test must not beat the
# requirement by polling faster than production does.
PRODUCTION_CONFIG_POLL = 3.0

# Takes the last queue off the seeded board (the one check 1 adds back) and makes the operator who
# uses the admin. Prints the ids and the poll period a process with the fleet's environment runs with.
SETUP = """
import json
from django.conf import settings
from django.contrib.auth.models import User
from dashboard.models import Board
from streams.models import Connection

board = Board.objects.get(slug="floor")
queues = sorted(board.queues.all(), key=lambda q: q.pk)
board.queues.remove(queues[-1])
User.objects.create_superuser("operator", "operator@example.com", "unused-password")
print(json.dumps({
    "config_poll": settings.FLOORVIEW["CONFIG_POLL"],
    "connection": Connection.objects.get().pk,
    "shown": [q.pk for q in queues[:-1]],
    "added": queues[-1].pk,
}))
"""

# Opens an object's admin change form as the operator, changes one field, and submits the form with
# everything else as the admin showed it (inline formsets included). The last line printed is when
# the admin's transaction committed, on the system-wide monotonic clock the test reads too.
ADMIN_EDIT = """
import json, sys, time
from django import forms
from django.apps import apps
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models.signals import post_save
from django.test import Client
from django.test.utils import setup_test_environment
from django.urls import reverse

setup_test_environment()  # lets the client see the form the admin rendered
app_label, model_name, pk, field, value = %(args)r
model = apps.get_model(app_label, model_name)
client = Client()
client.force_login(User.objects.get(username="operator"))
url = reverse(f"admin:{app_label}_{model_name}_change", args=[pk])
page = client.get(url)
assert page.status_code == 200, page.status_code
forms_shown = [page.context["adminform"].form]
for inline in page.context["inline_admin_formsets"]:
    forms_shown += [inline.formset.management_form, *inline.formset.forms]

def as_posted(bound, value):
    if isinstance(bound.field, forms.BooleanField):
        return "on" if value else None
    if value is None:
        return None
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else str(value)

data = {}
for form in forms_shown:
    for bound in form:
        posted = as_posted(bound, value if form is forms_shown[0] and bound.name == field else bound.value())
        if posted is not None:
            data[bound.html_name] = posted

committed = []

def note_commit(sender, **kwargs):
    transaction.on_commit(lambda: committed or committed.append(time.monotonic()))

post_save.connect(note_commit, sender=model, weak=False)
response = client.post(url, data)
if response.status_code != 302 or not committed:
    errors = response.context and response.context.get("errors")
    sys.exit(f"the admin refused the change ({response.status_code}): {errors}")
print(json.dumps({"committed": committed[0]}))
"""


class AdminEdit:
    """One admin change in a ``manage.py shell`` subprocess, started at once so the test watches meanwhile."""

    def __init__(self, fleet: Fleet, model: str, pk: int, field: str, value) -> None:
        app_label, model_name = model.split(".")
        script = ADMIN_EDIT % {"args": (app_label, model_name, pk, field, value)}
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "shell", "-c", script],
            cwd=ROOT,
            env=fleet.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._committed: float | None = None

    def committed_at(self) -> float:
        """Wait for the subprocess; return when the admin committed (monotonic seconds)."""
        if self._committed is None:
            out, err = self.process.communicate(timeout=scaled(60))
            assert self.process.returncode == 0, f"{out}\n{err}"
            self._committed = json.loads(out.splitlines()[-1])["committed"]
        return self._committed

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def seconds_after(edit: AdminEdit, seen, what: str) -> float:
    """Return the seconds from EDIT's commit until SEEN() first held, watching from before the commit."""
    observed: list[float] = []

    def check() -> bool:
        if seen():
            observed.append(time.monotonic())
            return True
        return False

    # The window also covers the subprocess's start-up; only the time after the commit counts.
    wait_until(check, scaled(20), what)
    committed = edit.committed_at()
    assert observed[0] >= committed, f"{what} before the admin committed the change"
    return observed[0] - committed


def connection_status(pk: int, db: Path) -> tuple[str, str]:
    """Return the connection's status and its health's state as the worker saved them."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        status, health = conn.execute("SELECT status, health FROM streams_connection WHERE id = ?", (pk,)).fetchone()
    return status, json.loads(health or "{}").get("state", "")


def test_admin_changes_reach_the_running_worker_within_5_s(tmp_path):
    fleet = Fleet(tmp_path)
    # Production's poll period, not the fleet helper's faster one.
    fleet.env.pop("FLOORVIEW_CONFIG_POLL", None)
    sampler = SocketSampler(fleet)
    edits: list[AdminEdit] = []
    limit = REQUIREMENT * max(1.0, scaled(1))
    try:
        fleet.start_simulator("--queues", "3", "--agents", "12", "--heartbeat", "2")
        ids = fleet.seed()
        setup = json.loads(fleet.manage("shell", "-c", SETUP).splitlines()[-1])
        assert setup["config_poll"] >= PRODUCTION_CONFIG_POLL, setup
        rows_key = f"{fleet.prefix}:board:{ids['board']}:rows"
        db = tmp_path / "db.sqlite3"

        def rows() -> set[str]:
            return set(fleet.redis.hkeys(rows_key))

        worker = fleet.start("worker", "runstreams")
        sampler.start()
        shown = {f"q-{pk}" for pk in setup["shown"]}
        wait_until(lambda: fleet.sockets_open() == 1 and shown <= rows(), scaled(30), "the worker streaming the board")
        added = f"q-{setup['added']}"
        assert added not in rows()

        # 1. A queue added to the board: its row joins the board's snapshot.
        edits.append(AdminEdit(fleet, "dashboard.board", ids["board"], "queues", [*setup["shown"], setup["added"]]))
        took_add = seconds_after(edits[-1], lambda: added in rows(), "the added queue's row on the board")
        assert took_add < limit, f"the added queue took {took_add:.2f} s to reach the board"
        assert worker.poll() is None and fleet.holder_pid() == worker.pid
        assert fleet.sockets_open() == 1

        # 2. The connection disabled: its socket closes, and the worker says so in the admin.
        edits.append(AdminEdit(fleet, "streams.connection", setup["connection"], "enabled", False))
        took_disable = seconds_after(edits[-1], lambda: fleet.sockets_open() == 0, "the socket closed")
        saved = (setup["connection"], db)
        took_saved = seconds_after(
            edits[-1], lambda: connection_status(*saved) == ("disabled", "disabled"), "the status saved as disabled"
        )
        assert took_disable < limit, f"the disabled connection streamed on for {took_disable:.2f} s"
        assert took_saved < limit, f"the worker saved the connection as disabled after {took_saved:.2f} s"
        assert worker.poll() is None
        # The board shows no rows of it now, and its badge says why instead of claiming live data.
        meta_key = f"{fleet.prefix}:board:{ids['board']}:meta"
        wait_until(
            lambda: json.loads(fleet.redis.hget(meta_key, "health") or "{}").get("state") == "disabled",
            scaled(5),
            "the board's health to say disabled",
        )

        # 3. Enabled again: one socket, the board's rows back, the same worker holding the stream.
        edits.append(AdminEdit(fleet, "streams.connection", setup["connection"], "enabled", True))
        took_enable = seconds_after(edits[-1], lambda: fleet.sockets_open() == 1, "the socket back")
        assert took_enable < limit, f"the re-enabled connection took {took_enable:.2f} s to stream"
        wait_until(lambda: {*shown, added} <= rows(), scaled(10), "the board's rows back")
        wait_until(
            lambda: connection_status(*saved) == ("live", "live"),
            scaled(10),
            "the worker saving the connection as live",
        )
        assert worker.poll() is None and fleet.holder_pid() == worker.pid
        sampler.stopping.set()
        sampler.join()
        assert sampler.highest == 1, "two sockets served the connection at once"
        assert fleet.sockets_open() == 1
        log = fleet.log("worker")
        assert "Traceback" not in log, log[-4000:]
        print(
            f"after the commit: queue on the board {took_add:.2f} s, socket closed {took_disable:.2f} s, "
            f"saved as disabled {took_saved:.2f} s, socket back {took_enable:.2f} s"
        )
    finally:
        sampler.stopping.set()
        for edit in edits:
            edit.kill()
        fleet.stop_all()
