"""The generic WebSocket push feed (``docs/protocols/generic.md``, push): JSON or MessagePack records.

The worker dials ``spec.settings.stream_url`` with ``Authorization: Bearer <token>`` on
the upgrade request when a token URL is configured (client-credentials grant;
a 401 on the upgrade gets one new token, a second 401 is an auth failure).
Liveness is RFC 6455: a ping every 20 s, and no pong within 20 s fails the
link. Reconnects back off with jitter (first delay random, capped at 30 s by
default, starting over only after a link stayed healthy for a minute).

Frames are decoded by ``feed_decode`` and their records mapped by the admin's
field mapping (``RecordFolder``): records upsert one row per interaction id,
terminal types end it, records of unwatched queues are dropped. Bad frames
are counted and dropped, never fatal.

After a reconnect: the push protocol has no replay, and nothing marks where
the picture a feed may restate on connect ends. So the connector cannot tell
which interactions ended while it was away, and does not guess: rows restated
after the reconnect are updated (older records are dropped as stale), and rows
never mentioned again are left to the Floor's interaction TTL. Removing rows
"not restated yet" would blank live interactions of any feed that restates
slowly or not at all.
"""

from __future__ import annotations

from typing import Any

from websockets.exceptions import InvalidStatus

from streams.feeds.decode import FrameError, decode_frame
from streams.feeds.mapped import FeedRefused, MappedFeed
from streams.link.liveness import ProtocolPings
from streams.link.sockets import Link, Socket
from streams.link.timing import Timing
from streams.retry_after import parse_retry_after

# websockets holds a whole message in memory before handing it over, so its max_size is the hard memory
# cap: a message past it closes the connection with 1009 (counted, then a reconnect). The admin's size
# limit sits well below it: a frame between the two is read, refused without being decoded, counted and
# dropped, and the link stays up. One odd large frame must not cost a reconnect; a runaway one must not
# cost the worker its memory.
MEMORY_CAP_FACTOR = 4


class PushConnector(MappedFeed):
    """Stream one generic WebSocket push feed."""

    kind = "push"
    liveness = ProtocolPings()
    default_timing = Timing(
        # Pongs are the only liveness signal: ping_timeout fails a silent link; a pong missing for
        # heartbeat_period shows the link degraded meanwhile.
        heartbeat_period=30.0,
        dead_after=2.0,
        ping_interval=20.0,
        ping_timeout=20.0,
        open_timeout=15.0,
        rest_timeout=30.0,
        backoff_first=1.0,
        backoff_min=2.0,
        backoff_factor=1.6,
        backoff_cap=30.0,
        healthy_after=60.0,
    )

    def memory_cap(self) -> int:
        """Return websockets' max_size: the largest message held in memory before the link is cut."""
        return self.spec.settings.max_frame_bytes * MEMORY_CAP_FACTOR

    async def open_link(self) -> Link:
        """Dial the feed (with the bearer token on the upgrade request)."""

        async def dial(headers: dict[str, str]) -> Socket:
            try:
                return await self.connect_socket(
                    self.spec.settings.stream_url,
                    name="push",
                    expires_at=None,
                    headers=headers,
                    max_size=self.memory_cap(),
                )
            except InvalidStatus as exc:
                response = exc.response
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                raise FeedRefused(response.status_code, retry_after) from None

        return Link(sockets=[await self.authorised(dial)])

    def handle(self, socket: Socket, frame: Any) -> None:
        """Decode one frame and map its records; a bad frame is counted and dropped."""
        try:
            records = decode_frame(frame, self.spec.settings.max_frame_bytes)
        except FrameError as exc:
            # An oversized frame is not sampled: what the limit was is worth a log line, its bytes are not.
            self.bad.note(exc.kind, str(exc) if exc.kind == "oversized_frame" else frame)
            return
        self.take_records(records)
