"""The connectors one worker runs: one per source it streams, started, updated and stopped as its work changes.

Each connector keeps a ``LinkHealth`` (streams.health) that outlives it while
the source stays here, so a restarted link goes on counting. The health is
what the admin shows of a connection: it is saved when its state changes,
and every few seconds for the counters; old connection events are pruned
now and then. Saves run off the event loop, and a database that is away
costs a log line, never a stream.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

from streams.events import Event
from streams.health import LinkHealth, redact
from streams.link.connector import Connector
from streams.models import Connection, ConnectionEvent
from streams.vendors.registry import connector_class
from streams.vendors.spec import ConnectionSpec

# These lines were the worker's before they moved here: they keep its logger name, which log filters use.
log = logging.getLogger("dashboard.worker")


def _same_link(a: ConnectionSpec, b: ConnectionSpec) -> bool:
    """Return whether A and B differ in their watched queues only (a live link can take that)."""
    return dataclasses.replace(a, queue_ids=()) == dataclasses.replace(b, queue_ids=())


class ConnectorPool:
    """The worker's connectors by source, their tasks and link health, and the saving of that health."""

    # How often save_health() saves every running source's health, and prunes old events (seconds).
    health_save_period = 5.0
    event_prune_period = 60.0
    # Loop times of the last periodic save and prune (the first call does both).
    _health_saved_at = float("-inf")
    _events_pruned_at = float("-inf")

    def __init__(self, sink: Callable[[Event], None], options: dict[str, Any]) -> None:
        self.sink = sink  # where every connector delivers its events
        self.options = options  # keyword arguments for every connector (the shared token cache)
        self.connectors: dict[str, Connector] = {}
        self.tasks: dict[str, asyncio.Task] = {}
        self.healths: dict[str, LinkHealth] = {}
        self.saving: set[asyncio.Task] = set()  # health saves and prunes in flight

    # -- lifecycle ------------------------------------------------------------

    async def apply(self, spec: ConnectionSpec) -> None:
        """Run SPEC's connector: start it, hand a running one its new queues, or restart one whose link changed."""
        current = self.connectors.get(spec.source)
        if current is None:
            self.start(spec)
        elif current.spec != spec:
            if current.spec.queue_ids != spec.queue_ids and _same_link(current.spec, spec):
                current.update(spec)
            else:
                await self.stop(spec.source)
                self.start(spec)

    def start(self, spec: ConnectionSpec) -> None:
        """Start a connector for SPEC, with the source's health if it had one here."""
        health = self.healths.get(spec.source) or LinkHealth()
        health.on_change = self.on_health(spec.source)
        self.healths[spec.source] = health
        connector = connector_class(spec.kind)(spec, self.sink, health=health, **self.options)
        self.connectors[spec.source] = connector
        self.tasks[spec.source] = asyncio.create_task(connector.run(), name=f"connector {spec.source}")
        log.info("started %s connector for %s", spec.kind, spec.source)

    async def stop(self, source: str, *, disabled: bool = False) -> None:
        """Close SOURCE's connector and wait for its task; DISABLED: in the admin, whose status it then reports."""
        connector = self.connectors.pop(source)
        task = self.tasks.pop(source)
        health = self.healths.get(source)
        if health is not None and not disabled:
            # The stream moves to another worker (or this one stops): the admin's status is the
            # new holder's to report, and "stopped" written late would overwrite its "live".
            health.on_change = None
        await connector.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        log.info("stopped connector for %s", source)

    async def stop_all(self) -> None:
        """Stop every connector (the worker is stopping)."""
        for source in list(self.connectors):
            await self.stop(source)

    # -- health ---------------------------------------------------------------

    def on_health(self, source: str) -> Callable[[LinkHealth], None]:
        """Return what SOURCE's health calls when its state changes: save it, state and time."""

        def record(health: LinkHealth) -> None:
            self._save_health_of(source, health, state_changed=True)

        return record

    async def save_health(self) -> bool:
        """Save the health of every source streamed here and prune old events, when due; return whether it did."""
        now = asyncio.get_running_loop().time()
        saves = []
        if now - self._health_saved_at >= self.health_save_period:
            self._health_saved_at = now
            saves = [self._save_health_of(s, self.healths[s], state_changed=False) for s in self.connectors]
        if now - self._events_pruned_at >= self.event_prune_period:
            self._events_pruned_at = now
            pks = [int(source[1:]) for source in self.connectors]
            days = settings.FLOORVIEW["EVENT_RETENTION_DAYS"]
            prune = self._off_loop("pruning connection events", ConnectionEvent.prune, pks, days=days)
            saves.append(asyncio.ensure_future(prune))
        await asyncio.gather(*saves)
        return bool(saves)

    async def settled(self) -> None:
        """Wait for the saves in flight (the worker is stopping)."""
        if self.saving:
            await asyncio.gather(*self.saving, return_exceptions=True)

    def _save_health_of(self, source: str, health: LinkHealth, *, state_changed: bool) -> asyncio.Future:
        """Save SOURCE's health snapshot and the events noted since, off the event loop; the latest save wins."""
        connector = self.connectors.get(source)
        # Error texts should never quote a secret; if one does, it stops here.
        secrets = connector.spec.settings.secret_values() if connector is not None else ()
        snapshot = redact(health.as_dict(), *secrets)
        events = redact(health.take_events(), *secrets)
        record = Connection(pk=int(source[1:])).record_health
        what = f"saving the health of {source}"
        task = asyncio.ensure_future(self._off_loop(what, record, snapshot, events, state_changed=state_changed))
        self.saving.add(task)
        task.add_done_callback(self.saving.discard)
        return task

    async def _off_loop(self, what: str, func, *args, **kwargs) -> None:
        try:
            await sync_to_async(func)(*args, **kwargs)
        except Exception:
            # Otherwise a database blip would end the worker, or leave a task error nobody reads.
            log.warning("%s failed; carrying on", what, exc_info=True)
