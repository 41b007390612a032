"""What one viewer may make the server do: how often it may speak, how many sockets it holds, how much it leaves unread.

Daphne queues every frame a client sends and writes every frame the
application sends into the connection's buffer, with no bound on either, and
an ASGI application cannot see that buffer. So the consumer bounds both ends
itself: client messages pass a token bucket (excess is dropped; a sustained
flood closes the socket), and the page acknowledges the frames it has
received, so the consumer knows how many bytes it sent that the page has not
read yet and closes a viewer that lets them pile up.

The acknowledgements are the page's word: they bound a page that stops
reading (a stuck tab), not a hostile client that acknowledges what it never
read. That one is bounded by the web server, which closes a connection whose
write buffer passes its cap (dashboard_project/webserver.py).
"""

from __future__ import annotations

import asyncio
import time
import weakref
from array import array
from collections import Counter
from collections.abc import Callable

# Open board sockets in this process, by event loop and user id (FLOORVIEW["SOCKETS_PER_USER"] bounds each).
_sockets_per_user: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Counter[int]] = weakref.WeakKeyDictionary()


def sockets_per_user() -> Counter[int]:
    """Return the open board sockets of the running event loop, by user id."""
    return _sockets_per_user.setdefault(asyncio.get_running_loop(), Counter())


class TokenBucket:
    """Allow RATE events a second on average, in bursts of up to BURST."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.tokens = burst
        self.updated = clock()

    def take(self) -> bool:
        """Spend one token and return True, or return False if none is left."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    def wait(self) -> float:
        """Return the seconds until take() can next succeed (0 if it can now)."""
        tokens = min(self.burst, self.tokens + (self.clock() - self.updated) * self.rate)
        return max(0.0, (1 - tokens) / self.rate)


class UnreadFrames:
    """Count the bytes sent to a page that it has not acknowledged yet.

    Frames are numbered from 1 in the order they are sent; the page
    acknowledges the number of frames it has received so far.

    What this protects against: a page that stops reading (a stuck or
    throttled tab, a script that never reads), whose frames would pile up in
    the server's send buffer. It takes the page's word for what it read, so a
    hostile client that sends acknowledgements without reading is *not*
    bounded here: the web server's own cap on a connection's write buffer
    (dashboard_project/webserver.py) closes that one.
    """

    def __init__(self) -> None:
        self.sent = 0  # frames
        self.sent_bytes = 0
        self.acked = 0  # frames
        self.acked_bytes = 0
        self.last_frame = 0  # size of the newest frame
        self.last_is_snapshot = False  # the newest frame is (a part of) the newest snapshot
        # The newest snapshot, all its parts: bytes sent before its first part and up to and with its last.
        self.snapshot_bytes = (0, 0)
        # Bytes sent up to and with each frame not yet acknowledged, the oldest first: they are the frames
        # numbered sent - len + 1 .. sent. Machine integers in one array: every open socket holds one, and a
        # deque of (number, bytes) tuples cost an idle viewer about 1.4 KB.
        self._ends = array("q")

    def record(self, size: int, *, snapshot: bool = False, part: bool = False) -> None:
        """Count a frame of SIZE bytes that is about to be sent.

        SNAPSHOT: it starts a board's full picture; PART: it is a later part of the newest snapshot.
        """
        if snapshot:
            self.snapshot_bytes = (self.sent_bytes, self.sent_bytes)
        self.sent += 1
        self.sent_bytes += size
        self.last_frame = size
        self.last_is_snapshot = snapshot or part
        if self.last_is_snapshot:
            self.snapshot_bytes = (self.snapshot_bytes[0], self.sent_bytes)
        self._ends.append(self.sent_bytes)

    def ack(self, frames: int) -> bool:
        """Take the page's word that it received FRAMES frames; return False if that is more than were sent."""
        if frames > self.sent:
            return False
        self.acked = max(self.acked, frames)
        newly = frames - (self.sent - len(self._ends))  # how many of the frames waiting this acknowledges
        if newly > 0:
            self.acked_bytes = self._ends[newly - 1]
            del self._ends[:newly]
        return True

    @property
    def unread(self) -> int:
        """Return the bytes sent but not acknowledged."""
        return self.sent_bytes - self.acked_bytes

    def over(self, cap: int) -> bool:
        """Return whether the unread bytes, the newest frame and the newest unacknowledged snapshot aside, pass CAP.

        The newest snapshot is left out until the page acknowledges it, so that
        a board whose snapshot is larger than the cap never closes a page that
        reads: the page acknowledges after a few frames, and the deltas that
        follow the snapshot meanwhile must not count it against the page. A
        snapshot sent in parts is left out whole, each part until the page
        acknowledges it. So a page that never acknowledges may be sent at most
        the cap, its newest snapshot and its newest frame.
        """
        start, end = self.snapshot_bytes
        # The snapshot's parts the page has not acknowledged yet (all of them, or those after its last ack).
        exempt = max(0, end - max(start, self.acked_bytes))
        if not self.last_is_snapshot:
            exempt += self.last_frame
        return self.unread - exempt > cap
