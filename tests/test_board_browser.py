"""The board in a real browser: Daphne serving the real ASGI app, Redis carrying pushes, Chromium watching.

The test plays the worker: it renders rows with dashboard.rows, writes them to
the Redis snapshot store and sends them through the Redis channel layer, as
the publisher does. It checks what a supervisor would see: rows changing,
thresholds, ticking clocks, stale marking, the connection state through a
server restart, and filters that survive a reload.
"""

from __future__ import annotations

import os
import re
import time

import pytest

from tests.board_site import Worker, sign_in
from tests.processes import CHROMIUM, CHROMIUM_ARGS
from tests.redis_util import delete_prefix
from tests.socket_util import head_of
from tests.timing import scaled

pytestmark = [pytest.mark.browser, pytest.mark.redis]


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
                return sum((head_of(frame) or {}).get("type") == "snapshot" for frame in frames)

            # Sign in through the login page the board sends us to.
            await sign_in(page, f"{server.url}/boards/floor/")
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
            # ... spread over the window the server names in the close's reason (one viewer: a second).
            await expect(page.locator("#board")).to_have_attribute("data-last-spread", "1")
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


async def test_a_supervisor_filters_live_interactions_by_campaign_and_disposition(site):
    from playwright.async_api import async_playwright, expect

    server, ids, prefix = site
    worker = Worker(ids, prefix)
    now = time.time()
    a, b, c = (f"#i-{ids['source']}-{name}" for name in ("call-a", "chat-b", "call-c"))
    await worker.write(
        [
            worker.interaction("call-a", "q-sales", "connected", now - 75, media="voice", campaign="Loyalty",
                               agent_name="Ann", disposition=None),
            worker.interaction("chat-b", "q-support", "waiting", now - 30, media="chat", campaign="Renewals"),
            worker.interaction("call-c", "q-sales", "wrapup", now - 200, media="voice", campaign="Loyalty",
                               agent_name="Bob", disposition="Sale"),
        ],
        reset=True,
    )  # fmt: skip
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = await browser.new_page(viewport={"width": 1400, "height": 900})
            expect.set_options(timeout=scaled(10) * 1000)
            await sign_in(page, f"{server.url}/boards/floor/")
            await expect(page.locator("#connection-state")).to_have_attribute("data-state", "live")
            rows = page.locator("#interaction-rows tr")
            # Oldest first, every field shown, the age ticking in the browser.
            assert await rows.evaluate_all("rows => rows.map(r => r.id)") == [c[1:], a[1:], b[1:]]
            await expect(page.locator(f"{a} .status")).to_have_text("Connected")
            await expect(page.locator(f"{a} .agent")).to_have_text("Ann")
            await expect(page.locator(f"{c} .disposition")).to_have_text("Sale")
            await expect(page.locator(f"{b} .media")).to_have_text("Chat")
            await expect(page.locator(f"{a} .clock")).to_have_text(re.compile(r"^1:1\d$"))

            # The campaigns on the board are offered as choices; ticking one narrows the table.
            await page.click("#filter-panel summary")
            await page.check('input[name="campaign"][value="Loyalty"]')
            await expect(page).to_have_url(re.compile(r"\?campaign=Loyalty$"))
            await expect(rows).to_have_count(2)
            await page.check('input[name="disposition"][value="(none)"]')
            await expect(rows).to_have_count(1)
            await expect(page.locator(a)).to_have_count(1)

            # A pushed disposition takes the row out of this filter; a new matching call comes in.
            await worker.push(
                [
                    worker.interaction("call-a", "q-sales", "wrapup", now - 75, campaign="Loyalty", disposition="Sale"),
                    worker.interaction("call-d", "q-support", "alerting", now, campaign="Loyalty"),
                ]
            )
            await expect(page.locator(a)).to_have_count(0)
            await expect(page.locator(f"#i-{ids['source']}-call-d .status")).to_have_text("Alerting")
            # The filter survives a reload.
            await page.reload()
            await expect(page.locator('input[name="disposition"][value="(none)"]')).to_be_checked()
            await expect(rows).to_have_count(1)
            # An ended interaction leaves every viewer's table.
            await worker.push([], [f"i-{ids['source']}-call-d"])
            await expect(rows).to_have_count(0)
            await expect(page.locator('[data-empty-for="interaction-rows"]')).to_be_visible()
            await browser.close()
    finally:
        await worker.close()
        await delete_prefix(prefix)
