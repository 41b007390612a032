"""The worker: holds one connector per enabled connection, folds their events
into the Floor, and lets the publisher push board updates.

The loop only orders the steps (reload the configuration, reconcile the
connectors); each step is a method tests call directly. Admin changes are
picked up by polling a cheap fingerprint of the configuration.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from dashboard.models import Board
from dashboard.rows import QueueConfig
from streams.connectors.base import ConnectionSpec, Connector
from streams.connectors.registry import connector_class
from streams.events import Event
from streams.floor import Floor
from streams.health import LinkHealth
from streams.models import Connection
from streams.publisher import BoardPlan, Publisher
from streams.snapshots import SnapshotStore, get_snapshot_store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Config:
    """What the worker should be doing, read from the database."""

    specs: dict[str, ConnectionSpec]
    boards: tuple[BoardPlan, ...]
    names: dict[str, str]  # source key → connection name, for logs


def load_config() -> Config:
    """Return the enabled connections (with the queues boards show) and the board plans."""
    connections = {c.pk: c for c in Connection.objects.filter(enabled=True)}
    watched: dict[int, set[str]] = {pk: set() for pk in connections}
    plans = []
    for board in Board.objects.prefetch_related("queues__connection").order_by("pk"):
        queues = {}
        for queue in board.queues.all():
            if queue.connection_id not in connections:
                continue
            watched[queue.connection_id].add(queue.vendor_id)
            queues[(queue.connection.source_key, queue.vendor_id)] = QueueConfig.from_queue(queue)
        window = board.coalesce_ms / 1000.0
        plans.append(BoardPlan(board_id=board.pk, slug=board.slug, window=window, queues=queues))
    specs = {}
    for pk, connection in connections.items():
        if not watched[pk]:
            continue  # Nothing on any board: no need to hold a stream.
        spec = ConnectionSpec.from_connection(connection, tuple(sorted(watched[pk])))
        specs[spec.source] = spec
    names = {c.source_key: c.name for c in connections.values()}
    return Config(specs=specs, boards=tuple(plans), names=names)


class Worker:
    """Runs connectors, the Floor and the publisher in one event loop."""

    def __init__(
        self,
        *,
        layer=None,
        store: SnapshotStore | None = None,
        floor: Floor | None = None,
        config_poll: float | None = None,
        liveness_period: float | None = None,
        connector_options: dict | None = None,
    ) -> None:
        self.floor = floor or Floor()
        self.layer = layer or get_channel_layer()
        self.store = store or get_snapshot_store()
        self.config_poll = config_poll or settings.FLOORVIEW["CONFIG_POLL"]
        self.connectors: dict[str, Connector] = {}
        self.tasks: dict[str, asyncio.Task] = {}
        self.healths: dict[str, LinkHealth] = {}
        self.connector_options = connector_options or {}
        self.config: Config | None = None
        self.publisher = Publisher(
            self.floor,
            layer=self.layer,
            store=self.store,
            health_of=self.healths.get,
            liveness_period=liveness_period or settings.FLOORVIEW["LIVENESS_PERIOD"],
        )
        self._stopping = asyncio.Event()
        self._status_tasks: set[asyncio.Task] = set()

    # -- events ---------------------------------------------------------------

    def sink(self, event: Event) -> None:
        """Fold one event into the Floor and mark what changed for publishing."""
        changed = self.floor.apply(event)
        if changed:
            self.publisher.mark(changed)

    def _on_health(self, source: str):
        def record(health: LinkHealth) -> None:
            # Persist the state for the admin, off the event loop; the latest one wins.
            pk = int(source[1:])
            task = asyncio.ensure_future(
                sync_to_async(Connection(pk=pk).record_status)(health.state, health.detail or "")
            )
            self._status_tasks.add(task)
            task.add_done_callback(self._status_tasks.discard)

        return record

    # -- steps ----------------------------------------------------------------

    async def reload(self) -> bool:
        """Read the configuration and reconcile connectors and boards; return whether anything changed."""
        config = await sync_to_async(load_config)()
        if config == self.config:
            return False
        old = self.config
        self.config = config
        for source in list(self.connectors):
            if source not in config.specs:
                await self._stop_connector(source)
                self.publisher.mark(self.floor.drop_source(source))
        for source, spec in config.specs.items():
            current = self.connectors.get(source)
            if current is None:
                self._start_connector(spec)
            elif old is not None and old.specs.get(source) != spec:
                if old.specs[source].queue_ids != spec.queue_ids and _same_link(old.specs[source], spec):
                    current.update(spec)
                else:
                    await self._stop_connector(source)
                    self._start_connector(spec)
        self.publisher.set_boards(config.boards)
        return True

    def _start_connector(self, spec: ConnectionSpec) -> None:
        health = self.healths.get(spec.source) or LinkHealth()
        health.on_change = self._on_health(spec.source)
        self.healths[spec.source] = health
        connector = connector_class(spec.kind)(spec, self.sink, health=health, **self.connector_options)
        self.connectors[spec.source] = connector
        self.tasks[spec.source] = asyncio.create_task(connector.run(), name=f"connector {spec.source}")
        log.info("started %s connector for %s", spec.kind, spec.source)

    async def _stop_connector(self, source: str) -> None:
        connector = self.connectors.pop(source)
        task = self.tasks.pop(source)
        await connector.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        log.info("stopped connector for %s", source)

    # -- the loop -------------------------------------------------------------

    async def run(self) -> None:
        """Run until stop() is called."""
        await self.reload()
        publisher_task = asyncio.create_task(self.publisher.run(), name="publisher")
        try:
            while not self._stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=self.config_poll)
                if self._stopping.is_set():
                    break
                try:
                    await self.reload()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    # Otherwise a database blip would end the worker and every stream with it.
                    log.exception("reloading the configuration failed; keeping the current one")
        finally:
            for source in list(self.connectors):
                await self._stop_connector(source)
            publisher_task.cancel()
            await asyncio.gather(publisher_task, return_exceptions=True)
            await self.publisher.close()
            if self._status_tasks:
                await asyncio.gather(*self._status_tasks, return_exceptions=True)

    def stop(self) -> None:
        """Ask the loop to finish: connectors close cleanly and pending updates are flushed."""
        self._stopping.set()


def _same_link(a: ConnectionSpec, b: ConnectionSpec) -> bool:
    return (a.kind, a.api_base, a.login_base, a.client_id, a.client_secret) == (
        b.kind,
        b.api_base,
        b.login_base,
        b.client_id,
        b.client_secret,
    )
