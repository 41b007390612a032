"""Every period and limit the link supervisor uses, in one place tests can shrink."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Timing:
    """Every period and limit the loop uses (seconds); tests shrink them."""

    heartbeat_period: float = 30.0  # how often the vendor promises a heartbeat
    dead_after: float = 2.0  # heartbeat periods without heartbeat or pong before the link counts as dead
    ping_interval: float = 10.0
    ping_timeout: float = 5.0
    open_timeout: float = 15.0  # connect every socket and hear from each
    rest_timeout: float = 30.0
    rollover_margin: float = 600.0  # replace channels this long before they expire
    backoff_first: float = 1.0
    backoff_min: float = 2.0
    backoff_factor: float = 1.6
    backoff_cap: float = 60.0
    healthy_after: float = 60.0  # a link must stay up this long before the backoff starts over
    auth_retry: float = 300.0  # wait after an auth failure: an admin has to act
    max_retry_after: float = 180.0
    default_retry_after: float = 3.0
