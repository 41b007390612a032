"""What a board says of its sources: how fresh its data is, and the worst of their link states.

The states are the worker's link states (streams.health); their order, worst
first, and their labels are the board protocol's (dashboard.protocol).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from dashboard.protocol import HEALTH_WORST_FIRST
from streams.health import LinkHealth, scrub


def _rank(state: str) -> int:
    return HEALTH_WORST_FIRST.index(state if state in HEALTH_WORST_FIRST else "unknown")


def board_status(
    sources: Iterable[str],
    disabled_sources: Iterable[str],
    health_of: Callable[[str], LinkHealth | None],
    now: float,
) -> tuple[float | None, dict]:
    """Return when the board's data was last confirmed live, and its upstream health.

    The health holds the worst state among the board's sources, a detail a supervisor can act on
    (the worst source's own, scrubbed of addresses and tokens), and each source's state.
    """
    disabled = set(disabled_sources)
    live_at: float | None = now
    worst, worst_detail = "live", ""
    states = {}
    for source in sorted(set(sources) | disabled):
        if source in disabled:
            state, seen, detail = "disabled", None, "the connection is disabled in the admin"
        elif (health := health_of(source)) is None:
            state, seen, detail = "unknown", None, "no worker holds this source yet"
        else:
            state = health.state
            seen = now if health.is_live() else health.last_message_at
            detail = health.detail
        states[source] = state
        if _rank(state) < _rank(worst):
            worst, worst_detail = state, detail
        live_at = None if seen is None or live_at is None else min(live_at, seen)
    if not states:
        live_at = now
    affected = sum(state != "live" for state in states.values())
    if worst != "live" and len(states) > 1:
        worst_detail = f"{affected} of {len(states)} sources affected" + (f"; {worst_detail}" if worst_detail else "")
    return live_at, {"state": worst, "detail": scrub(worst_detail, 160), "sources": states}
