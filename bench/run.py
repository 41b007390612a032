"""Floorview's benchmarks: ``make bench`` or ``.venv/bin/python bench/run.py [options]``.

Prints figures and asserts nothing (see docs/PERFORMANCE.md for what they mean):

1. parse+apply throughput on one core (``bench/parse.py``);
2. change-to-viewer delay with many WebSocket viewers on one board, against
   the real demo started as a subprocess, or with ``--redis URL`` against
   simulate + runstreams + daphne sharing that Redis (``bench/viewers.py``);
3. a handshake burst: anonymous socket upgrades while a signed-in viewer
   connects, against the demo (``bench/handshakes.py``);
4. memory: the worker's RSS for a big centre, and the web process's per idle
   viewer (``bench/memory.py``, ``bench/memory_web.py``);
5. a reconnect storm: ``--storm-viewers`` viewers on one board over Daphne and
   Redis, Daphne restarted, then every socket dropped (``bench/storm.py``);
   only with ``--only storm``, as it needs a Redis and takes a few minutes.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

# Run as a script from the repository root: make the project importable and configure Django.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard_project.settings")
# Benchmarks run throwaway stacks on a laptop: the public development keys will do (see README).
os.environ.setdefault("FLOORVIEW_REQUIRE_SECRETS", "false")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Return the command line's options."""
    parser = argparse.ArgumentParser(description="Print Floorview's performance figures.")
    parser.add_argument(
        "--only", choices=("parse", "viewers", "handshakes", "memory", "storm"), help="Run one benchmark only."
    )
    parser.add_argument("--viewers", type=int, default=200, help="WebSocket viewers on the board (default 200).")
    parser.add_argument("--changes", type=int, default=40, help="Agent status changes to time (default 40).")
    parser.add_argument("--agents", type=int, default=60, help="Agents in the viewers benchmark's demo (default 60).")
    parser.add_argument(
        "--redis",
        metavar="URL",
        help="Measure viewers on production-shaped processes (simulate, runstreams, daphne) sharing this Redis.",
    )
    parser.add_argument("--burst", type=int, default=1000, help="Anonymous upgrades in the burst (default 1000).")
    parser.add_argument(
        "--burst-concurrency", type=int, default=400, help="Burst upgrades in flight at once (default 400)."
    )
    parser.add_argument(
        "--storm-viewers", type=int, default=2000, help="Viewers in the reconnect storm (default 2000)."
    )
    parser.add_argument("--repeats", type=int, default=7, help="Runs of each parse stage; the best counts (default 7).")
    parser.add_argument("--profile", action="store_true", help="Also print cProfile's table for one parse run.")
    parser.add_argument(
        "--idle-viewers", type=int, default=2000, help="Idle sockets the memory benchmark opens (default 2000)."
    )
    parser.add_argument(
        "--memory-side", choices=("worker", "web"), help="Measure one side of the memory benchmark only."
    )
    parser.add_argument("--no-trace", action="store_true", help="Skip the memory benchmark's tracemalloc run.")
    args = parser.parse_args(argv)
    if not 1 <= args.idle_viewers <= 5000:
        parser.error("--idle-viewers must be 1..5000")
    if not 1 <= args.burst <= 10000 or not 1 <= args.burst_concurrency <= 1000:
        parser.error("--burst must be 1..10000, --burst-concurrency 1..1000")
    if not 1 <= args.storm_viewers <= 5000:
        parser.error("--storm-viewers must be 1..5000")
    if not 1 <= args.viewers <= 5000 or not 1 <= args.changes <= 1000 or not 1 <= args.repeats <= 50:
        parser.error("--viewers must be 1..5000, --changes 1..1000, --repeats 1..50")
    return args


def main(argv: list[str] | None = None) -> None:
    """Run the chosen benchmarks and print their figures."""
    args = parse_args(argv)
    import django

    django.setup()
    from bench import handshakes, memory, memory_web, parse, storm, viewers

    print(
        f"Floorview bench: Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"{platform.system()} {platform.machine()}"
    )
    started = time.perf_counter()
    if args.only in (None, "parse"):
        parse.run(repeats=args.repeats, show_profile=args.profile)
        print()
    if args.only in (None, "viewers"):
        viewers.run(viewers=args.viewers, changes=args.changes, agents=args.agents, redis_url=args.redis)
        print()
    if args.only in (None, "handshakes"):
        handshakes.run(burst=args.burst, concurrency=args.burst_concurrency, agents=args.agents)
        print()
    if args.only in (None, "memory"):
        if args.memory_side in (None, "worker"):
            memory.run_worker(trace=not args.no_trace)
            print()
        if args.memory_side in (None, "web"):
            memory_web.run_web(viewers=args.idle_viewers, redis_url=args.redis, trace=not args.no_trace)
            print()
    if args.only == "storm":
        storm.run(viewers=args.storm_viewers, redis_url=args.redis or "redis://127.0.0.1:6379/15")
        print()
    print(f"bench finished in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
