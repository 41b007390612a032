"""The small queue each connection's messages reach the application through (dashboard_project.app_inbox)."""

from __future__ import annotations

import asyncio

import pytest

from dashboard_project.app_inbox import AppInbox, LeanInboxServer
from dashboard_project.webserver import FloorviewServer


async def test_messages_come_out_in_order_and_an_idle_inbox_holds_nothing():
    inbox = AppInbox()
    assert inbox.empty() and inbox.qsize() == 0
    for n in range(3):
        inbox.put_nowait(n)
    assert inbox.qsize() == 3
    assert [await inbox.get() for _ in range(3)] == [0, 1, 2]
    # Memory per open socket is the point: nothing is held once the messages are taken.
    assert inbox._items is None and inbox._getters is None


async def test_a_waiting_get_is_woken_by_a_put():
    inbox = AppInbox()
    getter = asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0)
    assert not getter.done()
    inbox.put_nowait({"type": "websocket.connect"})
    assert await asyncio.wait_for(getter, 1) == {"type": "websocket.connect"}
    assert inbox._getters is None


async def test_a_cancelled_get_loses_no_message_and_passes_the_wake_up_on():
    inbox = AppInbox()
    first = asyncio.ensure_future(inbox.get())
    second = asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0)
    inbox.put_nowait("m")  # wakes the first getter...
    first.cancel()  # ...which is cancelled before it runs: the second one gets the message
    assert await asyncio.wait_for(second, 1) == "m"
    with pytest.raises(asyncio.CancelledError):
        await first
    assert inbox.empty()


async def test_gets_waiting_together_each_get_one_message():
    inbox = AppInbox()
    getters = [asyncio.ensure_future(inbox.get()) for _ in range(3)]
    await asyncio.sleep(0)
    for n in range(3):
        inbox.put_nowait(n)
    assert sorted(await asyncio.gather(*getters)) == [0, 1, 2]


def test_the_web_server_uses_it():
    assert issubclass(FloorviewServer, LeanInboxServer)
