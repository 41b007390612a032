"""CXone's Real-Time Data API: agent states, skill activity and active contacts, with ``updatedSince`` and paging."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from simulator.cxone.errors import CxoneError, invalid
from simulator.cxone.payloads import BUSINESS_UNIT_ID, MEDIA, active_contact, agent_state, agent_view, skill_activity
from simulator.cxone.sign_in import request_origin
from simulator.http_input import int_param
from simulator.timefmt import iso, parse_iso

MAX_TOP = 10_000


class RealtimeRoutes:
    """Answer the three real-time lists from the model and the change log, 304 when nothing changed.

    A part of ``CxoneApi``: the reply shape and link form are its switches.
    """

    async def agent_states(self, request: web.Request) -> web.StreamResponse:
        """``GET /agents/states``: every agent whose state changed at or after ``updatedSince``."""
        since, now = self._since(request), self.clock()
        model, changes = self.model, self.changes
        agents = sorted(model.agents.values(), key=lambda a: a.number)
        selected = [a for a in agents if changes.agent(a.id) >= since]

        def build(agent: Any) -> dict[str, Any]:
            return agent_state(model, agent, agent_view(agent), changes.agent(agent.id))

        return self._reply(request, "agentStates", selected, build, now)

    async def skills_activity(self, request: web.Request) -> web.StreamResponse:
        """``GET /skills/activity``: every skill whose figures changed at or after ``updatedSince``."""
        since, now = self._since(request), self.clock()
        media_type = int_param(request, "mediaTypeId", None, 0, invalid)
        queues = sorted(self.model.queues.values(), key=lambda q: q.number)
        selected = [
            q
            for q in queues
            if self.changes.skill(q.id) >= since
            and (media_type is None or MEDIA.get(q.media_type, (0,))[0] == media_type)
        ]
        views = {agent.id: agent_view(agent) for agent in self.model.agents.values()} if selected else {}
        return self._reply(request, "skillActivity", selected, lambda q: skill_activity(q, views, now), now)

    async def contacts_active(self, request: web.Request) -> web.StreamResponse:
        """``GET /contacts/active``: live contacts changed at or after ``updatedSince``, and lately ended ones."""
        since, now = self._since(request), self.clock()
        skill_id = int_param(request, "skillId", None, 0, invalid)
        campaign_id = int_param(request, "campaignId", None, 0, invalid)
        agent_id = int_param(request, "agentId", None, 0, invalid)
        model, changes = self.model, self.changes
        records = [
            active_contact(model, c, changes.contact(c.id), c.state)
            for c in model.contacts.values()
            if changes.contact(c.id) >= since
        ]
        # Ended contacts stay listed as EndContact for pollers that last asked before the end.
        records += changes.ended_since(since)
        records = [
            r
            for r in records
            if (skill_id is None or r["skillId"] == skill_id)
            and (campaign_id is None or r["campaignId"] == campaign_id)
            and (agent_id is None or r["agentId"] == agent_id)
        ]
        records.sort(key=lambda r: r["contactId"])
        return self._reply(
            request, "activeContacts", records, lambda r: r, now, extra={"businessUnitId": BUSINESS_UNIT_ID}
        )

    def _since(self, request: web.Request) -> float:
        raw = request.query.get("updatedSince")
        if raw is None or raw == "":
            return -math.inf
        try:
            return parse_iso(raw)
        except ValueError:
            raise CxoneError(400, "InvalidParameter", "updatedSince must be an ISO-8601 date and time.") from None

    def _reply(
        self,
        request: web.Request,
        root: str,
        selected: list[Any],
        build: Callable[[Any], dict[str, Any]],
        now: float,
        extra: dict[str, Any] | None = None,
    ) -> web.StreamResponse:
        """Answer one page of SELECTED (304 when nothing changed), in the current shape."""
        top = int_param(request, "top", MAX_TOP, 1, invalid)
        skip = int_param(request, "skip", 0, 0, invalid)
        top = min(top, MAX_TOP)
        total = len(selected)
        if total == 0:
            by_list = self.counters.not_modified_by_list
            by_list[root] = by_list.get(root, 0) + 1
            return web.Response(status=304)
        fields = [f for value in request.query.getall("fields", []) for f in value.split(",") if f.strip()]
        items = [build(item) for item in selected[skip : skip + top]]
        if fields:
            wanted = {f.strip() for f in fields}
            items = [{k: v for k, v in item.items() if k in wanted} for item in items]
        relative = self.link_form == "relative"
        body: dict[str, Any] = {
            "totalRecords": total,
            "_links": {
                "self": _page_url(request, skip, relative),
                "next": _page_url(request, skip + top, relative) if skip + top < total else None,
                "previous": _page_url(request, max(skip - top, 0), relative) if skip > 0 else None,
            },
            **(extra or {}),
            # Cut, not rounded: a lastPollTime later than the reply's own instant would make the next
            # updatedSince skip a change made in that millisecond.
            "lastPollTime": iso(now, floor=True),
            root: items,
        }
        if self.shape == "resultSet":
            body = {"resultSet": body}
        return web.json_response(body)


def _page_url(request: web.Request, skip: int, relative: bool = False) -> str:
    query = [(k, v) for k, v in request.query.items() if k != "skip"] + [("skip", str(skip))]
    path = f"{request.path}?{urlencode(query)}"
    return path if relative else f"{request_origin(request)}{path}"
