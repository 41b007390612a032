"""The generic feeds' stand-ins on the simulator's port: push (WebSocket) and SSE, with their token endpoint.

``servers.py`` holds ``FeedServers`` (the token endpoint, the sessions and
their faults); ``push.py`` and ``sse.py`` serve one connection each;
``session.py`` is what the two kinds of session share. Records come from
the simulator's ``RecordLog`` (``records.py``).
"""
