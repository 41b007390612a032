"""What a board page may send on its socket, taken apart; what is not one of those is dropped and counted.

The page sends a filter change now and then, a resync at most every few
seconds and an acknowledgement every few frames (the types are named in
dashboard.protocol). A bad client never ends a socket by what it says, only
by how much: see the rates below, which each viewer's ``Inbox`` applies.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from typing import Any

from channels.consumer import get_handler_name

from dashboard.protocol import CLIENT_HANDLER_PREFIX, CLIENT_MESSAGE_TYPES
from dashboard.viewer_limits import TokenBucket

log = logging.getLogger(__name__)

MAX_CLIENT_MESSAGE = 8 * 1024
# Client messages a viewer may send. Excess is dropped and counted.
MESSAGE_RATE = 10.0
MESSAGE_BURST = 30
# A sustained flood ends the socket: past this many dropped messages (refilled at the same rate) it closes.
FLOOD_BURST = 100
# Snapshots the page may ask for (resync, filter change): it asks at most every few seconds. Asks beyond
# this wait for their turn (coalesced into one), so a looping client costs one store read a second.
SNAPSHOT_RATE = 1.0
SNAPSHOT_BURST = 3

# Client messages dropped in this process, by reason (for operators).
dropped_messages: Counter[str] = Counter()


class Dropped(Exception):
    """A client message that is not one the page may send; its argument says why (a reason in the count)."""

    @property
    def reason(self) -> str:
        """Return why the message was dropped."""
        return str(self.args[0])


class Flooding(Exception):
    """A viewer sent on past both its message rate and its flood allowance: its socket is closed."""


def parse(text_data: str | None) -> tuple[str, dict[str, Any]]:
    """Return (the handler's name, the message) for a client frame, or raise Dropped."""
    if text_data is None:
        raise Dropped("binary")
    if len(text_data) > MAX_CLIENT_MESSAGE or len(text_data.encode("utf-8", "replace")) > MAX_CLIENT_MESSAGE:
        raise Dropped("oversized")
    try:
        message = json.loads(text_data)
    except ValueError:
        raise Dropped("malformed") from None
    if not isinstance(message, dict):
        raise Dropped("malformed")
    kind = message.get("type")
    if kind not in CLIENT_MESSAGE_TYPES:
        raise Dropped("unknown type")
    # Named as Channels names a handler, from the page's own namespace: a client cannot reach any other method.
    return get_handler_name({"type": CLIENT_HANDLER_PREFIX + kind}), message


def count_drop(reason: str, board_id: int | None) -> None:
    """Count a dropped client message."""
    dropped_messages[reason] += 1
    log.debug("dropped a client message on board %s: %s", board_id, reason)


class Inbox:
    """One viewer's client messages: rate-limited, taken apart, and counted when dropped."""

    def __init__(self) -> None:
        self.messages = TokenBucket(MESSAGE_RATE, MESSAGE_BURST)
        self.flood = TokenBucket(MESSAGE_RATE, FLOOD_BURST)
        self.dropped = 0

    def take(self, text_data: str | None, board_id: int | None) -> tuple[str, dict[str, Any]] | None:
        """Return (the handler's name, the message) for a client frame, or None if it was dropped (and counted).

        Raises Flooding when the viewer sends on past the rate and its drop allowance both.
        """
        if not self.messages.take():
            self.drop("rate", board_id)
            if not self.flood.take():
                raise Flooding()
            return None
        try:
            return parse(text_data)
        except Dropped as dropped:
            self.drop(dropped.reason, board_id)
            return None

    def drop(self, reason: str, board_id: int | None) -> None:
        """Count a dropped client message of this viewer."""
        self.dropped += 1
        count_drop(reason, board_id)
