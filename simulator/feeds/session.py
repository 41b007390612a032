"""What a push session and an SSE session share: an outgoing queue, stalls, and a hard cut."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

MAX_PENDING = 50_000  # items queued for a client that does not read: past this it is cut off


def token_tag(token: str) -> str:
    """Return a short, stable tag of TOKEN for logs and tests (never the token)."""
    return hashlib.sha256(token.encode()).hexdigest()[:12]


class FeedSession:
    """One client of a feed: items queued for its writer, which a stall holds back."""

    def __init__(self, transport: asyncio.Transport | None, token: str) -> None:
        self.transport = transport
        self.token = token
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.flowing = asyncio.Event()  # clear while stalled
        self.flowing.set()
        self.finished = asyncio.Event()  # set when the handler is done
        self.closing = False
        self._unstall_handle: asyncio.TimerHandle | None = None

    def put(self, item: Any) -> None:
        """Queue ITEM for the writer; a client far behind is cut off rather than grown without bound."""
        if self.closing:
            return
        if self.queue.qsize() >= MAX_PENDING:
            self.abort()
            return
        self.queue.put_nowait(item)

    def stall(self, seconds: float | None) -> None:
        """Write nothing (not even keepalives or pongs) for SECONDS, or until ``unstall``."""
        self.flowing.clear()
        if self._unstall_handle is not None:
            self._unstall_handle.cancel()
            self._unstall_handle = None
        if seconds is not None:
            self._unstall_handle = asyncio.get_running_loop().call_later(seconds, self.unstall)

    def unstall(self) -> None:
        """End a stall: what was held back goes out."""
        self.flowing.set()

    def stalled(self) -> bool:
        """Return whether the session is stalled just now."""
        return not self.flowing.is_set()

    def abort(self) -> None:
        """Cut the connection without a goodbye."""
        self.closing = True
        if self.transport is not None:
            self.transport.abort()
        # Wake a writer waiting for work or for a stall to end, so the handler returns.
        self.queue.put_nowait(None)
        self.flowing.set()
