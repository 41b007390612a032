"""The whole slice as a supervisor meets it: ``manage.py demo`` alone, a real browser, the simulator's truth.

Nothing is played here: the demo's own simulator changes, its worker streams
over every protocol (Genesys notifications, CXone polling, a MessagePack push
feed, an SSE feed and signed webhooks), its publisher renders, Daphne pushes,
and Chromium shows it. Once the simulator pauses, every board's JSON and page
agree with ``/simulator/truth``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.processes import CHROMIUM, CHROMIUM_ARGS, free_port, wait_until
from tests.timing import scaled

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "demo-test-password"
QUEUE_FIELDS = ("waiting", "interacting", "alerting", "on_queue_agents", "idle_agents", "offered", "answered")


class Demo:
    """``python manage.py demo`` in a subprocess, with what it printed."""

    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.log_path = tmp_path / "demo.log"
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DJANGO_SETTINGS_MODULE")}
        env |= {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
            "DEMO_PASSWORD": PASSWORD,
            "FLOORVIEW_STALE_AFTER": "3",
            "PYTHONUNBUFFERED": "1",
        }
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "demo", "--port", str(self.port), "--agents", "16", "--rate", "1.5"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_until(lambda: "Press Ctrl-C" in self.output() or self.process.poll() is not None, scaled(60), "the demo")
        assert self.process.poll() is None, self.output()
        self.board_url = re.search(r"Board: +(\S+)", self.output()).group(1)
        urls = re.findall(r"^ +(?:Board: +)?(\S+/boards/\S+)", self.output(), re.M)
        self.boards = {url.rstrip("/").rsplit("/", 1)[1]: url for url in urls}
        self.sim_url = re.search(r"Simulator: +(\S+)", self.output()).group(1)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def truth(self) -> dict:
        with urllib.request.urlopen(f"{self.sim_url}/simulator/truth", timeout=scaled(5)) as response:
            return json.load(response)

    def control(self, **payload) -> dict:
        request = urllib.request.Request(
            f"{self.sim_url}/simulator/control",
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=scaled(5)) as response:
            return json.load(response)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=scaled(15))
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(f"the demo ignored SIGTERM:\n{self.output()[-3000:]}") from None
        return self.process.returncode


def expected_status(agent: dict) -> str:
    """Return the status a supervisor should read for a truth agent (as AgentState.status words it)."""
    if agent["presence"] in (None, "on_queue") and agent["routing_status"]:
        return agent["routing_status"].lower()
    return agent["presence"] or "unknown"


def board_matches_truth(board: dict, truth: dict) -> list[str]:
    """Return the differences between the board's JSON and the simulator's truth (empty when they agree)."""
    problems = []
    queues = {row["vendor_id"]: row for row in board["queues"]}
    if set(queues) != set(truth["queues"]):
        problems.append(f"queues {sorted(queues)} != {sorted(truth['queues'])}")
    for vendor_id, row in queues.items():
        real = truth["queues"].get(vendor_id, {})
        for name in QUEUE_FIELDS:
            if row[name] != real.get(name):
                problems.append(f"queue {row['name']} {name}: board {row[name]} truth {real.get(name)}")
    agents = {row["agent_id"]: row for row in board["agents"]}
    members = {a for a, agent in truth["agents"].items() if agent["queue_ids"]}
    if set(agents) != members:
        problems.append(f"agents differ: {sorted(set(agents) ^ members)}")
    for agent_id, row in agents.items():
        real = truth["agents"].get(agent_id)
        if real and row["status"] != expected_status(real):
            problems.append(f"agent {row['name']}: board {row['status']} truth {expected_status(real)}")
    return problems


def interactions_match(rows: list[dict], truth: dict, *, numbered: bool) -> list[str]:
    """Return the differences between a board's interactions and the simulator's live contacts.

    NUMBERED: the source names contacts by their number (CXone), not their id (the feeds).
    """
    queue_names = {queue_id: queue["name"] for queue_id, queue in truth["queues"].items()}
    contacts = truth["interactions"].items()
    expected = {str(contact["number"]) if numbered else contact_id: contact for contact_id, contact in contacts}
    shown = {row["interaction_id"]: row for row in rows}
    problems = [f"interactions differ: {sorted(set(shown) ^ set(expected))}"] if set(shown) != set(expected) else []
    for ident, row in shown.items():
        real = expected.get(ident)
        if real is None:
            continue
        wanted = {
            "state": real["state"],
            "campaign": real["campaign"],
            "disposition": real["disposition"] or "",
            "queue_name": queue_names[real["queue_id"]],
        }
        for name, value in wanted.items():
            if row[name] != value:
                problems.append(f"interaction {ident} {name}: board {row[name]!r} truth {value!r}")
    return problems


def queues_match(rows: list[dict], truth: dict, fields: tuple[str, ...]) -> list[str]:
    """Return the differences between a board's queue rows (by name) and the truth's queues."""
    real = {queue["name"]: queue for queue in truth["queues"].values()}
    shown = {row["name"]: row for row in rows}
    problems = [f"queues {sorted(shown)} != {sorted(real)}"] if set(shown) != set(real) else []
    for name, row in shown.items():
        for field in fields:
            if name in real and row[field] != real[name][field]:
                problems.append(f"queue {name} {field}: board {row[field]} truth {real[name][field]}")
    return problems


async def test_the_demo_alone_shows_a_live_board_that_agrees_with_the_simulator(tmp_path):
    from playwright.async_api import async_playwright, expect

    demo = Demo(tmp_path)
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = await browser.new_page(viewport={"width": 1400, "height": 900})
            expect.set_options(timeout=scaled(10) * 1000)
            await page.goto(demo.board_url)
            await page.fill("#id_username", "admin")
            await page.fill("#id_password", PASSWORD)
            await page.click("input[type=submit]")
            await page.wait_for_url(demo.board_url)
            await expect(page.locator("#connection-state")).to_have_attribute("data-state", "live")
            await expect(page.locator("#source-health")).to_contain_text("Live")

            # The simulator sends an agent to lunch; the page shows it within moments.
            truth = demo.truth()
            agent_id = sorted(a for a, agent in truth["agents"].items() if agent["queue_ids"])[0]
            row = page.locator(f"#a-c1-{agent_id}")
            await expect(row).to_have_count(1)
            demo.control(action="set_presence", user_id=agent_id, presence="MEAL")
            await expect(row.locator(".status")).to_have_text("Meal", timeout=scaled(3) * 1000)
            await expect(row).to_have_attribute("data-status", "meal")

            # Contacts arrive in a queue; once the model freezes, the JSON and the page match its truth.
            queue_id = sorted(truth["queues"])[0]
            demo.control(action="arrive", queue_id=queue_id, count=4)
            demo.control(action="pause")
            truth = demo.truth()
            api = demo.board_url.replace("/boards/", "/api/boards/")
            deadline = time.monotonic() + scaled(10)
            while True:
                board = await (await page.request.get(api)).json()
                problems = board_matches_truth(board, truth)
                if not problems or time.monotonic() > deadline:
                    break
                await page.wait_for_timeout(100)
            assert problems == []
            assert board["stale"] is False and board["health"]["state"] == "live"
            for row_data in board["queues"]:
                cells = page.locator(f"#{row_data['key']} td")
                await expect(cells.first).to_contain_text(str(truth["queues"][row_data["vendor_id"]]["waiting"]))

            # Every other source's board agrees with the same truth, each over its own protocol.
            assert truth["interactions"], "the paused model holds no live contacts to compare"
            checks = {
                "cxone": lambda b: (
                    queues_match(b["queues"], truth, ("waiting",))
                    + interactions_match(b["interactions"], truth, numbered=True)
                ),
                "push-feed": lambda b: interactions_match(b["interactions"], truth, numbered=False),
                "sse-feed": lambda b: interactions_match(b["interactions"], truth, numbered=False),
                "webhook-feed": lambda b: (
                    queues_match(b["queues"], truth, ("waiting", "interacting"))
                    + interactions_match(b["interactions"], truth, numbered=False)
                ),
            }
            assert sorted(demo.boards) == sorted([*checks, "contact-centre"])
            for slug, check in checks.items():
                api = demo.boards[slug].replace("/boards/", "/api/boards/")
                deadline = time.monotonic() + scaled(15)
                while True:
                    board = await (await page.request.get(api)).json()
                    problems = check(board)
                    if not problems or time.monotonic() > deadline:
                        break
                    await page.wait_for_timeout(200)
                assert problems == [], slug
                assert board["health"]["state"] == "live", (slug, board["health"])
                # The page shows the same live interactions.
                await page.goto(demo.boards[slug])
                await expect(page.locator("#connection-state")).to_have_attribute("data-state", "live")
                await expect(page.locator("#interaction-rows tr")).to_have_count(len(truth["interactions"]))
            await browser.close()
    finally:
        code = demo.stop()
    assert code == 0, demo.output()[-3000:]
    assert "Traceback" not in demo.output(), demo.output()[-5000:]
