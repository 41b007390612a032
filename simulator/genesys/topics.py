"""Notification topic names the simulator knows, and how to read them.

A topic the simulator does not know is treated the way Genesys treats a topic
the client may not see: it is Rejected, and without ``?ignoreErrors=true`` the
whole subscription request fails with 403.
"""

from __future__ import annotations

import re

_ID = r"[A-Za-z0-9][A-Za-z0-9_-]*"
_USER_KINDS = ("presence", "routingStatus", "conversationsummary", "activity")
DETAIL_EVENTS = ("acd.start", "acd.end", "user.start", "user.end", "acw", "wrapup", "customer.start", "customer.end")

_PATTERNS = (
    re.compile(rf"^v2\.analytics\.queues\.{_ID}\.observations$"),
    re.compile(rf"^v2\.users\.{_ID}\.(activity|presence|routingStatus|conversationsummary)$"),
    re.compile(rf"^v2\.routing\.queues\.{_ID}\.users$"),
    re.compile(rf"^v2\.routing\.queues\.{_ID}\.conversations(\.(calls|callbacks|chats|emails|messages))?$"),
    re.compile(rf"^v2\.detail\.events\.conversation\.{_ID}\.(\*|{'|'.join(re.escape(e) for e in DETAIL_EVENTS)})$"),
)
_COMBINED = re.compile(rf"^v2\.users\.({_ID})\?([A-Za-z]+(?:&[A-Za-z]+)*)$")


def parse_combined(topic: str) -> tuple[str, frozenset[str]] | None:
    """Return (user id, kinds) of a combined user topic like ``v2.users.{id}?presence&routingStatus``, else None."""
    match = _COMBINED.match(topic)
    if not match:
        return None
    kinds = match.group(2).split("&")
    if len(set(kinds)) != len(kinds) or not all(kind in _USER_KINDS for kind in kinds):
        return None
    return match.group(1), frozenset(kinds)


def is_known(topic: str) -> bool:
    """Return whether TOPIC names something the simulator can publish (or at least accepts)."""
    if not isinstance(topic, str) or len(topic) > 500:
        return False
    return parse_combined(topic) is not None or any(p.match(topic) for p in _PATTERNS)


def queue_observations(queue_id: str) -> str:
    """Return the observation topic of a queue."""
    return f"v2.analytics.queues.{queue_id}.observations"


def queue_users(queue_id: str) -> str:
    """Return the membership topic of a queue."""
    return f"v2.routing.queues.{queue_id}.users"


def queue_conversations(queue_id: str) -> str:
    """Return the conversation topic of a queue."""
    return f"v2.routing.queues.{queue_id}.conversations"


def user_topic(user_id: str, kind: str) -> str:
    """Return ``v2.users.{id}.{kind}`` (kind: activity, presence, routingStatus)."""
    return f"v2.users.{user_id}.{kind}"


def detail_event(entity_id: str, event: str) -> str:
    """Return the detail-event topic of a conversation (or queue) id."""
    return f"v2.detail.events.conversation.{entity_id}.{event}"


def detail_wildcard(entity_id: str) -> str:
    """Return the wildcard detail-event topic that matches every event of ENTITY_ID."""
    return f"v2.detail.events.conversation.{entity_id}.*"
