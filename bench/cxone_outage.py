"""Soak: the demo's CXone board stays live for a long run, through a simulated outage, and recovers within its backoff.

``make soak-cxone`` or ``.venv/bin/python bench/cxone_outage.py [--minutes 30] [--outage-at 300]`` from the
repository root. A benchmark script, not a test: it prints figures and a verdict line, and exits 1 when the
verdict is FAIL (2 when the run itself could not be carried out).

It starts the real demo (``manage.py demo``: simulator, worker and Daphne in one process) on free 127.0.0.1
ports with a throwaway SQLite database in a temporary directory, in a process group of its own, signs in
through the admin's login form, and then, every ``--interval`` seconds until ``--minutes`` have passed:

- reads the simulator's truth (``/simulator/truth``) and then the CXone board's JSON (``/api/boards/cxone/``):
  health, data age and the ``stale`` flag, rows per kind;
- compares the board's interactions with the truth's live contacts (CXone names a contact by its number): a
  contact live in the truth for longer than ``--lag-tolerance`` that the board does not show, or one the board
  still shows that left the truth that long ago, means the board is behind, whatever its health says;
- reads the CXone connection's health as the worker saves it (counters, state changes and errors with the
  wait the connector announced) from the demo's own database, read-only.

At ``--outage-at`` seconds it makes the simulator unreachable (the ``unreachable`` fault, i.e. the server's
``go_unreachable``: every connection to it is cut; its control endpoint stays up) and clears it
``--outage-seconds`` later (the ``clear`` fault). Everything it talks to is on 127.0.0.1, every wait is
bounded, and it ends only the demo it started: its process group, by the id it was given.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    # Run as a script from the repository root: the policy figures come from the production code itself.
    sys.path.insert(0, str(ROOT))

from bench.soak.demo import BOARD_SLUG, STARTUP_TIMEOUT, Client, Demo, RunFailed  # noqa: E402
from bench.soak.health import FAILURE_COUNTERS, HEALTH_SAVE_WAIT, HealthReader  # noqa: E402
from bench.soak.report import report  # noqa: E402
from bench.soak.samples import ContactWatch, Outage, Sample, take_sample  # noqa: E402


def soak(args: argparse.Namespace, demo: Demo) -> bool:
    """Run the soak against a started DEMO and print its figures; return whether the verdict is PASS."""
    client = Client(demo)
    reader = HealthReader(demo.database)
    client.login()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    board: dict = {}
    while not (board.get("health", {}).get("state") == "live" and not board["stale"] and board["agents"]):
        demo.check_alive()
        if time.monotonic() > deadline:
            raise RunFailed(f"the CXone board was not live within {STARTUP_TIMEOUT:.0f} s: {board.get('health')}")
        time.sleep(0.5)
        with contextlib.suppress(OSError, ValueError):
            board = client.board()
    base_usage = demo.usage()
    wall0, t0 = time.time(), time.monotonic()
    watch = ContactWatch(args.lag_tolerance)
    base_health = reader.health()
    print(
        f"board {BOARD_SLUG!r} live: {len(board['queues'])} queues, {len(board['agents'])} agents, "
        f"{len(board['interactions'])} interactions; soaking for {args.minutes:g} min, sampling every "
        f"{args.interval:g} s; outage ({args.outage_seconds:g} s unreachable) at {args.outage_at:g} s",
        flush=True,
    )
    samples: list[Sample] = []
    outage = Outage()
    end = args.minutes * 60.0
    next_report = 60.0
    last_kind = "live"
    while (now := time.monotonic() - t0) < end:
        demo.check_alive()
        if outage.at is None and now >= args.outage_at:
            client.control({"fault": "unreachable"})
            outage.at, outage.at_wall = time.monotonic() - t0, time.time()
            print(f"[{outage.at:7.1f} s] simulator unreachable", flush=True)
        elif outage.at is not None and outage.cleared is None and now >= outage.at + args.outage_seconds:
            client.control({"fault": "clear"})
            outage.cleared, outage.cleared_wall = time.monotonic() - t0, time.time()
            print(f"[{outage.cleared:7.1f} s] outage cleared", flush=True)
        sample = take_sample(client, watch, t0)
        samples.append(sample)
        if sample.kind != last_kind:
            why = f" ({sample.detail})" if sample.detail else ""
            print(f"[{sample.t:7.1f} s] board {last_kind} -> {sample.kind}{why}", flush=True)
            last_kind = sample.kind
        if sample.t >= next_report:
            next_report += 60.0
            counters = reader.health().get("counters", {})
            shown = ", ".join(f"{name} {counters.get(name, 0)}" for name in FAILURE_COUNTERS)
            print(f"[{sample.t:7.1f} s] {sample.kind}; rows {sample.rows}; health counters: {shown}", flush=True)
        # Sleep to the next tick, never past the end.
        tick = args.interval - (time.monotonic() - t0 - now)
        time.sleep(max(0.0, min(tick, end - (time.monotonic() - t0))))
    time.sleep(HEALTH_SAVE_WAIT)
    return report(args, samples, outage, watch, reader, base_health, wall0, end, (base_usage, demo.usage()))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Return the command line's options."""
    parser = argparse.ArgumentParser(description="Soak the demo's CXone board through a simulated outage.")
    parser.add_argument("--minutes", type=float, default=30.0, help="How long to soak (default 30).")
    parser.add_argument("--outage-at", type=float, default=300.0, help="Seconds in when the outage starts (300).")
    parser.add_argument("--outage-seconds", type=float, default=40.0, help="How long it lasts (default 40).")
    parser.add_argument("--interval", type=float, default=2.0, help="Seconds between samples (default 2).")
    parser.add_argument(
        "--lag-tolerance",
        type=float,
        default=10.0,
        help="Seconds a contact may be live in the truth (or gone from it) before the board must agree (10).",
    )
    parser.add_argument(
        "--poll-slack",
        type=float,
        default=8.0,
        help="Seconds allowed past the announced wait for a poll, a publish and a sample (default 8).",
    )
    parser.add_argument("--agents", type=int, default=30, help="Simulated agents (default 30, as the demo).")
    parser.add_argument("--queues", type=int, default=5, help="Simulated queues (default 5, as the demo).")
    parser.add_argument("--rate", type=float, default=0.8, help="Contacts per second (default 0.8, as the demo).")
    parser.add_argument("--keep", metavar="DIR", help="Keep the demo's log and database in DIR (created if need be).")
    args = parser.parse_args(argv)
    if not 0 < args.minutes <= 24 * 60 or not 0.5 <= args.interval <= 60:
        parser.error("--minutes must be in (0, 1440], --interval in [0.5, 60]")
    if not 0 < args.outage_seconds <= 3600 or args.outage_at < 0 or args.lag_tolerance <= 0:
        parser.error("--outage-seconds must be in (0, 3600], --outage-at and --lag-tolerance positive")
    return args


def _exit_on_signal(number: int, frame: object) -> None:
    raise SystemExit(128 + number)


def main(argv: list[str] | None = None) -> int:
    """Start the demo, soak its CXone board, stop the demo (whatever happens); return the exit status."""
    args = parse_args(argv)
    # The demo runs in a session of its own, so it would outlive a bench ended by a signal: turn the usual ones
    # into an exit, which runs the ``finally`` below that stops it.
    for number in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, _exit_on_signal)
    with contextlib.ExitStack() as stack:
        if args.keep:
            workdir = Path(args.keep)
            workdir.mkdir(parents=True, exist_ok=True)
        else:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="floorview-soak-")))
        demo = Demo(workdir, agents=args.agents, queues=args.queues, rate=args.rate)
        print(f"== CXone board soak: demo on 127.0.0.1 ({args.agents} agents, {args.queues} queues) ==", flush=True)
        passed = False
        try:
            demo.start()
            passed = soak(args, demo)
        except (RunFailed, OSError, ValueError, KeyError) as exc:
            print(f"the soak could not run: {exc}", file=sys.stderr)
            return 2
        finally:
            code = demo.stop()
            if code not in (0, None):
                print(f"the demo exited with {code}; its log's end:\n{demo.tail()}", file=sys.stderr)
            if "Traceback" in (demo.output() if demo.log_path.exists() else ""):
                print(f"the demo logged a traceback:\n{demo.tail(60)}", file=sys.stderr)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
