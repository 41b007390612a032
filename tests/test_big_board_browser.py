"""A board of a large centre in a real browser: a multi-megabyte snapshot, in parts, over the real server.

Daphne (``manage.py serve``) serves the real application over the test
Redis; the test plays the worker (tests/board_site.py). A board of 10,000
agents has a snapshot of several megabytes, which goes out in parts of at
most ``FLOORVIEW_SNAPSHOT_PART_BYTES``; the page must show every row, say
"Loading" (never "Live") until the last part, and carry on with deltas.
"""

from __future__ import annotations

import time

import pytest

from tests.board_site import Worker, sign_in
from tests.processes import CHROMIUM, CHROMIUM_ARGS
from tests.socket_util import head_of
from tests.timing import scaled

pytestmark = [pytest.mark.browser, pytest.mark.redis]

AGENTS = 10_000
PART_BYTES = 256 * 1024

# Records every change of the connection state with the number of agent rows on the page at that moment
# and when (milliseconds since the page's start).
WATCH_STATES = """
window.__states = [];
document.addEventListener("DOMContentLoaded", () => {
  const conn = document.getElementById("connection-state");
  new MutationObserver(() => {
    const rows = document.querySelectorAll("#agent-rows tr").length;
    window.__states.push([conn.dataset.state, rows, performance.now()]);
  }).observe(conn, { attributes: true, attributeFilter: ["data-state"] });
});
"""

AGENT_IDS = "() => Array.from(document.querySelectorAll('#agent-rows tr'), (row) => row.id)"


def agents(worker: Worker, prefix: str, now: float) -> list[dict]:
    # Names as long as a real centre's (given names, family names, a team): about 500 bytes a row, 5 MB in all.
    return [
        worker.agent(
            f"{prefix}{n:05}",
            f"Agent {prefix}{n:05} Maximiliana Featherstonehaugh-Okonkwo (Team {n % 40})",
            "q-sales" if n % 2 else "q-support",
            "on_queue",
            now,
        )
        for n in range(AGENTS)
    ]


async def test_a_board_with_a_multi_megabyte_snapshot_opens_whole_and_stays_live(site, tmp_path):
    from playwright.async_api import async_playwright, expect

    server, ids, prefix = site
    worker = Worker(ids, prefix)
    now = time.time()
    first = agents(worker, "a", now)
    await worker.write([worker.queue("q-sales", waiting=3), worker.queue("q-support"), *first], reset=True)
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            expect.set_options(timeout=scaled(30) * 1000)
            await page.add_init_script(WATCH_STATES)
            frames: list[str] = []
            page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(str(payload))))
            state = page.locator("#connection-state")

            started = time.monotonic()
            await sign_in(page, f"{server.url}/boards/floor/")
            await expect(state).to_have_attribute("data-state", "live")
            opened = time.monotonic() - started

            # The snapshot came in parts, each within the bound, several megabytes in all.
            parts = [frame for frame in frames if (head_of(frame) or {}).get("type", "").startswith("snapshot")]
            sizes = [len(frame.encode()) for frame in parts]
            assert sum(sizes) > 4_500_000, sum(sizes)
            assert len(parts) > 16 and max(sizes) <= PART_BYTES, (len(parts), max(sizes))
            assert [head_of(frame)["part"] for frame in parts] == list(range(1, len(parts) + 1))
            # Every row is on the page, each once.
            shown = await page.evaluate(AGENT_IDS)
            assert len(shown) == len(set(shown)) == AGENTS
            assert set(shown) == {row["key"] for row in first}
            # "Loading" while parts came in; "Live" only once all of them were applied.
            states = await page.evaluate("window.__states")
            assert {s for s, _, _ in states if s not in ("live", "connecting")} == {"loading"}, states
            assert all(rows == AGENTS for s, rows, _ in states if s == "live"), states
            loading = next(at for s, _, at in states if s == "loading")
            live = next(at for s, _, at in states if s == "live")
            assert await page.locator("#board").get_attribute("data-snapshot") == "complete"

            # Live updates carry on after it.
            await worker.push(
                [worker.queue("q-sales", waiting=17), worker.agent("a00042", "Agent a00042", "q-sales", "break", now)]
            )
            await expect(page.locator(f"#q-{ids['sales']} td").first).to_contain_text("17")
            await expect(page.locator(f"#a-{ids['source']}-a00042")).to_contain_text("Break")

            # A new worker's epoch with other agents: the page gets a fresh snapshot in parts, which replaces
            # every row it had (the first part) and adds the rest.
            restarted = Worker(ids, prefix, epoch="b2")
            second = agents(restarted, "b", now)
            await restarted.write(
                [restarted.queue("q-sales", waiting=5), restarted.queue("q-support"), *second], reset=True
            )
            await restarted.push([restarted.queue("q-sales", waiting=6)])
            await expect(page.locator(f"#q-{ids['sales']} td").first).to_contain_text("6")
            await expect(state).to_have_attribute("data-state", "live")
            shown = await page.evaluate(AGENT_IDS)
            assert len(shown) == AGENTS and set(shown) == {row["key"] for row in second}
            await restarted.push([restarted.agent("b00007", "Agent b00007", "q-sales", "break", now)])
            await expect(page.locator(f"#a-{ids['source']}-b00007")).to_contain_text("Break")
            await restarted.close()

            await page.screenshot(path=str(tmp_path / "big-board.png"))
            print(
                f"big board: {sum(sizes)} bytes in {len(parts)} parts; live {opened:.2f} s after sign-in,"
                f" {(live - loading) / 1000:.2f} s after the first part was applied"
            )
            await browser.close()
    finally:
        await worker.close()
    assert "left over" not in server.log_path.read_text(errors="replace")  # The write backlog cap never tripped.
