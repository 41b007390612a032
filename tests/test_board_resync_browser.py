"""What a board shows when board messages are lost, in a real browser: never rows it cannot vouch for.

Every board message carries the worker's ``epoch`` and a ``seq``. Messages
are lost on their way to the web process (the channel layer), never on the
socket to the page, so the consumer is where their order is checked
(dashboard/frame_order.py): a delta it never received, or a new worker's
epoch, makes it send the page a snapshot instead of the next delta. The
tests lose messages where they can be lost, by writing the store without
telling the board's group, and watch the page's socket through
``RecordedLink``: the page must go from one whole picture to the next
without ever swapping a delta onto the wrong rows, and without having to
ask.

Last, with real processes (simulator, ``runstreams``, Daphne, one Redis
prefix): when the worker is killed, the board says its data is stale within
``STALE_AFTER`` and a little, and nothing on it claims live data.
"""

from __future__ import annotations

import json
import re
import signal
import time

import pytest

from tests.board_site import PASSWORD, VIEWER_SEED, Worker, sign_in
from tests.processes import CHROMIUM, CHROMIUM_ARGS, Daphne, Fleet, free_port
from tests.redis_util import delete_prefix
from tests.socket_util import head_of
from tests.timing import scaled

pytestmark = [pytest.mark.browser, pytest.mark.redis]

BOARD_SOCKET = re.compile(r"/ws/boards/")

# Each visible row, by table: its cells' text, leaving out the cells whose clocks the page ticks itself.
# Given HTML (rows as the store holds them), it describes those instead, parsed the same way.
DESCRIBE_ROWS = """
(stored) => {
  const describe = (rows) => Object.fromEntries(rows.map((row) => [
    row.id,
    Array.from(row.cells)
      .filter((cell) => !cell.querySelector(".clock"))
      .map((cell) => cell.textContent.replace(/\\s+/g, " ").trim()),
  ]));
  const bodies = {queue: "queue-rows", agent: "agent-rows"};
  const out = {};
  for (const [kind, id] of Object.entries(bodies)) {
    if (stored === null) {
      out[kind] = describe(Array.from(document.getElementById(id).rows));
    } else {
      const template = document.createElement("template");
      template.innerHTML = "<table><tbody>" + (stored[kind] || []).join("") + "</tbody></table>";
      out[kind] = describe(Array.from(template.content.querySelectorAll("tr")));
    }
  }
  return out;
}
"""


def meta_of(frame: str) -> tuple[str, str, int] | None:
    """Return (type, epoch, seq) from a board frame's head, or None for anything else."""
    head = head_of(frame)
    return (head["type"], head["epoch"], head["seq"]) if head else None


def waiting(shown: dict, queue_key: str) -> str:
    """Return the number in a queue row's Waiting cell (without its warning flag)."""
    return shown["queue"][queue_key][1].split()[0]


class RecordedLink:
    """The page's board socket, routed through the test (Playwright's route_web_socket), both ways unchanged.

    It records every frame the server sent and every message the page sent.
    """

    def __init__(self) -> None:
        self.frames: list[str] = []
        self.from_page: list[dict] = []

    def route(self, page_side) -> None:
        server_side = page_side.connect_to_server()
        page_side.on_message(lambda message: self._from_page(server_side, message))
        server_side.on_message(lambda message: self._from_server(page_side, message))

    def _from_page(self, server_side, message: str | bytes) -> None:
        try:
            request = json.loads(message)
        except ValueError:
            request = None
        if isinstance(request, dict):
            self.from_page.append(request)
        server_side.send(message)

    def _from_server(self, page_side, message: str | bytes) -> None:
        self.frames.append(message if isinstance(message, str) else message.decode())
        page_side.send(message)

    def metas(self) -> list[tuple[str, str, int]]:
        """Return (type, epoch, seq) of every frame the server sent, ticks aside, in order."""
        return [meta for meta in map(meta_of, self.frames) if meta is not None and meta[0] != "tick"]

    def resyncs(self) -> int:
        """Return how many snapshots the page asked for."""
        return sum(1 for request in self.from_page if request.get("type") == "resync")


# Records what the board shows after every change to it (observer callbacks run once a frame's swap is done).
RECORD_STATES = """
(sales) => {
  window.boardStates = [];
  const record = () => {
    const waiting = document.querySelector("#" + sales + " td .value");
    window.boardStates.push({
      agents: Array.from(document.querySelectorAll("#agent-rows tr")).map((row) => row.id),
      sales: waiting ? waiting.textContent : null,
    });
  };
  new MutationObserver(record).observe(document.getElementById("board"), {
    childList: true, subtree: true, characterData: true,
  });
  record();
}
"""


async def rows_shown(page) -> dict:
    """Describe the rows the page shows."""
    return await page.evaluate(DESCRIBE_ROWS, None)


async def rows_stored(page, worker: Worker) -> dict:
    """Describe the rows the server's store holds for the board, parsed by the page as it would parse them."""
    snapshot = await worker.store.read(worker.board)
    stored: dict[str, list[str]] = {}
    for row in snapshot.rows.values():
        stored.setdefault(row["kind"], []).append(row["html"])
    return await page.evaluate(DESCRIBE_ROWS, stored)


async def open_board(playwright, server, link: RecordedLink):
    from playwright.async_api import expect

    browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    page = await browser.new_page(viewport={"width": 1400, "height": 900})
    expect.set_options(timeout=scaled(10) * 1000)
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    await page.route_web_socket(BOARD_SOCKET, link.route)
    await sign_in(page, f"{server.url}/boards/floor/")
    await expect(page.locator("#connection-state")).to_have_attribute("data-state", "live")
    return browser, page, console


async def test_a_lost_delta_reaches_the_page_as_a_snapshot_never_as_a_wrong_delta(site):
    from playwright.async_api import async_playwright, expect

    server, ids, prefix = site
    worker = Worker(ids, prefix)
    link = RecordedLink()
    now = time.time()
    sales, support = f"q-{ids['sales']}", f"q-{ids['support']}"
    ann, bob, cat = (f"a-{ids['source']}-{name}" for name in ("ann", "bob", "cat"))
    await worker.write(
        [
            worker.queue("q-sales", waiting=1),
            worker.queue("q-support", waiting=0),
            worker.agent("ann", "Ann", "q-sales", "on_queue", now - 65, routing="IDLE"),
            worker.agent("bob", "Bob", "q-support", "break", now - 5),
        ],
        reset=True,
    )
    try:
        async with async_playwright() as playwright:
            browser, page, console = await open_board(playwright, server, link)
            meta = page.locator("#board-meta")
            await expect(meta).to_have_attribute("data-seq", "1")
            at_seq_1 = await rows_shown(page)
            assert set(at_seq_1["agent"]) == {ann, bob}
            assert waiting(at_seq_1, sales) == "1"
            await page.evaluate(RECORD_STATES, sales)

            # Delta 2 (Sales to 5 waiting, Bob gone) reaches the store but is lost on the channel layer.
            await worker.write([worker.queue("q-sales", waiting=5)], [bob])
            # Delta 3 (Cat arrives, Support to 2 waiting) reaches the consumer, which must not forward it.
            await worker.push(
                [
                    worker.agent("cat", "Cat", "q-sales", "on_queue", now, routing="INTERACTING"),
                    worker.queue("q-support", waiting=2),
                ]
            )
            await expect(meta).to_have_attribute("data-seq", "3")
            # The page got the whole picture at seq 3 instead, the lost delta's changes with it.
            assert link.metas() == [("snapshot", "b1", 1), ("snapshot", "b1", 3)]
            shown = await rows_shown(page)
            assert shown == await rows_stored(page, worker)
            assert set(shown["agent"]) == {ann, cat}
            assert (waiting(shown, sales), waiting(shown, support)) == ("5", "2")
            # Never delta 3's rows on top of seq 1's: Cat beside Bob.
            for state in await page.evaluate("window.boardStates"):
                assert not (cat in state["agents"] and bob in state["agents"]), state
            assert link.resyncs() == 0  # The consumer sent the snapshot by itself: the page had nothing to ask.
            await expect(page.locator("#connection-state")).to_have_attribute("data-state", "live")
            assert not [line for line in console if "htmx:" in line], console
            await browser.close()
    finally:
        await worker.close()
        await delete_prefix(prefix)


# Which worker's Floor each agent, and each count of waiting contacts in Sales, comes from.
EPOCH_OF_AGENT = {"ann": "b1", "bob": "b1", "cat": "b2", "dan": "b2", "eve": "b3", "fay": "b3", "gus": "b3"}
EPOCH_OF_SALES_WAITING = {"1": "b1", "2": "b2", "3": "b3", "4": "b3"}


async def test_a_new_workers_epoch_replaces_the_board_and_never_mixes_with_the_old(site):
    from playwright.async_api import async_playwright, expect

    server, ids, prefix = site
    workers = [Worker(ids, prefix, epoch=epoch) for epoch in ("b1", "b2", "b3")]
    first, second, third = workers
    link = RecordedLink()
    now = time.time()
    sales = f"q-{ids['sales']}"

    def agent(worker: Worker, name: str) -> dict:
        return worker.agent(name, name.title(), "q-sales", "on_queue", now, routing="IDLE")

    def floor(worker: Worker, waiting: int, *agents: str) -> list[dict]:
        """Return a worker's whole board: both queues, Sales with WAITING contacts, and AGENTS."""
        return [worker.queue("q-sales", waiting=waiting), worker.queue("q-support")] + [
            agent(worker, a) for a in agents
        ]

    def agents_of(shown: dict) -> set[str]:
        return {key.rsplit("-", 1)[1] for key in shown["agent"]}

    await first.write(floor(first, 1, "ann", "bob"), reset=True)
    try:
        async with async_playwright() as playwright:
            browser, page, console = await open_board(playwright, server, link)
            meta = page.locator("#board-meta")
            await expect(meta).to_have_attribute("data-epoch", "b1")
            await page.evaluate(RECORD_STATES, sales)

            # A new worker starts: its first flush resets the store under its own epoch.
            await second.push(floor(second, 2, "cat", "dan"), reset=True)
            await expect(meta).to_have_attribute("data-epoch", "b2")
            assert await meta.get_attribute("data-seq") == "1"
            at_b2 = await rows_shown(page)
            assert at_b2 == await rows_stored(page, second)
            assert agents_of(at_b2) == {"cat", "dan"}

            # Another new worker; this time its first flush is lost on the channel layer, so the consumer
            # meets the new epoch in a delta that otherwise follows the page's seq (b2 #1, then b3 #2).
            await third.write(floor(third, 3, "eve", "fay"), reset=True)
            await third.push([third.queue("q-sales", waiting=4), agent(third, "gus")])
            await expect(meta).to_have_attribute("data-epoch", "b3")
            await expect(meta).to_have_attribute("data-seq", "2")
            # The page got b3's whole picture, not its delta on top of b2's rows.
            assert link.metas()[-1] == ("snapshot", "b3", 2)
            assert ("delta", "b3", 2) not in link.metas()
            shown = await rows_shown(page)
            assert shown == await rows_stored(page, third)
            assert agents_of(shown) == {"eve", "fay", "gus"}
            assert waiting(shown, sales) == "4"

            # Not for a moment did the board show one worker's rows beside another's.
            states = await page.evaluate("window.boardStates")
            assert len(states) > 2
            for state in states:
                epochs = {EPOCH_OF_AGENT[key.rsplit("-", 1)[1]] for key in state["agents"]}
                epochs.add(EPOCH_OF_SALES_WAITING[state["sales"]])
                assert len(epochs) == 1, state
            assert link.resyncs() == 0
            assert not [line for line in console if "htmx:" in line], console
            await browser.close()
    finally:
        for worker in workers:
            await worker.close()
        await delete_prefix(prefix)


async def test_the_board_goes_stale_within_moments_of_its_worker_being_killed(tmp_path):
    from playwright.async_api import async_playwright, expect

    fleet = Fleet(tmp_path)
    fleet.env["FLOORVIEW_STALE_AFTER"] = "2"
    server = Daphne(fleet.env, free_port(), tmp_path / "daphne.log")
    try:
        fleet.start_simulator()
        fleet.seed()
        fleet.manage("shell", "-c", VIEWER_SEED % PASSWORD)
        queues = len(fleet.truth()["queues"])
        server.start()
        worker = fleet.start("worker", "runstreams")
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = await browser.new_page(viewport={"width": 1400, "height": 900})
            expect.set_options(timeout=scaled(20) * 1000)
            await sign_in(page, f"{server.url}/boards/floor/")
            board = page.locator("#board")
            state = page.locator("#connection-state")
            banner = page.locator("#stale-banner")
            # The worker streams: the board is live, with the simulator's queues, and fresh.
            await expect(page.locator("#queue-rows tr")).to_have_count(queues)
            await expect(page.locator("#source-health")).to_contain_text("Live")
            await expect(board).not_to_have_class(re.compile(r"\bis-stale\b"))
            await expect(banner).to_be_hidden()
            await expect(state).to_have_attribute("data-state", "live")
            await expect(state).to_have_text("Live")
            stale_after = float(await board.get_attribute("data-stale-after"))
            assert stale_after == 2.0

            worker.send_signal(signal.SIGKILL)
            # The last tick is at most a liveness period old, the page checks every second: a 3 s margin.
            within = scaled(stale_after + 3)
            await expect(board).to_have_class(re.compile(r"\bis-stale\b"), timeout=within * 1000)
            await expect(banner).to_be_visible(timeout=scaled(1) * 1000)
            await expect(page.locator("#data-age")).to_contain_text("Stale")
            # The socket to Daphne is still open, but the connection indicator must not call the data live.
            await expect(state).not_to_have_text(re.compile(r"^\s*Live\s*$"), timeout=scaled(1) * 1000)
            await expect(state).not_to_have_class(re.compile(r"\bconn-live\b"), timeout=scaled(1) * 1000)
            # Nor may the upstream badge go on repeating the last health the dead worker sent.
            await expect(page.locator("#source-health")).not_to_contain_text("Live", timeout=scaled(1) * 1000)
            await expect(page.locator("#source-health .health-detail")).to_contain_text("no word")
            assert worker.wait(timeout=scaled(5)) == -signal.SIGKILL
            await browser.close()
    finally:
        server.stop()
        fleet.stop_all()
