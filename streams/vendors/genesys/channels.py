"""A Genesys link's notification channels over REST: creating one, and keeping the topics on each as wanted.

A channel carries at most ``TOPIC_LIMIT`` topics, and a link has one socket
per channel (the socket's ``data`` is its ``Channel``). The calls here are
the REST side only: the connector opens the sockets and notes on its health
the topics Genesys rejects.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from streams.vendors.genesys.rest import GenesysRest, RestError
from streams.vendors.genesys.subscriptions import TOPIC_LIMIT, Channel, batches, channel_expiry
from streams.vendors.genesys.values import ParseError


def rejected_topics(reply: Any) -> list[Any]:
    """Return the ids of the topics a subscriptions reply says were rejected (none if it says nothing)."""
    entities = reply.get("entities") if isinstance(reply, dict) else None
    if not isinstance(entities, list):
        return []
    return [e.get("id") for e in entities if isinstance(e, dict) and e.get("state") == "Rejected"]


class Channels:
    """The REST calls behind one connection's notification channels.

    API returns the connection's REST client when called (there is one only
    while the connector runs); REJECTED is told of the topics a subscriptions
    reply rejected, whenever there are any.
    """

    def __init__(self, api: Callable[[], GenesysRest], rejected: Callable[[list[Any]], None]) -> None:
        self._api = api
        self._rejected = rejected

    async def create(self, topics: list[str]) -> tuple[Channel, str, float]:
        """Create a channel carrying TOPICS; return it, the ``connectUri`` of its socket and when it expires."""
        reply = await self._api().request("POST", "/api/v2/notifications/channels")
        try:
            if not isinstance(reply, dict):
                raise ParseError("channel reply is not an object")
            channel_id, uri = reply.get("id"), reply.get("connectUri")
            if not isinstance(channel_id, str) or not isinstance(uri, str) or not uri.startswith(("ws", "http")):
                raise ParseError("channel reply lacks id or connectUri")
        except ParseError as exc:
            raise RestError(f"unusable channel reply: {exc}") from None
        expires = channel_expiry(reply.get("expires"), time.time())
        channel = Channel(channel_id)
        if topics:
            await self.put(channel, topics)
        return channel, uri, expires

    async def put(self, channel: Channel, topics: list[str]) -> None:
        """Make CHANNEL carry exactly TOPICS (none: take every topic off it)."""
        path = f"/api/v2/notifications/channels/{channel.id}/subscriptions"
        if topics:
            reply = await self._api().request(
                "PUT", path, params={"ignoreErrors": "true"}, json=[{"id": t} for t in topics]
            )
            self._note(reply)
        else:
            await self._api().request("DELETE", path)
        channel.topics = list(topics)

    async def post(self, channel: Channel, topics: list[str]) -> None:
        """Add TOPICS to those CHANNEL carries."""
        path = f"/api/v2/notifications/channels/{channel.id}/subscriptions"
        reply = await self._api().request(
            "POST", path, params={"ignoreErrors": "true"}, json=[{"id": t} for t in topics]
        )
        self._note(reply)
        channel.topics.extend(topics)

    async def unsubscribe(self, channel: Channel) -> None:
        """Take every topic off CHANNEL at Genesys (a retired link's: its socket is closed), so it publishes no more."""
        await self._api().request("DELETE", f"/api/v2/notifications/channels/{channel.id}/subscriptions")

    async def sync(self, channels: list[Channel], desired: list[str]) -> list[list[str]]:
        """Make CHANNELS carry DESIRED between them; return what does not fit, in batches for new channels.

        Each channel keeps the wanted topics it carries, then takes what is
        missing while it has room; one whose topics only grew is sent the new
        ones (POST), any other its whole list (PUT).
        """
        wanted = set(desired)
        placed: set[str] = set()
        plans: list[tuple[Channel, list[str]]] = []
        for channel in channels:
            keep = [t for t in channel.topics if t in wanted and t not in placed]
            placed.update(keep)
            plans.append((channel, keep))
        remaining = [t for t in desired if t not in placed]
        for channel, keep in plans:
            room = TOPIC_LIMIT - len(keep)
            if room > 0 and remaining:
                keep.extend(remaining[:room])
                remaining = remaining[room:]
            if keep == channel.topics:
                continue
            added = keep[len(channel.topics) :]
            if keep[: len(channel.topics)] == channel.topics and added:
                await self.post(channel, added)
            else:
                await self.put(channel, keep)
        return batches(remaining, TOPIC_LIMIT)

    async def resubscribe(self, channels: list[Channel], dropped: set[str]) -> None:
        """Put back the topics of the CHANNELS whose ids are in DROPPED (of every one, if it names none of them)."""
        for channel in channels:
            if channel.id in dropped or not any(c.id in dropped for c in channels):
                await self.put(channel, list(channel.topics))

    def _note(self, reply: Any) -> None:
        rejected = rejected_topics(reply)
        if rejected:
            self._rejected(rejected)
