"""What went wrong upstream, and what to do about it: one ``classify(exc)`` for every client.

Every client of a vendor (the link supervisor, the CXone poller and its
circuit breaker, the token fetchers) asks the same question of a failure,
and gets one of three verdicts:

- ``RETRY``: transient (network, timeouts, throttling, a 5xx, a dropped
  link): the same call may work later, after a backoff or the Retry-After
  the server sent;
- ``WAIT_FOR_CREDENTIALS``: the vendor refused the credentials or a
  permission (``AuthFailed``, a 401 or 403): retrying soon will not help, an
  admin has to act, so the wait is minutes;
- ``FATAL``: anything else (a bug, an exception nobody expected): retrying
  the same call will not change it. A poller gives up its link; the
  supervisor still starts over after its backoff, since a connection an
  admin enabled keeps trying, and a fresh link may cure what a retry of the
  same call cannot.

An upstream error says it is one by deriving from ``UpstreamError`` (status
and Retry-After on board); the classifier knows no vendor's classes. Errors
of other libraries are read by their ``status`` when they carry one.
"""

from __future__ import annotations

import enum

import aiohttp
from websockets.exceptions import WebSocketException

from streams.log_safe import safe_text


class LinkLost(Exception):
    """The link failed (closed, silent, unanswered); the loop reconnects."""


class AuthFailed(Exception):
    """The vendor refused the credentials (or a fresh token): retrying soon will not help."""


class UpstreamError(Exception):
    """A call to a vendor failed in a way a later call may not (HTTP STATUS, if any; RETRY_AFTER in seconds)."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class Verdict(enum.Enum):
    """What a client does about a failure."""

    RETRY = "retry"
    WAIT_FOR_CREDENTIALS = "wait_for_credentials"
    FATAL = "fatal"


REFUSED_STATUSES = frozenset({401, 403})
# A token endpoint refuses a grant with 400 as well (RFC 6749 §5.2: invalid_client, invalid_grant).
REFUSED_GRANT_STATUSES = REFUSED_STATUSES | {400}
TRANSIENT = (LinkLost, UpstreamError, OSError, TimeoutError, aiohttp.ClientError, WebSocketException)


def classify(exc: BaseException) -> Verdict:
    """Return what to do about EXC: retry it, wait for an admin to fix the credentials, or give up."""
    if isinstance(exc, AuthFailed) or getattr(exc, "status", None) in REFUSED_STATUSES:
        return Verdict.WAIT_FOR_CREDENTIALS
    if isinstance(exc, TRANSIENT):
        return Verdict.RETRY
    return Verdict.FATAL


def refused(status: int, *, grant: bool = False) -> bool:
    """Return whether an HTTP STATUS refuses the credentials (with GRANT: a token endpoint's answer)."""
    return status in (REFUSED_GRANT_STATUSES if grant else REFUSED_STATUSES)


def retry_after(exc: BaseException) -> float | None:
    """Return the wait (seconds) EXC says the server asked for, or None.

    Any error may carry ``retry_after``: a token endpoint's, a REST call's, a feed refusing a connection.
    """
    wait = getattr(exc, "retry_after", None)
    if isinstance(wait, int | float) and not isinstance(wait, bool) and wait > 0:
        return float(wait)
    return None


def honour_retry_after(exc: BaseException, wait: float, cap: float) -> float:
    """Return WAIT stretched to the Retry-After EXC carries, that part capped at CAP."""
    asked = retry_after(exc)
    return wait if asked is None else max(wait, min(asked, cap))


def describe(exc: BaseException) -> str:
    """Return a short description of EXC for logs and the admin (never a secret)."""
    # Exception texts quote upstream replies (error codes, close reasons): escaped, they stay one log line.
    text = safe_text(exc)
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__
