"""A board served by a real Daphne over the test Redis, and a stand-in for the worker that feeds it.

The browser tests play the worker: ``Worker`` renders rows with
dashboard.rows, writes them to the Redis snapshot store and sends them
through the Redis channel layer, as the publisher does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dashboard.rows import QueueConfig, agent_row, interaction_row, queue_row
from streams.floor import AgentState, InteractionState, QueueState
from tests.processes import ROOT, Daphne, free_port
from tests.redis_util import REDIS_TEST_URL, unique_prefix
from tests.timing import scaled

PASSWORD = "browser-test-password"

# Lets the user "sue" (PASSWORD) view the board "floor", through a group.
VIEWER_SEED = """
from django.contrib.auth.models import Group, User
from dashboard.models import Board

team = Group.objects.create(name="Supervisors")
Board.objects.get(slug="floor").groups.add(team)
User.objects.create_user("sue", password=%r).groups.add(team)
"""

SEED = (
    """
import json
from dashboard.models import Board
from streams.models import Connection, Queue

connection = Connection.of(name="Genesys", base_url="http://127.0.0.1:9", client_id="id", client_secret="secret")
connection.save()
sales = Queue.objects.create(connection=connection, vendor_id="q-sales", name="Sales")
support = Queue.objects.create(connection=connection, vendor_id="q-support", name="Support")
board = Board.objects.create(slug="floor", title="Contact floor")
board.queues.set([sales, support])
"""
    + VIEWER_SEED
    + """
print(json.dumps({"board": board.pk, "sales": sales.pk, "support": support.pk, "source": connection.source_key}))
"""
)


@contextmanager
def board_site(tmp_path: Path, app: str = "dashboard_project.asgi:application") -> Iterator[tuple[Daphne, dict, str]]:
    """Serve the seeded board from Daphne (running APP) under a private Redis prefix; yield (server, ids, prefix)."""
    prefix = unique_prefix()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.browser_settings",
        "FLOORVIEW_TEST_PREFIX": prefix,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "REDIS_URL": REDIS_TEST_URL,
        "FLOORVIEW_STALE_AFTER": "2",
        "PYTHONPATH": str(ROOT),
    }
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=scaled(60))
    seeded = subprocess.run(
        [*manage, "shell", "-c", SEED % PASSWORD],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=scaled(60),
    )
    ids = json.loads(seeded.stdout.strip().splitlines()[-1])
    server = Daphne(env, free_port(), tmp_path / "daphne.log", app=app)
    try:
        server.start()
        yield server, ids, prefix
    finally:
        server.stop()


async def sign_in(page, board_url: str) -> None:
    """Open BOARD_URL, sign in as the viewer on the login page it sends us to, and land back on the board."""
    await page.goto(board_url)
    assert "/login/" in page.url and "/admin/" not in page.url
    await page.fill("#id_username", "sue")
    await page.fill("#id_password", PASSWORD)
    await page.click(".auth-form [type=submit]")
    await page.wait_for_url(board_url)


class Worker:
    """Plays the publisher: renders rows, writes them to the Redis store, then sends them to the group."""

    def __init__(self, ids: dict, prefix: str, epoch: str = "b1") -> None:
        from channels_redis.core import RedisChannelLayer

        from streams.snapshots import RedisSnapshotStore

        self.board = ids["board"]
        self.source = ids["source"]
        self.store = RedisSnapshotStore(REDIS_TEST_URL, prefix=prefix)
        self.layer = RedisChannelLayer(hosts=[REDIS_TEST_URL], prefix=prefix)
        self.configs = {
            "q-sales": QueueConfig(pk=ids["sales"], vendor_id="q-sales", name="Sales"),
            "q-support": QueueConfig(pk=ids["support"], vendor_id="q-support", name="Support"),
        }
        self.epoch = epoch
        self.seq = 0

    def queue(self, vendor_id: str, **stats) -> dict:
        return queue_row(QueueState(source=self.source, queue_id=vendor_id, **stats), self.configs[vendor_id])

    def agent(self, agent_id: str, name: str, queue: str, presence: str, since: float, routing=None) -> dict:
        state = AgentState(
            source=self.source,
            agent_id=agent_id,
            name=name,
            presence=presence,
            presence_since=since,
            routing_status=routing,
            routing_since=since,
            queue_ids=frozenset({queue}),
        )
        return agent_row(state, self.configs)

    def interaction(self, ident: str, queue: str, state: str, since: float, **fields) -> dict:
        interaction = InteractionState(
            source=self.source, interaction_id=ident, queue_id=queue, state=state, started_at=since, **fields
        )
        return interaction_row(interaction, self.configs)

    async def write(self, rows=(), removed=(), *, reset=False, live_at: float | None = None) -> dict:
        self.seq += 1
        now = time.time()
        live_at = now if live_at is None else live_at
        health = {"state": "live", "detail": ""}
        await self.store.write(
            self.board,
            epoch=self.epoch,
            seq=self.seq,
            upserts={row["key"]: row for row in rows},
            removed=list(removed),
            server_time=now,
            live_at=live_at,
            health=health,
            reset=reset,
        )
        return {
            "type": "board.delta",
            "board": self.board,
            "epoch": self.epoch,
            "seq": self.seq,
            "server_time": now,
            "live_at": live_at,
            "rows": list(rows),
            "removed": list(removed),
            "health": health,
        }

    async def push(self, rows=(), removed=(), *, reset=False) -> None:
        await self.layer.group_send(f"board.{self.board}", await self.write(rows, removed, reset=reset))

    async def tick(self) -> None:
        now = time.time()
        await self.store.write(
            self.board,
            epoch=self.epoch,
            seq=self.seq,
            upserts={},
            removed=(),
            server_time=now,
            live_at=now,
            health={"state": "live"},
        )
        message = {"type": "board.tick", "board": self.board, "epoch": self.epoch, "seq": self.seq}
        await self.layer.group_send(
            f"board.{self.board}", {**message, "server_time": now, "live_at": now, "health": {"state": "live"}}
        )

    async def close(self) -> None:
        await self.store.close()
        await self.layer.flush()
