"""Genesys' routing and user REST routes: queues and their members, users, presences and routing statuses."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from simulator.genesys import payloads
from simulator.genesys.errors import ApiError, page_params
from simulator.model import SimAgent

MAX_BULK_PRESENCE_IDS = 50
QUEUES_MAX_PAGE_SIZE = 500
MEMBERS_MAX_PAGE_SIZE = 100


class QueueAndUserRoutes:
    """Serve queues (paged, with Genesys' paging fields), queue members and users from the model.

    A part of ``GenesysApi``.
    """

    async def list_queues(self, request: web.Request) -> web.Response:
        """List queues a page at a time, with Genesys' paging fields."""
        page_size, page_number = page_params(request, QUEUES_MAX_PAGE_SIZE)
        name = request.query.get("name")
        ids = {part for value in request.query.getall("id", []) for part in value.split(",") if part}
        queues = [
            q
            for q in self.model.queues.values()
            if (not name or q.name.lower().startswith(name.lower())) and (not ids or q.id in ids)
        ]
        total = len(queues)
        page_count = max(1, -(-total // page_size))
        chunk = queues[(page_number - 1) * page_size : page_number * page_size]

        filters = [("name", name)] if name else []
        filters += [("id", queue_id) for queue_id in sorted(ids)]

        def uri(number: int) -> str:
            return "/api/v2/routing/queues?" + urlencode([("pageSize", page_size), ("pageNumber", number), *filters])

        body: dict[str, Any] = {
            "entities": [payloads.queue_entity(q) for q in chunk],
            "pageSize": page_size,
            "pageNumber": page_number,
            "total": total,
            "pageCount": page_count,
            "firstUri": uri(1),
            "lastUri": uri(page_count),
            "selfUri": uri(page_number),
        }
        if page_number < page_count:
            body["nextUri"] = uri(page_number + 1)
        if page_number > 1:
            body["previousUri"] = uri(page_number - 1)
        return web.json_response(body)

    async def get_queue(self, request: web.Request) -> web.Response:
        """Return one queue."""
        queue = self.model.queues.get(request.match_info["queue_id"])
        if queue is None:
            raise ApiError(404, "Queue not found")
        return web.json_response(payloads.queue_entity(queue))

    async def list_members(self, request: web.Request) -> web.Response:
        """List a queue's members a page at a time (no totals; ``nextUri`` while more)."""
        queue_id = request.match_info["queue_id"]
        queue = self.model.queues.get(queue_id)
        if queue is None:
            raise ApiError(404, "Queue not found")
        page_size, page_number = page_params(request, MEMBERS_MAX_PAGE_SIZE)
        expand = {part.strip() for value in request.query.getall("expand", []) for part in value.split(",")}
        members = sorted((self.model.agents[a] for a in queue.member_ids), key=lambda a: (a.name, a.id))
        chunk = members[(page_number - 1) * page_size : page_number * page_size]
        query = {"pageSize": page_size}
        if expand:
            query["expand"] = ",".join(sorted(expand))

        def uri(number: int) -> str:
            return f"/api/v2/routing/queues/{queue_id}/members?" + urlencode(query | {"pageNumber": number})

        body: dict[str, Any] = {
            "entities": [payloads.member_entity(a, expand) for a in chunk],
            "pageSize": page_size,
            "pageNumber": page_number,
            "firstUri": uri(1),
            "selfUri": uri(page_number),
        }
        if page_number * page_size < len(members):
            body["nextUri"] = uri(page_number + 1)
        if page_number > 1:
            body["previousUri"] = uri(page_number - 1)
        return web.json_response(body)

    def _agent(self, request: web.Request) -> SimAgent:
        agent = self.model.agents.get(request.match_info["user_id"])
        if agent is None:
            raise ApiError(404, "User not found")
        return agent

    async def get_routing_status(self, request: web.Request) -> web.Response:
        """Return a user's routing status."""
        return web.json_response(payloads.routing_status(self._agent(request)))

    async def get_presence(self, request: web.Request) -> web.Response:
        """Return a user's presence (REST spelling)."""
        return web.json_response(payloads.user_presence(self._agent(request)))

    async def get_user(self, request: web.Request) -> web.Response:
        """Return a user, with presence and routing status when expanded."""
        agent = self._agent(request)
        expand = {part.strip() for value in request.query.getall("expand", []) for part in value.split(",")}
        body: dict[str, Any] = {
            "id": agent.id,
            "name": agent.name,
            "state": "active",
            "selfUri": f"/api/v2/users/{agent.id}",
        }
        if "presence" in expand:
            body["presence"] = payloads.user_presence(agent)
        if "routingStatus" in expand:
            body["routingStatus"] = payloads.routing_status(agent)
        return web.json_response(body)

    async def bulk_presences(self, request: web.Request) -> web.Response:
        """Return the presences of up to 50 users (``?id=a,b`` or repeated ``id``)."""
        ids = [part.strip() for value in request.query.getall("id", []) for part in value.split(",") if part.strip()]
        if len(ids) > MAX_BULK_PRESENCE_IDS:
            raise ApiError(400, f"At most {MAX_BULK_PRESENCE_IDS} user ids may be requested at once")
        agents = [self.model.agents[i] for i in dict.fromkeys(ids) if i in self.model.agents]
        return web.json_response([payloads.bulk_presence(a) for a in agents])

    async def list_presence_definitions(self, request: web.Request) -> web.Response:
        """List the system presence definitions (ids are the ``oUserPresences`` qualifiers)."""
        entities = payloads.presence_definitions()
        return web.json_response(
            {"entities": entities, "pageSize": len(entities), "pageNumber": 1, "total": len(entities)}
        )
