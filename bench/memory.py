"""Memory: what the worker holds for a big centre, and what Daphne holds per idle viewer.

The worker side builds, in a child process of its own (so its RSS is the
centre's and nothing else's), the Floor and the publisher's board state as
the worker does: every queue, agent and interaction arrives as an event
through ``Floor.apply``, the changed rows go through ``Publisher.mark``, and
every board is flushed (each row rendered once with the board's templates).
The snapshot store is Redis-shaped: in production the rendered rows live in
Redis, not in the worker, so the store here keeps nothing (``--store memory``
keeps them in the process, as the embedded demo does). The figures are the
RSS after a garbage collection, its peak, and, from a second child started
with tracemalloc, the allocations that hold the most.

The web side is in ``bench/memory_web.py``.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import random
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

from bench.procfs import rss_kib

ROOT = Path(__file__).resolve().parent.parent
# The worker's limit is per source (streams.floor.MAX_INTERACTIONS): a centre this big spans sources.
SOURCES = 4
MEDIA = ("voice", "voice", "voice", "chat", "email", "message")
INTERACTION_STATES = ("connected", "connected", "connected", "waiting", "held", "wrapup", "alerting")
PRESENCES = ("ON_QUEUE", "ON_QUEUE", "ON_QUEUE", "AVAILABLE", "BREAK", "MEAL", "BUSY")
ROUTING = ("INTERACTING", "INTERACTING", "IDLE", "COMMUNICATING", "NOT_RESPONDING")
START = 1_780_000_000.0


class NullStore:
    """A snapshot store that keeps nothing: the worker's side of the production Redis store."""

    async def write(self, board_id: int, **_: Any) -> bool:
        """Accept every write (the rows would now be in Redis)."""
        return True

    async def read(self, board_id: int) -> None:
        """Hold nothing."""
        return None


def _uuid(rng: random.Random) -> str:
    # Vendors' ids are UUIDs (Genesys) or long numbers (CXone): the text, not its kind, costs memory.
    a, b, c, d, e = (rng.getrandbits(n) for n in (32, 16, 16, 16, 48))
    return f"{a:08x}-{b:04x}-{c:04x}-{d:04x}-{e:012x}"


def build_events(queues: int, agents: int, interactions: int, seed: int = 3) -> tuple[list, dict]:
    """Return the events that bring an empty Floor to the centre, and per source the queue ids."""
    from streams.events import AgentStatus, InteractionUpdate, QueueStats

    rng = random.Random(seed)
    queue_ids = {f"c{s + 1}": [_uuid(rng) for _ in range(queues // SOURCES)] for s in range(SOURCES)}
    events: list = []
    for source, ids in queue_ids.items():
        for n, queue_id in enumerate(ids):
            figures = {"name": f"Queue {source} {n}", "waiting": rng.randrange(12), "interacting": rng.randrange(40)}
            figures |= {"alerting": rng.randrange(3), "on_queue_agents": 30, "idle_agents": rng.randrange(8)}
            figures |= {"interval_start": START, "offered": 300, "answered": 280, "abandoned": rng.randrange(20)}
            figures |= {"sl_numerator": 240, "sl_denominator": 280, "longest_waiting_since": START - 40}
            events.append(QueueStats.of(source, queue_id, figures))
    agent_ids: dict[str, list[tuple[str, str]]] = {}
    for n in range(agents):
        source = f"c{n % SOURCES + 1}"
        agent_id = _uuid(rng)
        name = f"Agent {n} {rng.choice(('Smith', 'Jones', 'Okafor', 'Nguyen', 'García'))}"
        agent_ids.setdefault(source, []).append((agent_id, name))
        member = frozenset(rng.sample(queue_ids[source], rng.randint(1, 3)))
        values = {"name": name, "presence": rng.choice(PRESENCES), "presence_since": START - rng.randrange(3600)}
        values |= {"routing_status": rng.choice(ROUTING), "routing_since": START - rng.randrange(600)}
        events.append(AgentStatus.of(source, agent_id, values | {"queue_ids": member}))
    for n in range(interactions):
        source = f"c{n % SOURCES + 1}"
        state = rng.choice(INTERACTION_STATES)
        agent_id, agent_name = rng.choice(agent_ids[source]) if state != "waiting" else (None, None)
        values = {"media": rng.choice(MEDIA), "queue_id": rng.choice(queue_ids[source]), "state": state}
        values |= {"agent_id": agent_id, "agent_name": agent_name, "started_at": START - rng.randrange(1800)}
        if rng.random() < 0.3:
            values |= {"campaign": f"Campaign {rng.randrange(20)}", "disposition": None}
        events.append(InteractionUpdate.of(source, _uuid(rng), values))
    return events, queue_ids


def board_plans(queue_ids: dict[str, list[str]], boards: int) -> list:
    """Return BOARDS plans sharing the queues between them (each board's queues from one source)."""
    from dashboard.board_plan import BoardPlan
    from dashboard.rows import QueueConfig

    per_source = max(1, boards // len(queue_ids))
    plans, pk = [], 0
    for source, ids in queue_ids.items():
        size = -(-len(ids) // per_source)
        for start in range(0, len(ids), size):
            configs = {}
            for queue_id in ids[start : start + size]:
                pk += 1
                configs[(source, queue_id)] = QueueConfig(pk=pk, vendor_id=queue_id, name=f"Queue {pk}")
            board_id = len(plans) + 1
            plans.append(BoardPlan(board_id=board_id, slug=f"board-{board_id}", window=0.25, queues=configs))
    return plans


async def _fold(events: list, plans: list, store: str) -> Any:
    from channels.layers import InMemoryChannelLayer

    from dashboard.publisher import Publisher
    from streams.floor import Floor
    from streams.snapshots import MemorySnapshotStore

    floor = Floor()
    kept = MemorySnapshotStore() if store == "memory" else NullStore()
    publisher = Publisher(floor, layer=InMemoryChannelLayer(), store=kept)
    publisher.set_boards(plans)
    apply, mark = floor.apply, publisher.mark
    for event in events:
        changed = apply(event)
        if changed:
            mark(changed)
    await publisher.coalescer.close()
    await publisher.flush_all()
    return floor, publisher, kept


def worker_child(args: dict) -> dict:
    """Build the centre in this process and return its figures (run in a child: ``python bench/memory.py``)."""
    import django

    django.setup()
    trace = args["trace"]
    gc.collect()
    before = rss_kib()["VmRSS"]
    if trace:
        tracemalloc.start(args["frames"])
    started = time.perf_counter()
    events, queue_ids = build_events(args["queues"], args["agents"], args["interactions"])
    plans = board_plans(queue_ids, args["boards"])
    built = time.perf_counter() - started
    held = asyncio.run(_fold(events, plans, args["store"]))
    del events
    floor, publisher, _store = held
    gc.collect()
    figures = {
        "rss_before_kib": before,
        **rss_kib(),
        "seconds_events": built,
        "seconds": time.perf_counter() - started,
        "queues": len(floor.queues),
        "agents": len(floor.agents),
        "interactions": len(floor.interactions),
        "boards": len(publisher.boards),
        "rows_rendered": publisher.rows_rendered,
        "rows_shown": sum(len(state.shown) for state in publisher.boards.values()),
    }
    if trace:
        snapshot = tracemalloc.take_snapshot().filter_traces(
            (
                tracemalloc.Filter(False, tracemalloc.__file__),
                tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
            )
        )
        figures["traced_kib"] = tracemalloc.get_traced_memory()[0] // 1024
        figures["top"] = [
            (str(stat.traceback).replace(str(ROOT) + "/", ""), stat.size // 1024, stat.count)
            for stat in snapshot.statistics("lineno")[: args["top"]]
        ]
    return figures


def _run_child(args: dict) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, json.dumps(args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
    )
    if done.returncode:
        raise RuntimeError(f"the memory child failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_worker(
    *,
    queues: int = 1000,
    agents: int = 10_000,
    interactions: int = 100_000,
    boards: int = 50,
    store: str = "null",
    trace: bool = True,
) -> dict:
    """Measure the worker's memory for the centre; print the figures and return them."""
    print(f"== Worker memory ({queues:,} queues, {agents:,} agents, {interactions:,} interactions, {boards} boards) ==")
    args = {"queues": queues, "agents": agents, "interactions": interactions, "boards": boards, "store": store}
    plain = _run_child(args | {"trace": False, "frames": 1, "top": 0})
    print(
        f"built {plain['queues']:,} queues, {plain['agents']:,} agents, {plain['interactions']:,} interactions on "
        f"{plain['boards']} boards ({plain['rows_shown']:,} rows shown, {plain['rows_rendered']:,} rendered) "
        f"in {plain['seconds']:.1f} s; snapshot store: {'in process' if store == 'memory' else 'Redis-shaped'}"
    )
    rss, peak, base = plain["VmRSS"] / 1024, plain["VmHWM"] / 1024, plain["rss_before_kib"] / 1024
    print(f"worker RSS: {rss:.0f} MiB after gc (Django loaded: {base:.0f} MiB; peak {peak:.0f} MiB)")
    print(f"target <= 250 MB: {'met' if rss * 1.048576 <= 250 else 'NOT met'} ({rss * 1.048576:.0f} MB)")
    if not trace:
        return {"rss_mib": rss, "peak_mib": peak, "base_mib": base}
    traced = _run_child(args | {"trace": True, "frames": 1, "top": 15})
    print(f"tracemalloc (a second child): {traced['traced_kib'] / 1024:.0f} MiB traced; top lines:")
    for where, kib, count in traced["top"]:
        print(f"  {kib / 1024:7.1f} MiB {count:>9,} blocks  {where}")
    return {"rss_mib": rss, "peak_mib": peak, "base_mib": base, "traced_mib": traced["traced_kib"] / 1024}


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard_project.settings")
    os.environ.setdefault("FLOORVIEW_REQUIRE_SECRETS", "false")
    if len(sys.argv) == 2 and sys.argv[1].startswith("{"):
        print(json.dumps(worker_child(json.loads(sys.argv[1]))))
    else:
        run_worker()
