"""Webhooks: what a platform posted to ``/hooks/<slug>/``, read back from the hook queue in the worker.

The web process checked each delivery and queued its new records
(``streams.hooks.intake``); this connector's one "socket" is a reader of that
queue (``streams.hooks.queue``), so the shared loop gives it reconnects and
backoff for free. There is nothing to prove alive (``liveness = SelfReported()``: the
reader raises ``LinkLost`` when the queue fails) and no REST snapshot.

Each queued item is either

- a record, mapped like every generic feed's with ``RecordFolder`` (upsert
  by interaction id, stale ones dropped, terminal types end the row); or
- an Amazon EventBridge envelope carrying a Genesys notification: the
  Genesys package reads it (``streams.vendors.genesys.eventbridge``), as
  its socket connector reads the same message, and says which agents count
  as watched without a member list from REST.

Records and figures for queues nobody watches are dropped and counted (a
record that names no queue is kept, as with the other feeds).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from streams.events import Event
from streams.feeds.mapped import MappedFeed
from streams.hooks.bodies import is_envelope
from streams.hooks.process_queue import get_hook_queue
from streams.hooks.queue import HookQueue
from streams.leases import new_owner_id
from streams.link.liveness import SelfReported
from streams.link.sockets import Link, Socket
from streams.link.timing import Timing
from streams.vendors.genesys.eventbridge import EventBridgeNotifications
from streams.vendors.genesys.queue_metrics import QueuePart
from streams.vendors.spec import ConnectionSpec

log = logging.getLogger(__name__)


class WebhookConnector(MappedFeed):
    """Apply the records (and EventBridge notifications) a platform posted to one webhook connection."""

    kind = "webhook"
    liveness = SelfReported()
    default_timing = Timing(backoff_cap=30.0)

    def __init__(self, *args: Any, queue: HookQueue | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = queue
        # Unique to this connector: a successor claims whatever it leaves pending.
        self.consumer = f"{new_owner_id()}:{self.spec.source}"
        self.items = 0  # records and envelopes handled
        self.notifications = EventBridgeNotifications(
            self.spec.source,
            self.spec.queue_ids,
            emit=self.emit,
            malformed=lambda sample: self.bad.note("malformed", sample),
            health=self.health,
        )

    # -- the link ------------------------------------------------------------------------

    async def start(self) -> None:
        """Find the process-wide hook queue unless one was given (no HTTP session, no token: nothing is dialled)."""
        if self.queue is None:
            self.queue = get_hook_queue()

    async def open_link(self) -> Link:
        """Open a reader of this source's queue: the link's one socket (``start`` found the queue)."""
        reader = self.queue.reader(self.spec.source, self.consumer)
        # An unreachable queue fails here, before the link counts as live.
        await reader.open()
        return Link(sockets=[Socket(reader, name="hook queue", expires_at=None)])

    async def apply_update(self, old: ConnectionSpec, new: ConnectionSpec) -> None:
        """Take rows of queues no longer watched off the board; the reader itself needs no change.

        Unlike a feed that is dialled, nothing is asked of the platform: no new link.
        """
        self.drop_unwatched(new)
        self.notifications.watch(new.source, new.queue_ids)

    # -- frames --------------------------------------------------------------------------

    def handle(self, socket: Socket, frame: str | bytes) -> None:
        """Apply one queued delivery: a JSON list of records and envelopes, in the order they were posted."""
        try:
            items = json.loads(frame)
        except (ValueError, RecursionError):
            self.bad.note("malformed", frame)
            return
        if not isinstance(items, list):
            self.bad.note("malformed", frame)
            return
        records: list[Any] = []
        for item in items:
            self.items += 1
            if isinstance(item, dict) and is_envelope(item):
                # Records before it go first: the order of the delivery is kept.
                self.take_records(records)
                records = []
                try:
                    self.notifications.apply(item)
                except Exception:
                    # One item that trips a bug costs that item, never the rest of the delivery.
                    self.health.count("handler_error")
                    log.exception("%s: an envelope could not be applied; the delivery goes on", self)
            else:
                records.append(item)
        self.take_records(records)

    def prepare(self, item: Event | QueuePart) -> Event:
        """Turn a Genesys queue's media part into the queue's totals, at delivery."""
        return self.notifications.prepare(item)
