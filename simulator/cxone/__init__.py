"""The NICE CXone stand-in: sign-in, discovery and the Real-Time Data API, fed by the model.

``api.py`` holds the switches and the middleware; ``sign_in.py`` and
``realtime.py`` its routes; ``payloads.py`` the reply bodies; ``changes.py``
when each agent, skill and contact last changed (for ``updatedSince``);
``errors.py`` CXone's error replies.
"""
