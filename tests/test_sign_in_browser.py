"""Signing in and out in a real browser, under the site's Content-Security-Policy.

Daphne serves the real ASGI application; Chromium signs in on the site's own
login page, watches the live board (which must work with no CSP violation),
signs out with the page's button, and then finds the old session cookie
refused by the page, the JSON API and the board socket.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.board_site import PASSWORD, Worker, sign_in
from tests.processes import CHROMIUM, CHROMIUM_ARGS, ROOT
from tests.redis_util import delete_prefix
from tests.timing import scaled

pytestmark = [pytest.mark.browser, pytest.mark.redis]

# Collects the page's CSP violations (Chromium also logs them to the console, which is watched too).
RECORD_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.cspViolations.push(event.violatedDirective + " " + event.blockedURI);
});
"""

# Opens the board socket from the page and reports how it went: "snapshot", or the close code.
OPEN_SOCKET = """
(url) => new Promise((resolve) => {
  const socket = new WebSocket(url);
  socket.onmessage = () => { resolve("snapshot"); socket.close(); };
  socket.onclose = (event) => resolve("closed " + event.code);
})
"""


@pytest.fixture
def shots(tmp_path) -> Path:
    """Where the login page's screenshots go: FLOORVIEW_SCREENSHOT_DIR if set (to look at them), else a temp dir."""
    directory = Path(os.environ.get("FLOORVIEW_SCREENSHOT_DIR") or tmp_path)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


async def test_a_supervisor_signs_in_and_out_and_the_old_cookie_opens_nothing(site, shots):
    from playwright.async_api import async_playwright, expect

    server, ids, prefix = site
    worker = Worker(ids, prefix)
    await worker.write([worker.queue("q-sales", waiting=2, longest_waiting_since=time.time() - 30)], reset=True)
    board_url = f"{server.url}/boards/floor/"
    socket_url = board_url.replace("http://", "ws://").replace("/boards/", "/ws/boards/")
    expect.set_options(timeout=scaled(10) * 1000)
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context = await browser.new_context(viewport={"width": 1280, "height": 800})
            await context.add_init_script(RECORD_VIOLATIONS)
            page = await context.new_page()
            console: list[str] = []
            page.on("console", lambda message: console.append(message.text))

            await sign_in(page, board_url)
            await expect(page.locator("#connection-state")).to_have_attribute("data-state", "live")
            await expect(page.locator(f"#q-{ids['sales']} td").first).to_contain_text("2")
            # The board works under the policy: nothing was refused, and htmx injected no inline style.
            assert await page.evaluate("window.cspViolations") == []
            assert not [line for line in console if "Content Security Policy" in line], console
            assert await page.locator("head style").count() == 0
            old_cookies = await context.cookies()
            assert await page.evaluate(OPEN_SOCKET, socket_url) == "snapshot"

            await page.get_by_role("button", name="Sign out").click()
            await page.wait_for_url(f"{server.url}/login/")
            await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

            # A browser still holding the old session cookie.
            stale = await browser.new_context()
            await stale.add_cookies(old_cookies)
            old = await stale.new_page()
            await old.goto(board_url)
            assert old.url == f"{server.url}/login/?next=/boards/floor/"
            assert (await stale.request.get(f"{server.url}/api/boards/floor/")).status == 401
            # The policy the board was watched under above.
            policy = (await stale.request.get(f"{server.url}/login/")).headers["content-security-policy"]
            assert "script-src 'self'" in policy and "style-src 'self'" in policy and "unsafe" not in policy
            assert await old.evaluate(OPEN_SOCKET, socket_url) != "snapshot"

            await login_page_screenshots(browser, server.url, shots)
            await browser.close()
    finally:
        await worker.close()
        await delete_prefix(prefix)


async def login_page_screenshots(browser, url: str, directory: Path) -> None:
    """Photograph the login page at a laptop's, a wall screen's and a phone's width, then with an error and locked."""
    from playwright.async_api import expect

    for width, height in ((1280, 800), (1920, 1080), (390, 844)):
        context = await browser.new_context(viewport={"width": width, "height": height})
        page = await context.new_page()
        await page.goto(f"{url}/login/")
        await page.screenshot(path=str(directory / f"login-{width}.png"), full_page=True)
        if width == 1280:
            # What a typo, and then too many, look like.
            await page.fill("#id_username", "nobody")
            await page.fill("#id_password", "wrong-password")
            await page.click(".auth-form [type=submit]")
            await page.screenshot(path=str(directory / "login-error-1280.png"), full_page=True)
            for _ in range(10):
                if not await page.locator(".auth-form").count():
                    break
                await page.fill("#id_password", "wrong-password")
                await page.click(".auth-form [type=submit]")
            await expect(page.get_by_role("heading", name="Sign-in paused")).to_be_visible()
            await page.screenshot(path=str(directory / "login-locked-1280.png"), full_page=True)
        await context.close()


async def test_the_admin_works_under_the_content_security_policy(site):
    from playwright.async_api import async_playwright, expect

    server, _ids, _prefix = site
    make_staff = (
        "from django.contrib.auth.models import User; "
        "User.objects.filter(username='sue').update(is_staff=True, is_superuser=True)"
    )
    await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "manage.py", "shell", "-c", make_staff],
        cwd=ROOT,
        env=server.env,
        check=True,
        timeout=scaled(60),
    )
    expect.set_options(timeout=scaled(10) * 1000)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = await browser.new_context()
        await context.add_init_script(RECORD_VIOLATIONS)
        page = await context.new_page()
        console: list[str] = []
        page.on("console", lambda message: console.append(message.text))
        await page.goto(f"{server.url}/admin/login/?next=/admin/")
        await page.fill("#id_username", "sue")
        await page.fill("#id_password", PASSWORD)
        await page.click("input[type=submit]")
        await page.wait_for_url(f"{server.url}/admin/")
        for path in (
            "/admin/streams/connection/",
            "/admin/streams/connection/add/",
            "/admin/streams/connection/1/change/",
        ):
            await page.goto(f"{server.url}{path}")
            await expect(page.locator("#content")).to_be_visible()
            assert await page.evaluate("window.cspViolations") == [], path
        # The status badge is coloured by the admin stylesheet, not an inline style.
        await page.goto(f"{server.url}/admin/streams/connection/")
        colour = await page.locator(".fv-status").first.evaluate("el => getComputedStyle(el).color")
        assert colour == "rgb(97, 97, 97)"  # "unknown": the worker has not reported yet
        assert not [line for line in console if "Content Security Policy" in line], console
        await browser.close()
