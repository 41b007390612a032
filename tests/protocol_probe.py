"""The real application, speaking the page protocol version FLOORVIEW_TEST_PROTOCOL names: a deploy's stand-in."""

import os

from dashboard_project.asgi import application  # noqa: F401  (the application this module serves)

if os.environ.get("FLOORVIEW_TEST_PROTOCOL"):
    from dashboard import protocol

    protocol.PROTOCOL_VERSION = int(os.environ["FLOORVIEW_TEST_PROTOCOL"])
