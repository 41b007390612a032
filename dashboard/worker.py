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
What the work is and how it is grouped is read in ``dashboard.work_plan``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from redis.exceptions import RedisError

from dashboard.publisher import Publisher
from dashboard.work_plan import Config, Shard, load_config, shards_of
from streams.events import Event, SourceSnapshot
from streams.floor import Floor
from streams.health import LinkHealth, redact
from streams.leases import LeaseClock, Leases, MemoryLeases, RedisLeases
from streams.link.connector import Connector
from streams.models import Connection, ConnectionEvent
from streams.snapshots import SnapshotStore, get_snapshot_store
from streams.vendors.registry import connector_class
from streams.vendors.spec import ConnectionSpec

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
        self.connectors: dict[str, Connector] = {}
        self.tasks: dict[str, asyncio.Task] = {}
        self.healths: dict[str, LinkHealth] = {}
        self.connector_options = dict(connector_options or {})
        token_cache = token_cache if token_cache is not None else default_token_cache()
        if token_cache is not None:
            self.connector_options.setdefault("token_cache", token_cache)
        self.token_cache = token_cache
        self.config: Config | None = None
        self.leases = leases or default_leases()
        self.lease_ttl = lease_ttl or settings.FLOORVIEW["LEASE_TTL"]
        self.lease_clock = LeaseClock(self.lease_ttl)
        self.held_shards: dict[str, Shard] = {}
        self.held_sources: set[str] = set()
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
        if isinstance(event, SourceSnapshot) and (health := self.healths.get(event.source)) is not None:
            # Only the Floor knows how far it had drifted from the vendor's picture.
            health.note("resynced", f"{len(changed)} rows differed", differences=len(changed))

    # How often save_health() saves every held source's health, and prunes old events (seconds).
    health_save_period = 5.0
    event_prune_period = 60.0
    # Loop times of the last periodic save and prune (the first call does both).
    _health_saved_at = float("-inf")
    _events_pruned_at = float("-inf")

    def _on_health(self, source: str):
        def record(health: LinkHealth) -> None:
            self._save_health_of(source, health, state_changed=True)

        return record

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
        self._status_tasks.add(task)
        task.add_done_callback(self._status_tasks.discard)
        return task

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

    async def _off_loop(self, what: str, func, *args, **kwargs) -> None:
        try:
            await sync_to_async(func)(*args, **kwargs)
        except Exception:
            # Otherwise a database blip would end the worker, or leave a task error nobody reads.
            log.warning("%s failed; carrying on", what, exc_info=True)

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
        shards = shards_of(self.config)
        try:
            held = await self._hold_shards(shards)
            wanted = set().union(*(shard.sources for shard in held.values())) if held else set()
            sources = await self._hold_sources(wanted)
            self.lease_clock.confirm()
        except (RedisError, OSError) as exc:
            if not self.lease_clock.expired():
                log.warning("leases unreachable (%s); carrying on for now", type(exc).__name__)
                return False
            # Our leases may have lapsed and a successor may be starting: stop before it does.
            log.error("leases unreachable for too long (%s); stopping every stream", type(exc).__name__)
            held, sources = {}, set()
        changed = held.keys() != self.held_shards.keys() or sources != self.held_sources
        self.held_shards, self.held_sources = held, sources
        await self._reconcile()
        return changed

    async def _hold_shards(self, shards: dict[str, Shard]) -> dict[str, Shard]:
        held = {}
        for name, shard in shards.items():
            if name in self.held_shards:
                ok = await self.leases.renew(name, self.lease_ttl)
            else:
                ok = await self.leases.acquire(name, self.lease_ttl)
            if ok:
                held[name] = shard
            elif name in self.held_shards:
                log.warning("lost the lease on %s to another worker", name)
        for name in self.held_shards.keys() - shards.keys():
            await self.leases.release(name)
        return held

    async def _hold_sources(self, wanted: set[str]) -> set[str]:
        # Give up first what we no longer want: its connector is already stopped (see _reconcile).
        for source in self.held_sources - wanted:
            if source not in self.connectors:
                await self.leases.release(f"source:{source}")
        held = {s for s in self.held_sources - wanted if s in self.connectors}
        for source in sorted(wanted):
            name = f"source:{source}"
            ok = await (self.leases.renew if source in self.held_sources else self.leases.acquire)(name, self.lease_ttl)
            if ok:
                held.add(source)
        return held

    async def _reconcile(self) -> None:
        """Run a connector for each source held and wanted, stop the others, publish the boards held."""
        config = self.config
        specs = {s: config.specs[s] for s in self.held_sources if config and s in config.specs}
        wanted = {s for shard in self.held_shards.values() for s in shard.sources}
        specs = {s: spec for s, spec in specs.items() if s in wanted}
        stopped = False
        for source in list(self.connectors):
            if source not in specs:
                # Disabled in the admin, or its work went to another worker.
                await self._stop_connector(source, disabled=config is not None and source not in config.specs)
                self.publisher.mark(self.floor.drop_source(source))
                stopped = True
        if stopped:
            # Sources whose streams stopped can now be handed over at once (or lapse, if Redis is away).
            for source in self.held_sources - specs.keys():
                with contextlib.suppress(RedisError, OSError):
                    await self.leases.release(f"source:{source}")
            self.held_sources &= specs.keys()
        for source, spec in specs.items():
            current = self.connectors.get(source)
            if current is None:
                self._start_connector(spec)
            elif current.spec != spec:
                if current.spec.queue_ids != spec.queue_ids and _same_link(current.spec, spec):
                    current.update(spec)
                else:
                    await self._stop_connector(source)
                    self._start_connector(spec)
        self.publisher.set_boards([plan for shard in self.held_shards.values() for plan in shard.boards])

    def _start_connector(self, spec: ConnectionSpec) -> None:
        health = self.healths.get(spec.source) or LinkHealth()
        health.on_change = self._on_health(spec.source)
        self.healths[spec.source] = health
        connector = connector_class(spec.kind)(spec, self.sink, health=health, **self.connector_options)
        self.connectors[spec.source] = connector
        self.tasks[spec.source] = asyncio.create_task(connector.run(), name=f"connector {spec.source}")
        log.info("started %s connector for %s", spec.kind, spec.source)

    async def _stop_connector(self, source: str, *, disabled: bool = False) -> None:
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
        period = min(self.config_poll, self.lease_ttl / 4)
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
                    await self.save_health()
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
            for source in list(self.connectors):
                await self._stop_connector(source)
            publisher_task.cancel()
            await asyncio.gather(publisher_task, return_exceptions=True)
            await self.publisher.close()
            # Only now, with every socket closed and every update out, may another worker take over.
            await self._release_all()
            if self._status_tasks:
                await asyncio.gather(*self._status_tasks, return_exceptions=True)

    async def _release_all(self) -> None:
        names = [*self.held_shards, *(f"source:{s}" for s in self.held_sources)]
        self.held_shards, self.held_sources = {}, set()
        for name in names:
            try:
                await self.leases.release(name)
            except (RedisError, OSError):
                log.warning("could not release lease %s; it lapses in %.0f s", name, self.lease_ttl)
        with contextlib.suppress(RedisError, OSError):
            await self.leases.close()
        if self.token_cache is not None:
            with contextlib.suppress(RedisError, OSError):
                await self.token_cache.close()

    def stop(self) -> None:
        """Ask the loop to finish: connectors close cleanly and pending updates are flushed."""
        self._stopping.set()


def _same_link(a: ConnectionSpec, b: ConnectionSpec) -> bool:
    """Return whether A and B differ in their watched queues only (a live link can take that)."""
    return dataclasses.replace(a, queue_ids=()) == dataclasses.replace(b, queue_ids=())
