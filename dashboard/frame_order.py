"""Where one viewer stands in its board's sequence of messages: the one place ordering is checked.

Every board message carries the worker's ``epoch`` (one per worker run) and
a ``seq`` that grows by one per delta; a tick repeats the seq of the last
delta. The consumer checks each message against what its viewer's page
shows, and only here: the page itself trusts the frames it is sent.

Why here and not in the browser:

- Messages are lost only on their way to the consumer: the channel layer
  drops messages to a channel that is full and everything sent while Redis
  restarts. The socket from the consumer to the page is one ordered,
  reliable stream that ends rather than skip a frame, and every new socket
  starts with a snapshot, so a page never meets a gap the consumer did not.
- The consumer must follow the sequence anyway: what it sends a viewer
  depends on the rows that viewer's page holds (a row is replaced, appended
  or deleted), so it may apply only the deltas that follow its last
  snapshot, and must drop those the snapshot already covers. A check in the
  page could not keep that picture true.
- Here a gap costs no round trip: the consumer reads the snapshot itself,
  once for all the viewer's waiting messages, and ignores an old worker's
  last flushes for a while instead of resyncing on each of them.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable

# How long messages of a superseded epoch are ignored. Long enough to swallow an old worker's
# last flushes; short enough that an epoch that really returns is picked up again.
RETIRE_EPOCH_FOR = 10.0


class Next(enum.Enum):
    """What to do with a board message, given where the viewer stands."""

    SEND = "send"  # it follows what the page shows: frame it and send it
    SKIP = "skip"  # already covered, a duplicate, malformed, or from a retired epoch
    RESYNC = "resync"  # a message was lost or the worker changed: send the whole picture instead


class FrameOrder:
    """The epoch and seq of what one viewer's page shows, and the epochs it has left behind."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.epoch: str | None = None
        self.seq = 0
        self.clock = clock
        self._retired: dict[str, float] = {}  # epoch → until when its messages are ignored

    def start(self, epoch: str | None, seq: int) -> None:
        """Note that the page was sent a snapshot at EPOCH and SEQ (None: the worker wrote nothing yet)."""
        if self.epoch is not None and epoch != self.epoch:
            self.retire(self.epoch)
        self.epoch, self.seq = epoch, seq

    def delta(self, epoch: object, seq: object) -> Next:
        """Place a delta; on SEND the page is taken to show it from now on."""
        if not self._valid(epoch, seq):
            return Next.SKIP
        if epoch == self.epoch and seq <= self.seq:
            return Next.SKIP  # Already covered by the snapshot (or a duplicate).
        if epoch != self.epoch or seq != self.seq + 1:
            return Next.RESYNC
        self.seq = seq
        return Next.SEND

    def tick(self, epoch: object, seq: object) -> Next:
        """Place a tick: one ahead of the page means a delta was lost; one behind is old news."""
        if not self._valid(epoch, seq):
            return Next.SKIP
        if epoch != self.epoch or seq > self.seq:
            return Next.RESYNC
        return Next.SEND if seq == self.seq else Next.SKIP

    def retire(self, epoch: str) -> None:
        """Ignore EPOCH's messages for a while (the store has moved past it: an old worker still flushing)."""
        now = self.clock()
        self._retired = {e: until for e, until in self._retired.items() if until > now}
        self._retired[epoch] = now + RETIRE_EPOCH_FOR

    def _valid(self, epoch: object, seq: object) -> bool:
        if not isinstance(epoch, str) or not isinstance(seq, int) or isinstance(seq, bool):
            return False
        until = self._retired.get(epoch)
        return until is None or until <= self.clock()
