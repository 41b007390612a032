"""The process-wide hook queue: Redis when ``REDIS_URL`` is set, else in this process's memory."""

from __future__ import annotations

import threading

from django.conf import settings

from streams.hooks.memory_queue import MemoryHookQueue
from streams.hooks.queue import DEFAULT_BACKLOG, HookQueue
from streams.hooks.redis_queue import RedisHookQueue

_queue: HookQueue | None = None
_queue_lock = threading.Lock()


def get_hook_queue() -> HookQueue:
    """Return the process-wide queue: Redis when REDIS_URL is set, else in-process."""
    global _queue
    with _queue_lock:
        if _queue is None:
            backlog = int(settings.FLOORVIEW.get("WEBHOOK_BACKLOG", DEFAULT_BACKLOG))
            if settings.REDIS_URL:
                _queue = RedisHookQueue(settings.REDIS_URL, prefix=settings.REDIS_PREFIX, backlog=backlog)
            else:
                _queue = MemoryHookQueue(backlog=backlog)
        return _queue


def reset_hook_queue() -> None:
    """Forget the process-wide queue (tests switch settings)."""
    global _queue
    with _queue_lock:
        _queue = None
