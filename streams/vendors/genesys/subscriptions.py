"""Genesys notification topics and channels: which topics a queue or an agent needs, and how long a channel lives."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streams import sanity
from streams.vendors.genesys.values import ParseError, parse_time

TOPIC_LIMIT = 1000  # topics one channel accepts
CHANNEL_LIFETIME = 86_400.0  # a notification channel lives 24 hours
MAX_CHANNEL_LIFETIME = 2 * 86_400.0  # an "expires" further ahead than this is no channel's


def queue_topics(queue_id: str) -> list[str]:
    """Return the topics one watched queue needs."""
    return [f"v2.analytics.queues.{queue_id}.observations", f"v2.routing.queues.{queue_id}.users"]


def agent_topic(agent_id: str) -> str:
    """Return the topic that carries one agent's presence and routing status."""
    return f"v2.users.{agent_id}.activity"


@dataclass
class Channel:
    """One notification channel and the topics it carries."""

    id: str
    topics: list[str] = field(default_factory=list)


def channel_expiry(value: Any, now: float) -> float:
    """Return when a channel created NOW expires: its ``expires`` if sane, else the usual 24 hours.

    A date already past would make a rollover due at once (a loop of new channels and snapshots); one far
    ahead, or none, would never roll the channel over before Genesys ends it.
    """
    try:
        expires = sanity.deadline(parse_time(value), within=MAX_CHANNEL_LIFETIME, now=now)
    except ParseError:
        sanity.refuse(sanity.BAD_TIME)
        expires = None
    return now + CHANNEL_LIFETIME if expires is None else expires


def batches(items: list[str], size: int) -> list[list[str]]:
    """Return ITEMS in consecutive lists of at most SIZE."""
    return [items[i : i + size] for i in range(0, len(items), size)]
