"""What the worker should be doing, read from the database, and how that work is grouped into shards.

A board and every source it shows form one shard: one publisher must render a board from one Floor, so
boards that share a source share a shard (a union-find over the boards' sources).
"""

from __future__ import annotations

from dataclasses import dataclass

from dashboard.models import Board
from dashboard.publisher import BoardPlan
from dashboard.rows import QueueConfig
from streams.models import Connection
from streams.vendors.registry import vendor
from streams.vendors.spec import ConnectionSpec


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
        disabled = set()
        for queue in board.queues.all():
            if queue.connection_id not in connections:
                disabled.add(queue.connection.source_key)
                continue
            watched[queue.connection_id].add(queue.vendor_id)
            unreported = vendor(queue.connection.kind).unreported_queue_fields
            queues[(queue.connection.source_key, queue.vendor_id)] = QueueConfig.from_queue(queue, unreported)
        window = board.coalesce_ms / 1000.0
        plans.append(
            BoardPlan(
                board_id=board.pk, slug=board.slug, window=window, queues=queues, disabled_sources=frozenset(disabled)
            )
        )
    specs = {}
    for pk, connection in connections.items():
        if not watched[pk]:
            continue  # Nothing on any board: no need to hold a stream.
        spec = ConnectionSpec.from_connection(connection, tuple(sorted(watched[pk])))
        specs[spec.source] = spec
    names = {c.source_key: c.name for c in connections.values()}
    return Config(specs=specs, boards=tuple(plans), names=names)


@dataclass(frozen=True)
class Shard:
    """Work that must run in one worker: some boards and every source they show."""

    name: str
    sources: frozenset[str]
    boards: tuple[BoardPlan, ...]


def shards_of(config: Config) -> dict[str, Shard]:
    """Group the configuration's sources and boards into shards (boards sharing a source share a shard)."""
    parent: dict[str, str] = {source: source for source in config.specs}

    def root(source: str) -> str:
        while parent[source] != source:
            parent[source] = parent[parent[source]]
            source = parent[source]
        return source

    for plan in config.boards:
        sources = sorted(s for s in plan.sources if s in parent)
        for other in sources[1:]:
            parent[root(other)] = root(sources[0])
    members: dict[str, set[str]] = {}
    for source in config.specs:
        members.setdefault(root(source), set()).add(source)
    boards: dict[str, list[BoardPlan]] = {}
    for plan in config.boards:
        sources = [s for s in plan.sources if s in parent]
        # A board with nothing streaming still needs a publisher to say so.
        boards.setdefault(root(sources[0]) if sources else f"board-{plan.board_id}", []).append(plan)
    shards = {}
    for key in set(members) | set(boards):
        sources = frozenset(members.get(key, ()))
        name = f"shard:{min(sources)}" if sources else f"shard:{key}"
        shards[name] = Shard(name=name, sources=sources, boards=tuple(boards.get(key, ())))
    return shards
