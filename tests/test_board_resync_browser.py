"""The page's own guards in a real browser: it never shows rows it cannot vouch for.

Every frame carries the worker's ``epoch`` and a ``seq``. A delta that does
not follow the page's ``seq``, or any frame of another epoch, must not be
swapped: the page asks for a snapshot (``{"type": "resync"}``) and shows
that. The consumer already turns the gaps and epoch changes *it* sees into
snapshots, so to make the page meet them the tests route its socket through
``LossyLink``, which loses one chosen frame on the way from the server, and
holds the page's resync requests until the test has looked at what the page
shows meanwhile.

Last, with real processes (simulator, ``runstreams``, Daphne, one Redis
prefix): when the worker is killed, the board says its data is stale within
``STALE_AFTER`` and a little, and nothing on it claims live data.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time
from collections.abc import Callable

import pytest

from tests.board_site import PASSWORD, VIEWER_SEED, Worker, sign_in
from tests.processes import CHROMIUM, CHROMIUM_ARGS, Daphne, Fleet, free_port
from tests.redis_util import delete_prefix
from tests.timing import scaled

pytestmark = [pytest.mark.browser, pytest.mark.redis]

BOARD_SOCKET = re.compile(r"/ws/boards/")
# What board.js reads from every frame before deciding whether to swap it.
META = re.compile(r'^<div id="board-meta"[^>]*? data-kind="(\w+)" data-epoch="([^"]*)" data-seq="(\d*)"')

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
    """Return (kind, epoch, seq) of a board frame, or None for anything else."""
    head = META.match(frame)
    return (head[1], head[2], int(head[3] or 0)) if head else None


def frame_is(kind: str, epoch: str, seq: int | None = None) -> Callable[[str], bool]:
    """Return a predicate for frames of KIND and EPOCH (and SEQ, if given)."""

    def matches(frame: str) -> bool:
        meta = meta_of(frame)
        return meta is not None and meta[:2] == (kind, epoch) and (seq is None or meta[2] == seq)

    return matches


def waiting(shown: dict, queue_key: str) -> str:
    """Return the number in a queue row's Waiting cell (without its warning flag)."""
    return shown["queue"][queue_key][1].split()[0]


class LossyLink:
    """The page's board socket, routed through the test (Playwright's route_web_socket).

    Frames pass both ways unchanged, except that the test can have the next
    server frame matching a predicate lost, and have the page's resync
    requests held back until it releases them.
    """

    def __init__(self) -> None:
        self.frames: list[str] = []  # Every frame the server sent, lost ones included.
        self.lost: list[str] = []
        self.resyncs: list[str] = []  # The page's resync requests, held or not.
        self.hold_resyncs = False
        self._held: list[tuple[object, str | bytes]] = []  # (the server side, a resync request)
        self._lose: Callable[[str], bool] | None = None
        self._changed = asyncio.Event()

    def route(self, page_side) -> None:
        server_side = page_side.connect_to_server()
        page_side.on_message(lambda message: self._from_page(server_side, message))
        server_side.on_message(lambda message: self._from_server(page_side, message))

    def lose_next(self, predicate: Callable[[str], bool]) -> None:
        self._lose = predicate

    def release(self) -> None:
        held, self._held = self._held, []
        for server_side, message in held:
            server_side.send(message)

    def _from_page(self, server_side, message: str | bytes) -> None:
        try:
            request = json.loads(message)
        except ValueError:
            request = None
        if isinstance(request, dict) and request.get("type") == "resync":
            self.resyncs.append(message)
            if self.hold_resyncs:
                self._held.append((server_side, message))
                self._changed.set()
                return
        server_side.send(message)
        self._changed.set()

    def _from_server(self, page_side, message: str | bytes) -> None:
        frame = message if isinstance(message, str) else message.decode()
        self.frames.append(frame)
        if self._lose is not None and self._lose(frame):
            self._lose = None
            self.lost.append(frame)
        else:
            page_side.send(message)
        self._changed.set()

    async def until(self, predicate: Callable[[], bool], what: str) -> None:
        try:
            async with asyncio.timeout(scaled(10)):
                while not predicate():
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}") from None

    def snapshots(self) -> int:
        """Return how many snapshot frames the server sent."""
        return sum(1 for frame in self.frames if (meta_of(frame) or ("",))[0] == "snapshot")


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


async def open_board(playwright, server, link: LossyLink):
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


async def test_a_delta_the_page_missed_makes_it_resync_instead_of_swapping_the_next(site):
    from playwright.async_api import async_playwright, expect

    server, ids, prefix = site
    worker = Worker(ids, prefix)
    link = LossyLink()
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

            # Delta 2 (Sales to 5 waiting, Bob gone) reaches the server's consumer but not the page.
            link.lose_next(frame_is("delta", "b1", 2))
            await worker.push([worker.queue("q-sales", waiting=5)], [bob])
            await link.until(lambda: link.lost, "delta 2 to be lost on its way to the page")

            # Delta 3 (Cat arrives, Support to 2 waiting) reaches the page, which must not swap it.
            link.hold_resyncs = True
            await worker.push(
                [
                    worker.agent("cat", "Cat", "q-sales", "on_queue", now, routing="INTERACTING"),
                    worker.queue("q-support", waiting=2),
                ]
            )
            await link.until(lambda: link.resyncs, "the page to ask for a resync")
            assert json.loads(link.resyncs[0]) == {"type": "resync"}
            assert [meta_of(frame) for frame in link.frames][-1] == ("delta", "b1", 3)
            # It asked instead of swapping: the page shows exactly what it showed at seq 1.
            assert await meta.get_attribute("data-seq") == "1"
            assert await rows_shown(page) == at_seq_1

            # The snapshot it asked for brings everything, the lost delta's changes too.
            link.release()
            await expect(meta).to_have_attribute("data-seq", "3")
            shown = await rows_shown(page)
            assert shown == await rows_stored(page, worker)
            assert set(shown["agent"]) == {ann, cat}
            assert (waiting(shown, sales), waiting(shown, support)) == ("5", "2")
            assert len(link.resyncs) == 1
            assert link.snapshots() == 2  # On connecting, and the one the page asked for.
            await expect(page.locator("#connection-state")).to_have_attribute("data-state", "live")
            assert not [line for line in console if "htmx:" in line], console
            await browser.close()
    finally:
        await worker.close()
        await delete_prefix(prefix)


# Which worker's Floor each agent, and each count of waiting contacts in Sales, comes from.
EPOCH_OF_AGENT = {"ann": "b1", "bob": "b1", "cat": "b2", "dan": "b2", "eve": "b3", "fay": "b3", "gus": "b3"}
EPOCH_OF_SALES_WAITING = {"1": "b1", "2": "b2", "3": "b3", "4": "b3"}

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


async def test_a_new_workers_epoch_replaces_the_board_and_never_mixes_with_the_old(site):
    from playwright.async_api import async_playwright, expect

    server, ids, prefix = site
    workers = [Worker(ids, prefix, epoch=epoch) for epoch in ("b1", "b2", "b3")]
    first, second, third = workers
    link = LossyLink()
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

            # Another new worker; this time the snapshot the consumer sends for its epoch is lost, so
            # the page meets the new epoch in a delta that otherwise follows its seq (b2 #1, then b3 #2).
            link.lose_next(frame_is("snapshot", "b3"))
            await third.push(floor(third, 3, "eve", "fay"), reset=True)
            await link.until(lambda: link.lost, "the b3 snapshot to be lost on its way to the page")
            link.hold_resyncs = True
            resyncs_before = len(link.resyncs)
            await third.push([third.queue("q-sales", waiting=4), agent(third, "gus")])
            await link.until(lambda: len(link.resyncs) > resyncs_before, "the page to ask for a resync")
            assert [meta_of(frame) for frame in link.frames][-1] == ("delta", "b3", 2)
            # It asked instead of swapping b3's rows onto b2's.
            assert await meta.get_attribute("data-epoch") == "b2"
            assert await rows_shown(page) == at_b2

            link.release()
            await expect(meta).to_have_attribute("data-epoch", "b3")
            await expect(meta).to_have_attribute("data-seq", "2")
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
