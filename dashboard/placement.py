"""Where a worker's work goes: the leases it holds on shards and on sources, in a fleet sharing one Redis.

A worker streams a source only while it holds both the shard's lease (where
the work goes: a board and every source it shows, see dashboard.work_plan)
and the source's own lease (that nobody else streams it). When shards regroup
after an admin change, a source moves only once its old worker let go: a
source lease is given up only after its connector stopped. Leases are taken
and renewed well within their TTL; when they cannot be reached the worker
carries on with the work it holds, until a successor could be about to take
over, and then stops every stream first (streams.leases.LeaseClock).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Container, Iterable

from redis.exceptions import RedisError

from dashboard.work_plan import Shard
from streams.leases import LeaseClock, Leases

# These lines were the worker's before they moved here: they keep its logger name, which log filters use.
log = logging.getLogger("dashboard.worker")


class Placement:
    """The shards and sources a worker holds leases on, taken, renewed and given up as the work changes."""

    def __init__(self, leases: Leases, ttl: float) -> None:
        self.leases = leases
        self.ttl = ttl
        self.clock = LeaseClock(ttl)
        self.shards: dict[str, Shard] = {}
        self.sources: set[str] = set()

    async def renew(self, shards: dict[str, Shard], *, streaming: Container[str]) -> bool | None:
        """Take, keep or give up the leases of SHARDS and their sources; return whether what is held changed.

        STREAMING holds the sources whose connectors still run here: their leases are kept until they
        stop. Returns None, holding on to everything, if the leases cannot be reached for now.
        """
        try:
            held = await self._hold_shards(shards)
            wanted = set().union(*(shard.sources for shard in held.values())) if held else set()
            sources = await self._hold_sources(wanted, streaming)
            self.clock.confirm()
        except (RedisError, OSError) as exc:
            if not self.clock.expired():
                log.warning("leases unreachable (%s); carrying on for now", type(exc).__name__)
                return None
            # Our leases may have lapsed and a successor may be starting: stop before it does.
            log.error("leases unreachable for too long (%s); stopping every stream", type(exc).__name__)
            held, sources = {}, set()
        changed = held.keys() != self.shards.keys() or sources != self.sources
        self.shards, self.sources = held, sources
        return changed

    async def release_unstreamed(self, streamed: Iterable[str]) -> None:
        """Give up the leases of held sources not in STREAMED: their streams stopped here."""
        streamed = set(streamed)
        # They can now be handed over at once (or lapse, if Redis is away).
        for source in self.sources - streamed:
            with contextlib.suppress(RedisError, OSError):
                await self.leases.release(f"source:{source}")
        self.sources &= streamed

    async def release_all(self) -> None:
        """Give up every lease held and close the leases' connection (the worker is stopping)."""
        names = [*self.shards, *(f"source:{s}" for s in self.sources)]
        self.shards, self.sources = {}, set()
        for name in names:
            try:
                await self.leases.release(name)
            except (RedisError, OSError):
                log.warning("could not release lease %s; it lapses in %.0f s", name, self.ttl)
        with contextlib.suppress(RedisError, OSError):
            await self.leases.close()

    async def _hold_shards(self, shards: dict[str, Shard]) -> dict[str, Shard]:
        held = {}
        for name, shard in shards.items():
            if name in self.shards:
                ok = await self.leases.renew(name, self.ttl)
            else:
                ok = await self.leases.acquire(name, self.ttl)
            if ok:
                held[name] = shard
            elif name in self.shards:
                log.warning("lost the lease on %s to another worker", name)
        for name in self.shards.keys() - shards.keys():
            await self.leases.release(name)
        return held

    async def _hold_sources(self, wanted: set[str], streaming: Container[str]) -> set[str]:
        # Give up first what we no longer want and nothing streams here; a source still streaming is let go
        # once the worker stopped its connector (release_unstreamed).
        for source in self.sources - wanted:
            if source not in streaming:
                await self.leases.release(f"source:{source}")
        held = {s for s in self.sources - wanted if s in streaming}
        for source in sorted(wanted):
            name = f"source:{source}"
            ok = await (self.leases.renew if source in self.sources else self.leases.acquire)(name, self.ttl)
            if ok:
                held.add(source)
        return held
