"""The worker: holds one connector per enabled connection, folds their events
into the Floor, and lets the publisher push board updates.

The loop only orders the steps (reload the configuration, place work under
leases, reconcile the connectors); each step is a method tests call
directly. Admin changes are picked up by polling the configuration.

Several workers share the fleet's work through leases (``streams.leases``).
Work is placed in *shards*: a board and every source it shows go together,
because one publisher must render a board from one Floor. A worker streams a
source only while it holds both the shard's lease (where the work goes) and
the source's own lease (that nobody else streams it): when shards regroup
after an admin change, a source moves only once its old worker let go.
What the work is and how it is grouped is read in ``dashboard.work_plan``;
the leases held are ``dashboard.placement``'s, and the connectors running
(started, updated, stopped, their health saved) ``dashboard.connector_pool``'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from redis.exceptions import RedisError

from dashboard.connector_pool import ConnectorPool
from dashboard.placement import Placement
from dashboard.publisher import Publisher
from dashboard.work_plan import Config, load_config, shards_of
from streams.events import Event, SourceSnapshot
from streams.floor import Floor
from streams.health import LinkHealth
from streams.leases import Leases, MemoryLeases, RedisLeases
from streams.link.connector import Connector
from streams.snapshots import SnapshotStore, get_snapshot_store

log = logging.getLogger(__name__)


def default_leases() -> Leases:
    """Return Redis leases when REDIS_URL is set, else the embedded mode's."""
    if settings.REDIS_URL:
        return RedisLeases(settings.REDIS_URL, prefix=settings.REDIS_PREFIX)
    return MemoryLeases()


def default_token_cache():
    """Return the fleet-wide token cache when REDIS_URL is set, else None (each connector keeps its own)."""
    if settings.REDIS_URL:
        from streams.token_cache import RedisTokenCache

        return RedisTokenCache(settings.REDIS_URL)
    return None


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
        leases: Leases | None = None,
        lease_ttl: float | None = None,
        token_cache=None,
    ) -> None:
        self.floor = floor or Floor(interaction_ttl=settings.FLOORVIEW["INTERACTION_TTL"])
        self.layer = layer or get_channel_layer()
        self.store = store or get_snapshot_store()
        self.config_poll = config_poll or settings.FLOORVIEW["CONFIG_POLL"]
        connector_options = dict(connector_options or {})
        token_cache = token_cache if token_cache is not None else default_token_cache()
        if token_cache is not None:
            connector_options.setdefault("token_cache", token_cache)
        self.token_cache = token_cache
        self.pool = ConnectorPool(self.sink, connector_options)  # the connectors running here
        self.config: Config | None = None
        self.placement = Placement(leases or default_leases(), lease_ttl or settings.FLOORVIEW["LEASE_TTL"])
        self.publisher = Publisher(
            self.floor,
            layer=self.layer,
            store=self.store,
            health_of=self.healths.get,
            liveness_period=liveness_period or settings.FLOORVIEW["LIVENESS_PERIOD"],
        )
        self._stopping = asyncio.Event()

    @property
    def connectors(self) -> dict[str, Connector]:
        """Return the connectors running here, by source."""
        return self.pool.connectors

    @property
    def healths(self) -> dict[str, LinkHealth]:
        """Return the link health of every source streamed here (or streamed before and stopped), by source."""
        return self.pool.healths

    # -- events ---------------------------------------------------------------

    def sink(self, event: Event) -> None:
        """Fold one event into the Floor and mark what changed for publishing."""
        changed = self.floor.apply(event)
        if changed:
            self.publisher.mark(changed)
        if isinstance(event, SourceSnapshot) and (health := self.healths.get(event.source)) is not None:
            # Only the Floor knows how far it had drifted from the vendor's picture.
            health.note("resynced", f"{len(changed)} rows differed", differences=len(changed))

    # -- steps ----------------------------------------------------------------

    async def reload(self) -> bool:
        """Read the configuration and act on it; return whether it changed."""
        config = await sync_to_async(load_config)()
        if config == self.config:
            return False
        self.config = config
        await self.place()
        return True

    async def place(self) -> bool:
        """Take, keep or give up leases, then run exactly the work held; return whether the work changed."""
        if self.config is None:
            return False
        changed = await self.placement.renew(shards_of(self.config), streaming=self.connectors)
        if changed is None:
            return False  # The leases are unreachable for now: the work held goes on as it is.
        await self._reconcile()
        return changed

    async def _reconcile(self) -> None:
        """Run a connector for each source held and wanted, stop the others, publish the boards held."""
        config = self.config
        held = self.placement
        specs = {s: config.specs[s] for s in held.sources if config and s in config.specs}
        wanted = {s for shard in held.shards.values() for s in shard.sources}
        specs = {s: spec for s, spec in specs.items() if s in wanted}
        stopped = False
        for source in list(self.connectors):
            if source not in specs:
                # Disabled in the admin, or its work went to another worker.
                await self.pool.stop(source, disabled=config is not None and source not in config.specs)
                self.publisher.mark(self.floor.drop_source(source))
                stopped = True
        if stopped:
            await held.release_unstreamed(specs.keys())
        for spec in specs.values():
            await self.pool.apply(spec)
        self.publisher.set_boards([plan for shard in held.shards.values() for plan in shard.boards])

    def expire_interactions(self) -> int:
        """Drop interactions nobody mentioned for the TTL from the Floor and its boards; return how many."""
        gone = self.floor.expire_interactions()
        if gone:
            log.info("dropped %d interactions not heard of for %.0f s", len(gone), self.floor.interaction_ttl)
            self.publisher.mark(gone)
        return len(gone)

    def roll_windows(self) -> int:
        """Take counts that left their window off the rolling figures and the boards; return the rows changed."""
        changed = self.floor.roll_windows()
        if changed:
            self.publisher.mark(changed)
        return len(changed)

    # -- the loop -------------------------------------------------------------

    async def run(self) -> None:
        """Run until stop() is called."""
        publisher_task = asyncio.create_task(self.publisher.run(), name="publisher")
        # Leases are renewed well within their TTL; the configuration is read less often.
        period = min(self.config_poll, self.placement.ttl / 4)
        next_reload = 0.0
        loop = asyncio.get_running_loop()
        try:
            while not self._stopping.is_set():
                try:
                    if loop.time() >= next_reload:
                        next_reload = loop.time() + self.config_poll
                        if not await self.reload():
                            await self.place()
                    else:
                        await self.place()
                    await self.pool.save_health()
                    self.expire_interactions()
                    self.roll_windows()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    # Otherwise a database blip would end the worker and every stream with it.
                    log.exception("a worker step failed; keeping the current work")
                # Wake for the next reload too: sleeping whole periods would stretch the poll to the next
                # multiple of the period (3 s polls every 5 s with the default 2.5 s lease period).
                wait = min(period, max(next_reload - loop.time(), 0.0))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=wait)
        finally:
            await self.pool.stop_all()
            publisher_task.cancel()
            await asyncio.gather(publisher_task, return_exceptions=True)
            await self.publisher.close()
            # Only now, with every socket closed and every update out, may another worker take over.
            await self.placement.release_all()
            if self.token_cache is not None:
                with contextlib.suppress(RedisError, OSError):
                    await self.token_cache.close()
            await self.pool.settled()

    def stop(self) -> None:
        """Ask the loop to finish: connectors close cleanly and pending updates are flushed."""
        self._stopping.set()
