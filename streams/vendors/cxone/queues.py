"""The admin's queue import for NICE CXone: every skill of the tenant (skills are Floorview's queues), all pages."""

from __future__ import annotations

import aiohttp

from streams.link.timing import Timing
from streams.vendors.cxone.connector import ENDPOINTS, PAGE_SIZE, api_base, auth_for
from streams.vendors.cxone.parsers import skill_entry
from streams.vendors.cxone.rest import EPOCH, CxoneRest
from streams.vendors.cxone.values import ParseError
from streams.vendors.spec import ConnectionSpec


async def fetch_queues(spec: ConnectionSpec) -> list[dict]:
    """Return every skill of the tenant as [{"id", "name"}] (all pages), for the admin's import action."""
    timing = Timing()
    async with aiohttp.ClientSession(trust_env=True) as session:
        auth = auth_for(spec, session, timing)
        endpoint = await auth.discover()
        rest = CxoneRest(api_base(endpoint, spec.settings.api_version), auth, session, timeout=timing.rest_timeout)
        path, root = ENDPOINTS["skills"]
        fetched = await rest.fetch(path, root, EPOCH, top=PAGE_SIZE)
    skills: dict[str, dict[str, str]] = {}
    for item in fetched.items:
        try:
            entry = skill_entry(item)
        except ParseError:
            continue
        skills.setdefault(entry["id"], entry)
    return list(skills.values())
