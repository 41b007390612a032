"""Which webhook connection a slug names: what the view needs of it, cached briefly, and the decoy for unknown slugs.

A slug that names no enabled webhook connection gets a stand-in whose secret
nobody knows, so that its deliveries go through the same steps and get the
same answer (401) as badly signed ones to a known slug.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from asgiref.sync import sync_to_async
from django.conf import settings

from streams.crypto import SecretUnreadable
from streams.feeds.mapping import FieldMapping

log = logging.getLogger(__name__)

LOOKUP_TTL = 2.0  # seconds a slug's connection is cached: a disabled one is refused this soon
LOOKUP_MAX = 1000  # slugs cached (unknown ones too, so a flood of made-up slugs spares the database)
# The secret of the stand-in for unknown slugs: random per process, never stored, so nothing signs for it.
_DECOY_SECRET = secrets.token_hex(32)


@dataclass(frozen=True)
class HookTarget:
    """What the view needs of one enabled webhook connection."""

    source: str
    slug: str
    secret: str = field(repr=False)
    max_bytes: int
    mapping: FieldMapping
    known: bool = True  # False for the stand-in answering for a slug that names no connection


def decoy_target(slug: str) -> HookTarget:
    """Return the stand-in for SLUG, which names no enabled webhook connection: every delivery gets 401."""
    return HookTarget("", slug, _DECOY_SECRET, settings.FLOORVIEW["WEBHOOK_MAX_BODY"], FieldMapping(), known=False)


def _load_target(slug: str) -> HookTarget | None:
    from streams.models import Connection

    connection = Connection.objects.filter(settings__slug=slug, kind="webhook", enabled=True).first()
    if connection is None:
        return None
    try:
        secret = connection.secret("webhook_secret")
    except SecretUnreadable:
        # Every delivery is refused (401) until an admin sets the secret again.
        log.error("webhook %s: the stored secret cannot be decrypted; refusing deliveries", slug)
        secret = ""
    hook = connection.vendor().settings.from_values(connection.settings)
    return HookTarget(connection.source_key, slug, secret, hook.max_frame_bytes, hook.mapping())


class HookTargets:
    """Slug → connection, cached for ``ttl`` seconds (unknown slugs too), safe from any thread."""

    def __init__(
        self, *, ttl: float = LOOKUP_TTL, max_entries: int = LOOKUP_MAX, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self.loads = 0  # database lookups made (tests count them)
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, tuple[float, HookTarget | None]] = OrderedDict()

    async def get(self, slug: str) -> HookTarget | None:
        """Return the enabled webhook connection at SLUG, or None."""
        now = self.clock()
        with self._lock:
            cached = self._cache.get(slug)
            if cached is not None and cached[0] > now:
                return cached[1]
        target = await sync_to_async(_load_target)(slug)
        with self._lock:
            self.loads += 1
            self._cache[slug] = (self.clock() + self.ttl, target)
            self._cache.move_to_end(slug)
            while len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)
        return target

    def clear(self) -> None:
        """Forget every cached lookup."""
        with self._lock:
            self._cache.clear()


hook_targets = HookTargets()
