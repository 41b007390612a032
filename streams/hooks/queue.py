"""The hand-off from web processes (the webhook view) to the worker (the webhook connector): the interface.

A webhook delivery is checked in the web process and answered at once; its
records are applied later, in whichever worker streams the source. Between
the two sits a queue per source, which also remembers the record ids it saw
in the last hour, so a platform's retries are acknowledged and ignored.
Two stores keep it: Redis Streams in production (``redis_queue``) and this
process's memory in the embedded mode (``memory_queue``);
``process_queue`` picks the one the settings ask for.

A full or unreachable queue raises ``HookQueueFull`` / ``HookQueueUnavailable``:
the view answers 503 with Retry-After and the platform sends it again.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

SEEN_TTL = 3600  # seconds a record id is remembered (the platform's retry horizon)
DEFAULT_BACKLOG = 10_000  # deliveries waiting per source before new ones are refused
RETRY_AFTER = 5  # seconds the platform is asked to wait when the queue cannot take a delivery
MAX_KEY = 200  # longer record ids are remembered by their hash


@dataclass(frozen=True)
class HookItem:
    """One record (or EventBridge envelope) of a delivery: its JSON text and its idempotency key."""

    text: str
    key: str | None = None  # the record's id; None: never taken for a duplicate


class Offered(NamedTuple):
    """What the queue did with a delivery."""

    queued: int  # items added
    duplicates: int  # items whose id was seen in the last hour


class HookQueueError(Exception):
    """The queue cannot take a delivery now; the platform should send it again later."""

    retry_after = RETRY_AFTER


class HookQueueFull(HookQueueError):
    """The source's backlog is full (the worker is behind or not running)."""


class HookQueueUnavailable(HookQueueError):
    """The queue's store (Redis) cannot be reached."""


def seen_key(record_id: str) -> str:
    """Return how a record id is remembered: itself, or its hash when it is long or not plain printable ASCII."""
    if len(record_id) <= MAX_KEY and record_id.isascii() and record_id.isprintable():
        return record_id
    return "sha256:" + hashlib.sha256(record_id.encode("utf-8", "surrogatepass")).hexdigest()


def batch_text(texts: Iterable[str]) -> bytes:
    """Return JSON texts as the UTF-8 text of one JSON list (what the reader hands the connector)."""
    return ("[" + ",".join(texts) + "]").encode("utf-8", "surrogatepass")


class HookQueue(ABC):
    """A queue per source of accepted webhook records, with the ids seen in the last hour."""

    @abstractmethod
    async def offer(self, source: str, items: list[HookItem]) -> Offered:
        """Queue ITEMS for SOURCE, leaving out those whose key was seen in the last hour.

        Raise ``HookQueueFull`` or ``HookQueueUnavailable``, having marked and queued nothing,
        when the delivery cannot be taken.
        """

    @abstractmethod
    def reader(self, source: str, consumer: str) -> HookReader:
        """Return a reader of SOURCE's queue for CONSUMER (a name unique to the reading connector)."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections."""


class HookReader(ABC):
    """The ``Wire`` a webhook connector reads: one frame per queued delivery (a JSON list, as bytes).

    A frame counts as handled when the next one is asked for (the connector's loop
    handles each frame before it asks again); only then is it acknowledged.
    """

    close_code: int | None = None
    close_reason: str | None = None

    def __aiter__(self) -> HookReader:
        return self

    async def open(self) -> None:
        """Make sure the queue can be read; raise ``LinkLost`` if it cannot (default: nothing to check)."""
        return

    @abstractmethod
    async def __anext__(self) -> bytes:
        """Return the next delivery, waiting for one; raise ``LinkLost`` when the queue fails."""

    @abstractmethod
    async def close(self) -> None:
        """Stop reading; what was handled is acknowledged, the rest stays queued."""
