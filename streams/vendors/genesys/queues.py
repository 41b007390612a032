"""The admin's queue import for Genesys Cloud: every queue of the org, all pages."""

from __future__ import annotations

import aiohttp

from streams.link.timing import Timing
from streams.oauth import TokenProvider
from streams.vendors.genesys.connector import rest_client
from streams.vendors.genesys.reads import parsed
from streams.vendors.genesys.replies import parse_queue_entities
from streams.vendors.spec import ConnectionSpec


async def fetch_queues(spec: ConnectionSpec) -> list[dict]:
    """Return every queue of the org as [{"id", "name"}] (all pages), for the admin's import action."""
    timing = Timing()
    settings = spec.settings
    async with aiohttp.ClientSession(trust_env=True) as session:
        tokens = TokenProvider(settings.login_base, settings.client_id, settings.client_secret, session=session)
        rest = rest_client(spec, tokens, session, timing)
        queues: list[dict] = []
        async for page in rest.pages("/api/v2/routing/queues", {"pageSize": 100}):
            queues.extend(parsed(parse_queue_entities, page))
    return queues
