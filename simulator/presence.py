"""Genesys system presences and how each is spelled where.

Genesys writes the same presence three ways: mixed case over REST
(``OnQueue``), upper snake case on the notification socket (``ON_QUEUE``), and
the Floor uses lower snake case (``on_queue``). Presence definition ids are
UUIDs; the simulator derives stable ones from the name so they never change
between runs.
"""

from __future__ import annotations

import uuid

# The Floor's spelling, in the order Genesys lists system presences.
SYSTEM_PRESENCES = (
    "available",
    "on_queue",
    "away",
    "busy",
    "break",
    "meal",
    "meeting",
    "training",
    "offline",
    "idle",
)

_REST = {
    "available": "Available",
    "on_queue": "OnQueue",
    "away": "Away",
    "busy": "Busy",
    "break": "Break",
    "meal": "Meal",
    "meeting": "Meeting",
    "training": "Training",
    "offline": "Offline",
    "idle": "Idle",
}

_NAMESPACE = uuid.UUID("5f0e3c52-7a39-4d8e-9c1b-6a2f41d0b7e3")
PRESENCE_IDS = {name: str(uuid.uuid5(_NAMESPACE, name)) for name in SYSTEM_PRESENCES}
_BY_FOLDED = {name.replace("_", ""): name for name in SYSTEM_PRESENCES}


def canonical(value: str) -> str:
    """Return the Floor spelling of a presence written any way (``BREAK``, ``OnQueue``, ``on_queue``).

    Raise ValueError for anything that is not a system presence.
    """
    folded = str(value).replace("_", "").replace(" ", "").lower()
    try:
        return _BY_FOLDED[folded]
    except KeyError:
        raise ValueError(f"not a system presence: {value!r}") from None


def rest_name(presence: str) -> str:
    """Return the REST spelling (``OnQueue``) of a presence."""
    return _REST[presence]


def socket_name(presence: str) -> str:
    """Return the socket spelling (``ON_QUEUE``) of a presence."""
    return presence.upper()


def presence_id(presence: str) -> str:
    """Return the presence definition id of a system presence."""
    return PRESENCE_IDS[presence]
