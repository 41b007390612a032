"""Settings for the browser test's Daphne: the project's own, with a Redis key prefix of its own.

Redis db 15 is shared with other test runs; a private prefix (channel layer and snapshot store)
means nothing needs flushing and no run disturbs another.
"""

import os

from dashboard_project.settings import *  # noqa: F403

REDIS_PREFIX = os.environ["FLOORVIEW_TEST_PREFIX"]
_layer = CHANNEL_LAYERS["default"]["CONFIG"]  # noqa: F405
_layer["prefix"] = REDIS_PREFIX
