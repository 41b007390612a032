"""The project's ASGI application, counting the calls it hands to the database thread (for tests under Daphne).

Channels runs every session load, user load and permission check, and the
connection cleanup before each consumer handler, on one thread through
``database_sync_to_async``. A burst test reads the count at
``GET /__probe__/db-calls`` to prove that refused sockets caused none.
"""

from __future__ import annotations

import channels.db

from dashboard_project.asgi import application as site

calls = 0
_thread_handler = channels.db.DatabaseSyncToAsync.thread_handler


def _counting(self, loop, *args, **kwargs):
    global calls
    calls += 1
    return _thread_handler(self, loop, *args, **kwargs)


channels.db.DatabaseSyncToAsync.thread_handler = _counting


async def application(scope, receive, send):
    """Answer the probe's own address; hand everything else to the site."""
    if scope["type"] == "http" and scope["path"] == "/__probe__/db-calls":
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": str(calls).encode()})
        return
    await site(scope, receive, send)
