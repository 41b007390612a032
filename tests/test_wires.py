"""The connector loop over a wire that is not a WebSocket: frames flow, and any failure of the wire fails the link."""

from __future__ import annotations

import asyncio

from streams.events import InteractionUpdate
from streams.link.connector import Connector
from streams.link.failures import LinkLost
from streams.link.liveness import SelfReported
from streams.link.sockets import Link, Socket
from streams.link.timing import Timing
from streams.oauth import AuthFailed
from streams.vendors.settings import KindSettings
from streams.vendors.spec import ConnectionSpec
from tests.timing import eventually, scaled, scheduled_wait

SPEC = ConnectionSpec(source="c1", kind="test", settings=KindSettings())
TIMING = Timing(backoff_first=0.01, backoff_min=0.01, backoff_cap=0.02, healthy_after=60)


class ListWire:
    """Yields its frames, then fails with FAILURE (or waits for ever when there is none)."""

    close_code = None
    close_reason = None

    def __init__(self, frames: list[str], failure: BaseException | None) -> None:
        self.frames = frames
        self.failure = failure
        self.closed = asyncio.Event()

    def __aiter__(self):
        return self._frames()

    async def _frames(self):
        for frame in self.frames:
            yield frame
        if self.failure is not None:
            raise self.failure
        await self.closed.wait()

    async def close(self) -> None:
        self.closed.set()


class ListConnector(Connector):
    """Opens a ListWire per link; each frame names an interaction."""

    kind = "test"
    liveness = SelfReported()

    def __init__(self, *args, failures: list[BaseException | None], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.failures = failures
        self.links = 0
        self.pauses: list[float] = []  # every wait the loop took between links

    async def _pause(self, seconds: float) -> None:
        self.pauses.append(seconds)
        await super()._pause(seconds)

    async def open_link(self) -> Link:
        failure = self.failures[min(self.links, len(self.failures) - 1)]
        self.links += 1
        return Link(sockets=[Socket(ListWire([f"i{self.links}"], failure), name="list", expires_at=None)])

    async def snapshot(self) -> None:
        return None

    def handle(self, socket: Socket, frame: str | bytes) -> None:
        self.emit(InteractionUpdate(source="c1", interaction_id=str(frame), state="waiting"))


class Sink(list):
    """Keeps what the connector delivers and wakes whoever waits for enough of it."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived = asyncio.Event()

    def __call__(self, event) -> None:
        self.append(event)
        self.arrived.set()

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(scaled(5)):
            while len(self) < count:
                self.arrived.clear()
                await self.arrived.wait()


async def run_until(connector: ListConnector, seen: Sink, count: int) -> None:
    task = asyncio.create_task(connector.run())
    try:
        await seen.wait_for(count)
    finally:
        await connector.close()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_wire_that_breaks_in_an_unexpected_way_fails_the_link_and_the_loop_reconnects():
    seen = Sink()
    connector = ListConnector(SPEC, seen, timing=TIMING, failures=[ValueError("bug in a wire"), None])
    await run_until(connector, seen, 2)
    assert [event.interaction_id for event in seen] == ["i1", "i2"]
    assert connector.health.last_error.endswith("the stream failed (ValueError)")
    assert connector.health.reconnects == 1


async def test_a_wire_that_reports_its_loss_gives_the_admin_its_reason():
    seen = Sink()
    lost = LinkLost("the queue is unreachable")
    connector = ListConnector(SPEC, seen, timing=TIMING, failures=[lost, None])
    await run_until(connector, seen, 2)
    assert "the queue is unreachable" in connector.health.last_error
    assert connector.snapshots == 0  # no snapshot to take: none was delivered


async def test_a_wire_refused_its_credentials_waits_for_an_admin_instead_of_retrying_at_once():
    seen = Sink()
    connector = ListConnector(SPEC, seen, timing=TIMING, failures=[AuthFailed("the token was refused (401)"), None])
    changed = asyncio.Event()
    connector.health.on_change = lambda health: changed.set()
    task = asyncio.create_task(connector.run())
    try:
        await seen.wait_for(1)
        async with asyncio.timeout(scaled(5)):
            while connector.health.state != "auth_failed":
                changed.clear()
                await changed.wait()
        assert "the token was refused" in connector.health.detail
        # The loop now waits the auth wait (minutes), not the (shrunk) backoff: no second link.
        await eventually(lambda: connector.pauses, within=5, what="the wait after the refusal")
        assert connector.pauses == [TIMING.auth_retry]
        assert scheduled_wait(connector.health) == TIMING.auth_retry
        assert connector.links == 1
    finally:
        await connector.close()
        await asyncio.gather(task, return_exceptions=True)
