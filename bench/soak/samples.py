"""The board's samples and what they add up to: one look at the board against the simulator's truth
(``take_sample``), the contacts' arrivals (``ContactWatch``), the outage's times, the stretches the board was
not live, and the connector's backoff policy as the production code sets it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from bench.soak.demo import Client


@dataclass
class Sample:
    """One look at the board, at T seconds into the soak (and WALL, epoch seconds)."""

    t: float
    wall: float
    state: str  # the board's health state ("live", "degraded", ...), or "no answer"
    stale: bool
    age: float | None
    rows: dict[str, int]
    behind: int  # contacts live in the truth for longer than the tolerance that the board does not show
    ghosts: int  # contacts the board shows that left the truth longer than the tolerance ago
    detail: str = ""

    @property
    def live(self) -> bool:
        """Return whether the board was live: healthy, fresh, and in step with the truth."""
        return self.state == "live" and not self.stale and self.behind == 0 and self.ghosts == 0

    @property
    def kind(self) -> str:
        """Return what the sample was: live, or why not (one word, the worst reason first)."""
        if self.state == "no answer":
            return "no answer"
        if self.stale:
            return "stale"
        if self.state != "live":
            return self.state
        return "behind" if self.behind or self.ghosts else "live"


@dataclass
class ContactWatch:
    """When each contact (by its CXone number) was first and last seen in the truth, and first on the board."""

    tolerance: float
    in_truth_first: dict[str, float] = field(default_factory=dict)
    in_truth_last: dict[str, float] = field(default_factory=dict)
    on_board_first: dict[str, float] = field(default_factory=dict)
    first_look: float | None = None

    def look(self, t: float, truth: dict, shown: set[str]) -> tuple[int, int]:
        """Note the truth's contacts and the board's (SHOWN) at T; return how many the board misses and keeps."""
        if self.first_look is None:
            self.first_look = t
        live = {str(contact["number"]) for contact in truth.get("interactions", {}).values()}
        for number in live:
            self.in_truth_first.setdefault(number, t)
            self.in_truth_last[number] = t
        for number in shown:
            self.on_board_first.setdefault(number, t)
        behind = sum(1 for n in live - shown if t - self.in_truth_first[n] > self.tolerance)
        # A contact never seen in the truth came and went between two looks (or before the first): count it
        # gone since the board first showed it.
        ghosts = sum(1 for n in shown - live if t - self.in_truth_last.get(n, self.on_board_first[n]) > self.tolerance)
        return behind, ghosts

    def delays(self, outside: tuple[float, float]) -> tuple[list[float], list[float]]:
        """Return truth-to-board delays (s) of contacts that arrived outside the window OUTSIDE, and inside it."""
        normal, during = [], []
        for number, seen in self.on_board_first.items():
            first = self.in_truth_first.get(number)
            if first is None or first == self.first_look:
                continue  # live at the first look: its arrival was not seen
            (during if outside[0] <= first <= outside[1] else normal).append(max(seen - first, 0.0))
        return normal, during


def percentile(values: list[float], q: float) -> float:
    """Return the nearest-rank Q-quantile of VALUES (0 < Q <= 1)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def policy_bound(outage: float) -> tuple[float, list[float]]:
    """Return the longest cooling the connector's policy may still have to run when an OUTAGE-second outage ends,
    and the breaker's cooling periods up to it, from the production code's own settings.

    However late the breaker opens, its probes cannot fall inside the outage more often than when it opens
    on the outage's first moment; so the cooling in force at the end is at most the first one that, counted
    from the start, outlasts the outage (when a probe fails just before the end, all of it is still to run).
    """
    from streams.health import LinkHealth
    from streams.vendors.cxone.connector import CxoneConnector
    from streams.vendors.cxone.poller import BREAKER_THRESHOLD, Pacing

    # The breaker as the connector builds it; its coolings do not depend on its clock, so no time need pass.
    pacing = Pacing("policy", timing=CxoneConnector.default_timing, health=LinkHealth(), set_state=lambda *a: None)
    for _ in range(BREAKER_THRESHOLD - 1):
        pacing.breaker.failure(None, 0.0)
    coolings: list[float] = []
    while sum(coolings) < outage and len(coolings) < 50:
        coolings.append(pacing.breaker.failure(None, 0.0)[0])
    return coolings[-1], coolings


@dataclass
class Outage:
    """When the outage was made and cleared (T seconds into the soak, and epoch seconds)."""

    at: float | None = None
    at_wall: float | None = None
    cleared: float | None = None
    cleared_wall: float | None = None


def stretches(samples: list[Sample], end: float) -> list[tuple[float, float, str]]:
    """Return the spans (start, end, kinds seen) during which the board was not live; a sample holds until the next."""
    spans: list[tuple[float, float, str]] = []
    start: float | None = None
    kinds: list[str] = []
    for index, sample in enumerate(samples):
        until = samples[index + 1].t if index + 1 < len(samples) else end
        if sample.live:
            if start is not None:
                spans.append((start, sample.t, ",".join(dict.fromkeys(kinds))))
                start, kinds = None, []
            continue
        if start is None:
            start = sample.t
        kinds.append(sample.kind)
        if index + 1 == len(samples):
            spans.append((start, until, ",".join(dict.fromkeys(kinds))))
    return spans


def take_sample(client: Client, watch: ContactWatch, t0: float) -> Sample:
    """Read the truth, then the board (so the board had at least as long as the truth), and compare them."""
    t, wall = time.monotonic() - t0, time.time()
    try:
        truth: dict | None = client.truth()
    except (OSError, ValueError):
        truth = None  # the simulator's control side did not answer: judge the board by its own word this once
    try:
        board = client.board()
    except (OSError, ValueError) as exc:
        # The web server did not answer: the board is not live to anyone.
        return Sample(t, wall, "no answer", True, None, {}, 0, 0, detail=type(exc).__name__)
    shown = {row["interaction_id"] for row in board["interactions"]}
    behind, ghosts = watch.look(t, truth, shown) if truth is not None else (0, 0)
    health = board["health"]
    detail = health.get("detail", "")
    if behind or ghosts:
        detail = f"{behind} contacts missing, {ghosts} ended ones shown" + (f"; {detail}" if detail else "")
    rows = {kind: len(board[kind]) for kind in ("queues", "agents", "interactions")}
    state = health.get("state", "unknown")
    return Sample(t, wall, state, bool(board["stale"]), board.get("age_seconds"), rows, behind, ghosts, detail)
