"""A page left open across a deploy that changed the page protocol reloads itself, once, to get the new script.

The server is restarted on the same port as a deploy would, speaking another
protocol version; the page reconnects, sees the version in the snapshot and
reloads. After the reload the stand-in server still speaks a version the
script does not (a real deploy's new script would): the guard stops a reload
loop.
"""

from __future__ import annotations

import re

import pytest

from dashboard.protocol import PROTOCOL_VERSION
from tests.board_site import Worker, board_site, sign_in
from tests.processes import CHROMIUM, CHROMIUM_ARGS, ROOT
from tests.timing import scaled

pytestmark = [pytest.mark.browser, pytest.mark.redis]


def test_the_script_and_the_frames_speak_the_same_protocol_version():
    script = (ROOT / "static" / "dashboard" / "board.js").read_text()
    assert re.search(r"var PROTOCOL = (\d+);", script).group(1) == str(PROTOCOL_VERSION)


async def test_a_snapshot_in_another_protocol_version_reloads_the_page_once(tmp_path):
    from playwright.async_api import async_playwright, expect

    with board_site(tmp_path, app="tests.protocol_probe:application") as (server, ids, prefix):
        worker = Worker(ids, prefix)
        await worker.write([worker.queue("q-sales", waiting=2)], reset=True)
        board_url = f"{server.url}/boards/floor/"
        try:
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = await browser.new_page()
                expect.set_options(timeout=scaled(10) * 1000)
                loads: list[str] = []
                page.on("load", lambda: loads.append(page.url))
                state = page.locator("#connection-state")
                await sign_in(page, board_url)
                await expect(state).to_have_attribute("data-state", "live")
                # The script the page runs was fetched with its content's hash in the URL.
                src = await page.locator('script[src*="board.js"]').get_attribute("src")
                assert re.fullmatch(r"/static/dashboard/board\.js\?v=[0-9a-f]{12}", src), src
                loads.clear()
                await page.evaluate("window.beforeDeploy = true")

                server.env["FLOORVIEW_TEST_PROTOCOL"] = str(PROTOCOL_VERSION + 1)
                server.stop()
                server.start()
                # The page came back to the new server, saw its version and reloaded: a new document.
                await page.wait_for_function("() => window.beforeDeploy === undefined", timeout=scaled(20) * 1000)
                await expect(state).to_have_attribute("data-state", "live")
                assert page.url == board_url
                # Once only: the reloaded page meets the same version and carries on rather than loop.
                await page.evaluate("window.afterReload = true")
                await worker.push([worker.queue("q-sales", waiting=7)])
                await expect(page.locator(f"#q-{ids['sales']} td").first).to_contain_text("7")
                assert await page.evaluate("window.afterReload === true")
                assert len(loads) == 1, loads
                await browser.close()
        finally:
            await worker.close()
