"""The soak's figures and its verdict line, from the samples, the outage's times and the link's saved health."""

from __future__ import annotations

import argparse
import math

from bench.soak.health import FAILURE_COUNTERS, HealthEvent, HealthReader
from bench.soak.samples import ContactWatch, Outage, Sample, percentile, policy_bound, stretches


def report(
    args: argparse.Namespace,
    samples: list[Sample],
    outage: Outage,
    watch: ContactWatch,
    reader: HealthReader,
    base_health: dict,
    wall0: float,
    end: float,
    usage: tuple,
) -> bool:
    """Print the soak's figures and the verdict line; return whether the verdict is PASS."""
    print("\n== CXone board soak: figures ==")
    spans = stretches(samples, end)
    durations: dict[str, float] = {}
    for index, sample in enumerate(samples):
        until = samples[index + 1].t if index + 1 < len(samples) else end
        durations[sample.kind] = durations.get(sample.kind, 0.0) + (until - sample.t)
    total = sum(durations.values()) or 1.0
    live = durations.get("live", 0.0)
    others = ", ".join(f"{kind} {s:.0f} s" for kind, s in sorted(durations.items()) if kind != "live")
    print(f"samples: {len(samples)} over {end:.0f} s")
    print(
        f"live: {live:.0f} s ({live / total:.1%}); not live: {total - live:.0f} s" + (f" ({others})" if others else "")
    )

    problems: list[str] = []
    recovered: Sample | None = None
    if outage.at is None or outage.cleared is None:
        problems.append("the outage was not both made and cleared (run longer than --outage-at + --outage-seconds)")
        outage_span = (math.inf, math.inf)
    else:
        recovered = next((s for s in samples if s.t >= outage.cleared and s.live), None)
        # A stretch belongs to the outage if it overlaps [made, cleared]; the rest were outside it.
        outage_span = (outage.at, outage.cleared)
    outside = [(a, b, k) for a, b, k in spans if b <= outage_span[0] or a > outage_span[1]]
    within = [(a, b, k) for a, b, k in spans if not (b <= outage_span[0] or a > outage_span[1])]
    if outside:
        a, b, kinds = max(outside, key=lambda span: span[1] - span[0])
        print(
            f"not live outside the outage: {len(outside)} stretch(es), {sum(b - a for a, b, _ in outside):.0f} s "
            f"in all; longest {b - a:.1f} s ({kinds}) from {a:.0f} s"
        )
        for a, b, kinds in outside[:10]:
            print(f"  {a:7.1f} s - {b:7.1f} s  {b - a:5.1f} s  {kinds}")
        problems.append(f"the board was not live for {len(outside)} stretch(es) outside the outage")
    else:
        print("not live outside the outage: never (longest stretch 0 s)")

    events = reader.events(wall0)
    health = reader.health()
    if outage.cleared is not None:
        for a, b, kinds in within:
            print(f"outage stretch: {a:.1f} s - {b:.1f} s ({b - a:.1f} s, {kinds})")
        first_bad = next((s for s in samples if s.t >= outage.at and not s.live), None)
        if first_bad is not None:
            print(f"unreachable at {outage.at:.1f} s; the board showed it at {first_bad.t:.1f} s ({first_bad.kind})")
        due = _announced_due(events, outage)
        bound, coolings = policy_bound(args.outage_seconds)
        slack = args.poll_slack
        print(
            f"connector's policy: breaker opens after 3 failed calls, cools {', '.join(f'{c:.0f}' for c in coolings)}"
            f" s; a {args.outage_seconds:g} s outage can leave up to {bound:.0f} s of cooling after it ends"
        )
        if due is not None:
            allowed = max(due - outage.cleared_wall, 0.0) + slack
            print(
                "announced next try (the last wait the connector noted before the clear): "
                f"{due - outage.cleared_wall:+.1f} s from the clear"
            )
        else:
            allowed = bound + slack
            print("announced next try: none found in the health events; allowing the policy's worst case")
        if recovered is None:
            print("live again after the clear: NEVER within the run")
            problems.append("the board did not come back after the outage")
        else:
            took = recovered.t - outage.cleared
            fresh = _first_health_live(events, outage)
            also = f" (the worker's own state change to live: {fresh - outage.cleared_wall:+.1f} s)" if fresh else ""
            verdict = "within" if took <= allowed else "OVER"
            print(
                f"live again after the clear: {took:.1f} s{also}; allowed {allowed:.1f} s "
                f"(the announced wait + {slack:g} s for a poll, a publish and a sample): {verdict}"
            )
            if took > allowed:
                problems.append(f"recovery took {took:.1f} s, more than the {allowed:.1f} s its backoff allows")

    counters = health.get("counters", {})
    base = base_health.get("counters", {})
    seen = {name: counters.get(name, 0) - base.get(name, 0) for name in FAILURE_COUNTERS}
    errors = [e for e in events if e.kind == "error"]
    openings = [e for e in errors if e.data.get("breaker") == "open"]
    # Failed calls are expected from the outage's start until the board was live again, and at no other time.
    window = (outage.at_wall or math.inf, recovered.wall if recovered is not None else math.inf)
    stray = [e for e in errors if not window[0] <= e.at <= window[1]]
    print(
        "health counters over the run: "
        + ", ".join(f"{name} {value}" for name, value in seen.items())
        + f"; reconnects {health.get('reconnects', 0) - base_health.get('reconnects', 0)}"
    )
    print(
        f"health events: {len(errors)} failed calls, {len(openings)} breaker openings, "
        f"{sum(e.kind == 'resynced' for e in events)} resyncs, {sum(e.kind == 'closed' for e in events)} links closed"
        f"; failed calls outside the outage: {len(stray)}"
    )
    for event in errors[:12]:
        print(f"  {event.at - wall0:7.1f} s  {event.detail}")
    if stray:
        problems.append(f"{len(stray)} failed call(s) outside the outage")
    closed = [e for e in events if e.kind == "closed"]
    if closed:
        problems.append(f"the link was closed {len(closed)} time(s) (a failed poll should not drop it)")

    # Contacts that arrived while the board could not be live (outage, then the breaker's cooling) wait for it.
    dark = (outage.at, recovered.t) if outage.at is not None and recovered is not None else outage_span
    normal, during = watch.delays(dark)
    if normal:
        print(
            f"contact arrival to board (at {args.interval:g} s sampling), {len(normal)} contacts outside the outage: "
            f"p50 {percentile(normal, 0.5):.1f} s, p95 {percentile(normal, 0.95):.1f} s, max {max(normal):.1f} s"
        )
    if during:
        print(
            f"contacts that arrived from the outage's start until live again: {len(during)}, "
            f"on the board after up to {max(during):.1f} s"
        )
    before, after = usage
    if before and after:
        cpu = (after[0] - before[0]) / end
        print(f"demo process: {cpu:.1%} of a core on average; resident memory {before[1]:.0f} -> {after[1]:.0f} MiB")
    final = samples[-1] if samples else None
    if final is None or not final.live:
        problems.append("the board was not live at the end")
    if problems:
        print("VERDICT: FAIL - " + "; ".join(problems))
        return False
    took = f"{recovered.t - outage.cleared:.1f} s" if recovered is not None and outage.cleared is not None else "?"
    print(
        f"VERDICT: PASS - live {live / total:.1%} of {end / 60:g} min, never stale outside the outage, "
        f"live again {took} after the clear (within its backoff)"
    )
    return True


def _announced_due(events: list[HealthEvent], outage: Outage) -> float | None:
    """Return when the connector said it would call next, by the last failed call it noted before the clear."""
    before = [e for e in events if e.kind == "error" and outage.at_wall <= e.at <= outage.cleared_wall]
    if not before:
        return None
    last = before[-1]
    wait = last.data.get("retry_in")
    return last.at + wait if isinstance(wait, int | float) else None


def _first_health_live(events: list[HealthEvent], outage: Outage) -> float | None:
    """Return when the link's own state went back to live after the clear (epoch seconds), if it did."""
    for event in events:
        if event.kind == "state_changed" and event.data.get("new") == "live" and event.at >= outage.cleared_wall:
            return event.at
    return None
