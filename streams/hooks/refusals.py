"""A refused webhook delivery, and the throttled log of refusals (a flood of forged posts stays a trickle)."""

from __future__ import annotations

import logging

from streams.hooks.targets import LOOKUP_MAX, HookTarget
from streams.log_throttle import ThrottledLog

log = logging.getLogger(__name__)

REFUSAL_LOG_EVERY = 10.0  # seconds between log lines for the same slug and reason


class Refused(Exception):
    """A delivery refused with STATUS and a reason for the platform (never a secret)."""

    def __init__(self, status: int, reason: str, *, retry_after: int | None = None, log_reason: str = "") -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.retry_after = retry_after
        self.log_reason = log_reason or reason  # for our log only: it may say more than the platform should hear


refusal_log = ThrottledLog(log, REFUSAL_LOG_EVERY, max_keys=LOOKUP_MAX)


def log_refusal(target: HookTarget, refused: Refused) -> None:
    """Log a refusal, at most once per REFUSAL_LOG_EVERY for a slug and status (a flood stays a trickle)."""
    if not target.known:
        # Made-up slugs share one line: a scan of many slugs must not become a line per slug.
        refusal_log.log(("unknown", refused.status), logging.INFO, "webhook: refused a delivery to an unknown slug")
        return
    level = logging.WARNING if refused.log_reason != refused.reason else logging.INFO
    refusal_log.log(
        (target.slug, refused.status),
        level,
        "webhook %s: refused a delivery with %d (%s)",
        target.slug,
        refused.status,
        refused.log_reason,
    )
