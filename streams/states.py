"""Agent states, spelled one way: the presences and routing statuses every vendor is mapped onto.

Genesys Cloud's vocabulary is the common one (a presence such as "On Queue"
or "Break", and while on queue a routing status such as "IDLE"); CXone's and
the feeds' states are mapped onto it by their parsers. Whatever spelling a
vendor uses ("OnQueue", "ON_QUEUE", "on queue"), ``presence`` folds it to the
Floor's lower snake case and ``routing_status`` to upper case, and the Floor
passes every agent value through them again, so a row never holds two
spellings of one state. ``status`` is the one status a supervisor reads.
"""

from __future__ import annotations

import re
from functools import lru_cache

# System presences (Genesys names them so; other vendors map onto them). An unknown presence is kept.
SYSTEM_PRESENCES = ("available", "on_queue", "away", "busy", "break", "meal", "meeting", "training", "offline", "idle")
# Routing statuses, meaningful while an agent is on queue.
ROUTING_STATUSES = ("OFF_QUEUE", "IDLE", "INTERACTING", "NOT_RESPONDING", "COMMUNICATING")

_PRESENCE_BY_FOLDED = {name.replace("_", ""): name for name in SYSTEM_PRESENCES}
_CAMEL_HUMP = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[\s_-]+")


@lru_cache(maxsize=1024)
def presence(value: str) -> str:
    """Return a presence in the Floor's spelling ("OnQueue", "ON_QUEUE", "on queue" → "on_queue").

    Raise ValueError for an empty one. A presence outside ``SYSTEM_PRESENCES``
    is kept in the same lower snake case ("WorkingFromHome" → "working_from_home").
    """
    text = value.strip()
    if not text:
        raise ValueError("an empty presence")
    folded = _SEPARATORS.sub("", text).lower()
    known = _PRESENCE_BY_FOLDED.get(folded)
    if known is not None:
        return known
    return _SEPARATORS.sub("_", _CAMEL_HUMP.sub("_", text)).lower()


@lru_cache(maxsize=64)
def routing_status(value: str) -> str:
    """Return a routing status in upper case ("idle" → "IDLE"); raise ValueError for an empty one."""
    text = value.strip()
    if not text:
        raise ValueError("an empty routing status")
    return _SEPARATORS.sub("_", text).upper()


def on_queue(presence_value: str | None, routing: str | None) -> bool:
    """Return whether the routing status is what a supervisor reads (on queue, or no presence told)."""
    return presence_value in (None, "on_queue") and bool(routing)


def status(presence_value: str | None, routing: str | None) -> str:
    """Return the one status a supervisor reads: the routing status when on queue, else the presence."""
    if on_queue(presence_value, routing):
        return routing.lower()  # type: ignore[union-attr]  # on_queue() saw it set
    return presence_value or "unknown"
