"""The reconnect loop: ``async for link in reconnecting(...)`` yields each confirmed link in turn.

Between two links it classifies why the last one ended (``failures``),
says so on the link's health and waits: minutes after refused credentials
(an admin has to act), else a jittered exponential backoff stretched to any
Retry-After. The backoff starts over only once a link stayed healthy for
``healthy_after`` seconds, so a server that accepts and drops at once is not
hammered.

The body of the loop watches the link until it ends; a rollover inside the
body replaces the link with its ``successor``, and the loop reads why the
newest link of that line ended once the body returns.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from streams.backoff import Backoff
from streams.health import LinkHealth
from streams.link.failures import Verdict, classify, describe, honour_retry_after
from streams.link.sockets import Link
from streams.link.timing import Timing

log = logging.getLogger(__name__)


class Retries:
    """Classify why a link ended, record it, and choose the wait before the next attempt."""

    def __init__(self, owner: object, *, timing: Timing, health: LinkHealth, set_state: Callable[..., None]) -> None:
        self.owner = owner  # named in log lines
        self.timing = timing
        self.health = health
        self._set_state = set_state
        self.backoff = Backoff(
            first=timing.backoff_first,
            minimum=timing.backoff_min,
            factor=timing.backoff_factor,
            cap=timing.backoff_cap,
            healthy_after=timing.healthy_after,
        )

    def attempting(self, first: bool) -> None:
        """Say a link is being opened (a retry after an auth failure keeps saying that until it works)."""
        if self.health.state != "auth_failed":
            self._set_state("connecting" if first else "reconnecting", "opening the notification link")

    def after(self, exc: BaseException) -> float:
        """Record the failure EXC and return how long to wait before the next attempt."""
        detail = describe(exc)
        self.health.record_error(detail)
        self.health.note("closed", detail)
        self.backoff.link_down()
        if classify(exc) is Verdict.WAIT_FOR_CREDENTIALS:
            wait = self.timing.auth_retry
            self.health.note("auth_failed", detail, retry_in=wait)
            self._set_state("auth_failed", f"{detail}; retrying in {wait:.0f} s")
            log.warning("%s: auth failed (%s); retrying in %.0f s", self.owner, detail, wait)
            return wait
        # A fatal failure is retried too: a connection an admin enabled keeps trying, and a new link
        # may cure what retrying one call cannot.
        wait = honour_retry_after(exc, self.backoff.next_delay(), self.timing.max_retry_after)
        self.health.note("backoff_scheduled", f"retrying in {wait:.1f} s", delay=round(wait, 3))
        self._set_state("reconnecting", f"{detail}; retrying in {wait:.1f} s")
        log.warning("%s: link lost (%s); retrying in %.1f s", self.owner, detail, wait)
        return wait


async def reconnecting(
    open_confirmed: Callable[[], Awaitable[Link]],
    *,
    retries: Retries,
    closed: asyncio.Event,
    drop: Callable[[], Awaitable[None]],
    pause: Callable[[float], Awaitable[None]],
) -> AsyncIterator[Link]:
    """Yield a confirmed link each time one opens, until CLOSED; between links, classify and back off.

    OPEN_CONFIRMED opens a link and waits until it proved itself; DROP closes
    whatever links are left once the body returned; PAUSE waits (and returns
    early when the connector closes).
    """
    first = True
    while not closed.is_set():
        retries.attempting(first)
        failure: BaseException | None = None
        try:
            link = await open_confirmed()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failure = exc
        else:
            retries.backoff.link_up()
            yield link
            failure = link.latest().failure()
        await drop()
        if closed.is_set():
            return
        # Said once the old link is gone, and with no wait between: whoever sees the failure sees the reconnect.
        wait = retries.after(failure) if failure is not None else retries.backoff.next_delay()
        first = False
        retries.health.reconnects += 1
        await pause(wait)
