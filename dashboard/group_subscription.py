"""One channel of this process in one channel-layer group, kept there whatever the layer does.

Board feeds (dashboard.fanout) and the access watch (dashboard.access) each
join a group once per process and hand what arrives to many viewers. Both
need the same care: join, receive in order, and when the layer fails
(Redis restarting) keep retrying with jittered backoff, join again and say
so, since messages sent meanwhile are lost; renew the membership before the
layer's group expiry (a day by default) forgets it; leave on the way out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from streams.backoff import Backoff

log = logging.getLogger(__name__)

# Every per-process channel of the web side uses this prefix. The Redis layer reads a process's
# channels one prefix at a time, taking turns for up to its blocking timeout (5 s): a second prefix
# would stall board deltas behind an idle access channel and the other way round.
CHANNEL_PREFIX = "board-feed"
# Well inside the layers' default group expiry of a day.
RENEW_EVERY = 3600.0


class GroupSubscription:
    """Keep one channel of this process in GROUP, handing each message to ON_MESSAGE.

    ON_REJOIN runs after the subscription came back from a lost layer (messages may have been missed
    meanwhile). Both callbacks are awaited in the receiving task: they must not wait on slow I/O.
    """

    def __init__(
        self,
        layer: Any,
        group: str,
        *,
        name: str,
        on_message: Callable[[Any], Awaitable[None]],
        on_rejoin: Callable[[], Awaitable[None]],
    ) -> None:
        self.layer = layer
        self.group = group
        self.name = name
        self.joined = asyncio.Event()
        self._on_message = on_message
        self._on_rejoin = on_rejoin
        self._channel: str | None = None
        self._stopped = False
        loop = asyncio.get_running_loop()
        self._tasks = (
            loop.create_task(self._run(), name=name),
            loop.create_task(self._renew(), name=f"{name} renewal"),
        )

    @property
    def running(self) -> bool:
        """Return whether the subscription has not been stopped."""
        return not self._stopped and not self._tasks[0].done()

    def stop(self) -> None:
        """Leave the group and stop receiving (idempotent)."""
        self._stopped = True
        for task in self._tasks:
            task.cancel()

    async def _run(self) -> None:
        backoff = Backoff(first=0.2, minimum=0.5, cap=5.0, healthy_after=30.0)
        lost = False
        try:
            while True:
                try:
                    await self._join()
                    backoff.link_up()
                    if lost:
                        lost = False
                        await self._on_rejoin()
                    while True:
                        await self._on_message(await self.layer.receive(self._channel))
                except asyncio.CancelledError:
                    raise
                except Exception as error:
                    self.joined.clear()
                    lost = True
                    delay = backoff.next_delay()
                    log.warning("%s lost the channel layer (%s); retrying in %.1fs", self.name, error, delay)
                    await asyncio.sleep(delay)
        finally:
            self.joined.clear()
            await self._leave()

    async def _join(self) -> None:
        if self._channel is None:
            self._channel = await self.layer.new_channel(prefix=CHANNEL_PREFIX + ".")
        await self.layer.group_add(self.group, self._channel)
        self.joined.set()

    async def _renew(self) -> None:
        # Time-based rather than on a message: a quiet group (worker down) must not drop out of the layer.
        while True:
            await asyncio.sleep(RENEW_EVERY)
            if not self.joined.is_set():
                continue  # The receiving side is reconnecting and joins again itself.
            try:
                await self.layer.group_add(self.group, self._channel)
            except Exception as error:
                log.warning("%s could not renew its membership: %s", self.name, error)

    async def _leave(self) -> None:
        if self._channel is None:
            return
        try:
            await asyncio.shield(self.layer.group_discard(self.group, self._channel))
        except Exception as error:
            # The membership then expires by itself; messages to a channel nobody reads are dropped.
            log.info("%s could not leave its group: %s", self.name, error)
