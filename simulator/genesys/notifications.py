"""Genesys' notification routes: channels and their subscriptions over REST, and each channel's socket."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import WSMsgType, web

from simulator.genesys.channels import Channel
from simulator.genesys.errors import ApiError, error_response, json_body
from simulator.genesys.oauth import CLIENT_ID
from simulator.genesys.sockets import PONG, SocketSession


class NotificationRoutes:
    """Create, list, check, subscribe and delete channels for the caller's client; serve their sockets.

    A part of ``GenesysApi``: the channels themselves live in its hub.
    """

    def _channel(self, request: web.Request) -> Channel:
        channel = self.hub.channel(request.match_info["channel_id"], request[CLIENT_ID])
        if channel is None:
            raise ApiError(404, "Channel not found")
        return channel

    async def list_channels(self, request: web.Request) -> web.Response:
        """List the caller's live channels."""
        self.hub.sweep()
        owned = [c.as_json() for c in self.hub.channels.values() if c.client_id == request[CLIENT_ID]]
        return web.json_response({"entities": owned})

    async def create_channel(self, request: web.Request) -> web.Response:
        """Create a channel; past 20 per client the least recently used (idle first) is removed."""
        channel = self.hub.create_channel(request[CLIENT_ID], f"ws://{request.host}")
        return web.json_response(channel.as_json())

    async def head_channel(self, request: web.Request) -> web.Response:
        """Answer 200 if the channel still exists, else 404."""
        self._channel(request)
        return web.Response(status=200)

    async def delete_channel(self, request: web.Request) -> web.Response:
        """Remove a channel and close its socket."""
        self.hub.remove_channel(self._channel(request), code=1001, message="channel deleted")
        return web.Response(status=204)

    async def get_subscriptions(self, request: web.Request) -> web.Response:
        """List a channel's topics."""
        channel = self._channel(request)
        self.hub.touch(channel)
        return web.json_response({"entities": self.hub.topic_entities(channel)})

    async def put_subscriptions(self, request: web.Request) -> web.Response:
        """Replace a channel's topics."""
        return await self._subscribe(request, replace=True)

    async def post_subscriptions(self, request: web.Request) -> web.Response:
        """Add topics to a channel."""
        return await self._subscribe(request, replace=False)

    async def delete_subscriptions(self, request: web.Request) -> web.Response:
        """Remove every topic from a channel."""
        self.hub.unsubscribe_all(self._channel(request))
        return web.Response(status=200)

    async def _subscribe(self, request: web.Request, replace: bool) -> web.Response:
        channel = self._channel(request)
        body = await json_body(request)
        if not isinstance(body, list) or not all(isinstance(item, dict) and "id" in item for item in body):
            raise ApiError(400, 'The body must be a list of {"id": "<topic>"}')
        ignore_errors = request.query.get("ignoreErrors", "false").lower() == "true"
        result = self.hub.subscribe(
            channel, [item["id"] for item in body], replace=replace, ignore_errors=ignore_errors
        )
        if result.status != 200:
            raise ApiError(result.status, result.message)
        return web.json_response({"entities": result.entities})

    async def channel_socket(self, request: web.Request) -> web.StreamResponse:
        """Serve the notification socket of one channel (no auth: the channel id is the secret)."""
        channel = self.hub.channel(request.match_info["channel_id"])
        if channel is None:
            return error_response(404, "Channel not found")
        ws = web.WebSocketResponse(autoping=True, max_msg_size=1 << 20)
        await ws.prepare(request)
        session = SocketSession(ws, channel, self.hub.heartbeat_period, transport=request.transport)
        self.counters.sockets_opened += 1
        self.hub.attach(channel, session)
        session.start()
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self._client_frame(session, message.data)
                elif message.type == WSMsgType.BINARY:
                    self.counters.bad_frames += 1
        finally:
            self.hub.detach(channel, session)
            session.closing = True
            await session.stop()
        return ws

    def _client_frame(self, session: SocketSession, text: str) -> None:
        """Answer one text frame from a client: ping, or socket-level subscribe/unsubscribe."""
        try:
            frame = json.loads(text)
        except ValueError:
            self.counters.bad_frames += 1
            return
        if not isinstance(frame, dict):
            self.counters.bad_frames += 1
            return
        message = frame.get("message")
        if message == "ping":
            session.send(PONG)
            return
        if message not in ("subscribe", "unsubscribe"):
            self.counters.bad_frames += 1
            return
        reply: dict[str, Any] = {}
        if "correlationId" in frame:
            reply["correlationId"] = frame["correlationId"]
        channel = self.hub.channel(session.channel.id)
        requested = frame.get("topics")
        if channel is None:
            reply |= {"result": "404", "message": "Channel not found"}
        elif not isinstance(requested, list):
            self.counters.bad_frames += 1
            reply |= {"result": "400", "message": "topics must be a list"}
        elif message == "unsubscribe":
            keep = [t for t in channel.topics if t not in set(map(str, requested))]
            self.hub.subscribe(channel, keep, replace=True, ignore_errors=True)
            reply |= {"result": "200", "status": "unsubscribed"}
        else:
            result = self.hub.subscribe(channel, requested, replace=False, ignore_errors=False)
            if result.status == 200:
                reply |= {"result": "200", "status": "subscribed"}
            else:
                reply |= {"result": str(result.status), "message": result.message}
        session.send(json.dumps(reply))
