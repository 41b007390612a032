"""The board in a real browser: Daphne serving the real ASGI app, Redis carrying pushes, Chromium watching.

The test plays the worker: it renders rows with dashboard.rows, writes them to
the Redis snapshot store and sends them through the Redis channel layer, as
the publisher does. It checks what a supervisor would see: rows changing,
thresholds, ticking clocks, stale marking, the connection state through a
server restart, and filters that survive a reload.
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

import pytest

from dashboard.rows import QueueConfig, agent_row, queue_row
from streams.floor import AgentState, QueueState
from tests.redis_util import REDIS_TEST_URL, delete_prefix, unique_prefix
from tests.timing import scaled

pytestmark = [pytest.mark.browser, pytest.mark.redis]

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "browser-test-password"

SEED = """
import json
from django.contrib.auth.models import Group, User
from dashboard.models import Board
from streams.models import Connection, Queue

connection = Connection(name="Genesys", base_url="http://127.0.0.1:9", client_id="id")
connection.set_client_secret("secret")
connection.save()
sales = Queue.objects.create(connection=connection, vendor_id="q-sales", name="Sales")
support = Queue.objects.create(connection=connection, vendor_id="q-support", name="Support")
team = Group.objects.create(name="Supervisors")
board = Board.objects.create(slug="floor", title="Contact floor")
board.queues.set([sales, support])
board.groups.add(team)
user = User.objects.create_user("sue", password=%r)
user.groups.add(team)
print(json.dumps({"board": board.pk, "sales": sales.pk, "support": support.pk, "source": connection.source_key}))
"""


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
    """The real ASGI application in a Daphne subprocess, restartable on the same port."""

    def __init__(self, env: dict, port: int, log_path: Path) -> None:
        self.env = env
        self.port = port
        self.log_path = log_path
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
                    "-m",
                    "daphne",
                    "-b",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "dashboard_project.asgi:application",
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


@pytest.fixture
def site(tmp_path):
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
    server = Daphne(env, free_port(), tmp_path / "daphne.log")
    server.start()
    yield server, ids, prefix
    server.stop()


class Worker:
    """Plays the publisher: renders rows, writes them to the Redis store, then sends them to the group."""

    def __init__(self, ids: dict, prefix: str) -> None:
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
        self.epoch = "b1"
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

    async def push(self, rows=(), removed=()) -> None:
        await self.layer.group_send(f"board.{self.board}", await self.write(rows, removed))

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


async def test_it_shows_a_supervisor_the_live_board_through_a_server_restart(site, tmp_path):
    from playwright.async_api import async_playwright, expect

    server, ids, prefix = site
    worker = Worker(ids, prefix)
    now = time.time()
    sales_row, support_row = f"#q-{ids['sales']}", f"#q-{ids['support']}"
    ann, bob, cat = (f"#a-{ids['source']}-{name}" for name in ("ann", "bob", "cat"))
    await worker.write(
        [
            worker.queue("q-sales", waiting=2, longest_waiting_since=now - 200, sl_numerator=9, sl_denominator=10),
            worker.queue("q-support"),
            worker.agent("ann", "Ann", "q-sales", "on_queue", now - 65, routing="IDLE"),
            worker.agent("bob", "Bob", "q-support", "break", now - 5),
        ],
        reset=True,
    )
    timeout_ms = scaled(10) * 1000
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = await browser.new_page(viewport={"width": 1400, "height": 900})
            expect.set_options(timeout=timeout_ms)
            state = page.locator("#connection-state")
            console: list[str] = []
            page.on("console", lambda message: console.append(message.text))
            frames: list[str] = []
            page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(str(payload))))

            def snapshots_received() -> int:
                return sum('data-kind="snapshot"' in frame for frame in frames)

            # Sign in through the login page the board sends us to.
            await page.goto(f"{server.url}/boards/floor/")
            assert "/admin/login/" in page.url
            await page.fill("#id_username", "sue")
            await page.fill("#id_password", PASSWORD)
            await page.click("input[type=submit]")
            await page.wait_for_url(f"{server.url}/boards/floor/")
            await expect(state).to_have_attribute("data-state", "live")
            await expect(page.locator(f"{sales_row} td").first).to_contain_text("2")

            # Clocks tick in the browser; the longest wait crossed its alert threshold without any event.
            await expect(page.locator(f"{ann} .clock")).to_have_text(re.compile(r"^1:0\d$"))
            wait_cell = page.locator(f"{sales_row} td.wait")
            await expect(wait_cell).to_have_class(re.compile("level-alert"))
            await expect(wait_cell).to_contain_text("Alert")
            await expect(page.locator(f"{sales_row} td.sl")).to_contain_text("90% (80% in 20 s)")

            # A delta replaces a row by id; the waiting count crosses the alert threshold.
            await worker.push([worker.queue("q-sales", waiting=12, longest_waiting_since=now - 200)])
            waiting = page.locator(f"{sales_row} td").first
            await expect(waiting).to_contain_text("12")
            await expect(waiting).to_contain_text("Alert")
            await expect(waiting).to_have_class(re.compile("level-alert"))

            # A new agent is added in name order; a removed one disappears.
            await worker.push(
                [worker.agent("cat", "Cat", "q-sales", "on_queue", now, routing="INTERACTING")], [bob[1:]]
            )
            await expect(page.locator(bob)).to_have_count(0)
            await expect(page.locator("#agent-rows tr")).to_have_count(2)
            assert await page.locator("#agent-rows tr").evaluate_all("rows => rows.map(r => r.id)") == [
                ann[1:],
                cat[1:],
            ]
            await expect(page.locator(f"{cat} .status")).to_have_text("Interacting")

            # Without ticks the data ages and is marked stale; a tick makes it fresh again.
            board = page.locator("#board")
            await expect(board).to_have_class(re.compile("is-stale"))
            await expect(page.locator("#stale-banner")).to_be_visible()
            await expect(page.locator("#data-age")).to_contain_text("Stale")
            await worker.tick()
            await expect(board).not_to_have_class(re.compile("is-stale"))
            await expect(page.locator("#stale-banner")).to_be_hidden()

            await page.screenshot(path=str(tmp_path / "board.png"), full_page=True)
            if os.environ.get("FLOORVIEW_SCREENSHOT"):
                await page.screenshot(path=os.environ["FLOORVIEW_SCREENSHOT"], full_page=True)

            # Coming back to a hidden tab asks for a fresh picture.
            before = snapshots_received()
            await page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
            deadline = time.monotonic() + scaled(10)
            while snapshots_received() == before and time.monotonic() < deadline:
                await page.wait_for_timeout(50)
            assert snapshots_received() > before

            # The browser loses the network: the page says it is offline, and live again once back.
            await page.context.set_offline(True)
            await expect(state).to_have_attribute("data-state", "offline")
            await expect(state).to_contain_text("Offline")
            await page.context.set_offline(False)
            await expect(state).to_have_attribute("data-state", "live")

            # The server goes away: the page says so, then comes back with what changed meanwhile.
            server.stop()
            await expect(state).to_have_attribute("data-state", re.compile("reconnecting|offline"))
            # A web process going down says so (4012, Daphne's stand-in for 1012), so browsers reconnect at once.
            await expect(page.locator("#board")).to_have_attribute("data-last-close", "4012")
            await worker.write([worker.queue("q-sales", waiting=4)])
            server.start()
            await expect(state).to_have_attribute("data-state", "live", timeout=scaled(40) * 1000)
            await expect(page.locator(f"{sales_row} td").first).to_contain_text("4")

            # Filters live in the address and survive a reload, and a bare address restores them.
            await page.click("#filter-panel summary")
            await page.check(f'input[name="queue"][value="{ids["support"]}"]')
            await expect(page).to_have_url(re.compile(rf"\?queue={ids['support']}$"))
            await expect(page.locator(sales_row)).to_have_count(0)
            await expect(page.locator(support_row)).to_have_count(1)
            await expect(page.locator("#agent-rows tr")).to_have_count(0)
            await page.reload()
            await expect(state).to_have_attribute("data-state", "live")
            await expect(page.locator(f'input[name="queue"][value="{ids["support"]}"]')).to_be_checked()
            await expect(page.locator(sales_row)).to_have_count(0)
            await page.goto(f"{server.url}/boards/floor/")
            await expect(page).to_have_url(re.compile(rf"\?queue={ids['support']}$"))
            await expect(state).to_have_attribute("data-state", "live")
            await expect(page.locator(sales_row)).to_have_count(0)
            await expect(page.locator(support_row)).to_have_count(1)
            # Pushes keep honouring the filter.
            await worker.push([worker.queue("q-sales", waiting=1), worker.queue("q-support", waiting=3)])
            await expect(page.locator(f"{support_row} td").first).to_contain_text("3")
            await expect(page.locator(sales_row)).to_have_count(0)
            # Every swap found its target: htmx reports rows it had to drop.
            assert not [line for line in console if "htmx:" in line], console
            await browser.close()
    finally:
        await worker.close()
        await delete_prefix(prefix)
