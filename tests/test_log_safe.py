"""Upstream texts in logs and health notes: a newline (or any control character) never makes a log line of its own."""

from __future__ import annotations

import asyncio
import logging
import sys

from aiohttp import web

from streams.floor import Floor
from streams.health import LinkHealth, scrub
from streams.log_safe import safe_text
from streams.vendors.registry import connector_class
from streams.vendors.spec import ConnectionSpec
from tests.cxone_util import FAST
from tests.timing import eventually

FORGED = "invalid_grant\n2026-01-01 00:00:00,000 ERROR dashboard.worker forged line\r\x1b[2Jcleared\x85\u2028end"


def test_safe_text_escapes_every_control_character_and_keeps_the_rest():
    assert safe_text("a\nb\rc\td\x00e\x1bf\x7fg\x85h\x9fi\u2028j\u2029k") == (
        "a\\nb\\rc\\td\\x00e\\x1bf\\x7fg\\x85h\\x9fi\\u2028j\\u2029k"
    )
    assert safe_text("Zoë: 5 € — ok") == "Zoë: 5 € — ok"
    assert safe_text(ValueError("x\ny")) == "x\\ny"
    assert safe_text("\n" * 10, 5) == "\\n\\n\\"
    assert len(safe_text(FORGED).splitlines()) == 1


def test_health_notes_details_and_errors_stay_on_one_line():
    health = LinkHealth()
    health.set_state("degraded", f"CXone said {FORGED}")
    health.record_error(FORGED)
    health.note("error", FORGED, reason=FORGED)
    for text in (health.detail, health.last_error, health.events[-1]["detail"], health.events[-1]["data"]["reason"]):
        assert "\n" not in text and "\r" not in text and "\x1b" not in text, text
        assert len(text.splitlines()) == 1
    assert scrub("a\nb") == "a\\nb"
    # The same detail again changes nothing (it is compared as it was stored).
    changes = []
    health.on_change = changes.append
    health.set_state("degraded", f"CXone said {FORGED}")
    assert changes == []


async def test_a_newline_in_an_upstream_error_body_does_not_make_a_log_line(caplog):
    """A CXone token endpoint refuses the access key with an error code that holds a forged log line."""

    async def token(request: web.Request) -> web.Response:
        return web.json_response({"error": FORGED, "error_description": FORGED}, status=400)

    app = web.Application()
    app.router.add_post("/auth/token", token)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    spec = ConnectionSpec.of(
        "cxone",
        base_url=base,
        client_id="app",
        client_secret="secret",
        queue_ids=("1",),
        access_key_id="key",
        access_key_secret="key-secret",
    )
    connector = connector_class("cxone")(spec, Floor().apply, health=LinkHealth(), timing=FAST)
    caplog.set_level(logging.INFO)
    task = asyncio.create_task(connector.run())
    try:
        await eventually(lambda: connector.health.state == "auth_failed", what="the refused sign-in")
    finally:
        await connector.close()
        await asyncio.gather(task, return_exceptions=True)
        await runner.cleanup()
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    refusals = [r for r in caplog.records if "invalid_grant" in r.getMessage()]
    assert refusals, [r.getMessage() for r in caplog.records]
    for record in caplog.records:
        line = formatter.format(record)
        assert len(line.splitlines()) == 1 and "\x1b" not in line and "\x85" not in line, line
    assert "invalid_grant\\n2026-01-01" in refusals[0].getMessage()
    health = connector.health
    assert "\n" not in health.last_error and "\n" not in health.detail
    assert all("\n" not in event["detail"] for event in health.events)


def test_the_configured_formatter_keeps_a_record_on_its_own_lines():
    # Whatever a call site forgot to escape (an exception's text in a traceback included), no line of
    # the console log that starts at the margin can be written by someone else.
    from django.conf import settings
    from django.utils.module_loading import import_string

    config = dict(settings.LOGGING["formatters"]["plain"])
    formatter = import_string(config.pop("()"))(**config)
    logger = logging.getLogger("tests.forged")
    try:
        raise ValueError(FORGED)
    except ValueError:
        record = logger.makeRecord(logger.name, logging.ERROR, __file__, 1, "upstream said %s", (FORGED,), None)
        record.exc_info = sys.exc_info()
    text = formatter.format(record)
    lines = text.split("\n")
    assert "forged line" in lines[0] and "\\n2026-01-01" in lines[0]
    assert len(lines) > 2  # the traceback is still there, below the message
    assert all(line.startswith("    ") for line in lines[1:])
    assert not any(char in text for char in "\r\x1b\x85\u2028")
    # The record itself is left as it was for other handlers.
    assert record.args == (FORGED,)
