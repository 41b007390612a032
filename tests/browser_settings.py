"""Settings for the browser test's Daphne: the project's own, with a Redis key prefix of its own.

Redis db 15 is shared with other test runs; a private prefix (channel layer and snapshot store)
means nothing needs flushing and no run disturbs another.
"""

import os

from dashboard_project.settings import *  # noqa: F403

SNAPSHOT_PREFIX = os.environ["FLOORVIEW_TEST_PREFIX"]
_layer = CHANNEL_LAYERS["default"]["CONFIG"]  # noqa: F405
_layer["prefix"] = SNAPSHOT_PREFIX
# redis-py 8 reads with a 5 s socket timeout by default, the same 5 s that channels_redis blocks in
# BZPOPMIN: every idle consumer then dies with "Timeout reading from ...". Give reads more room
# than the block (see the report to the lead; settings.py should carry this for production too).
_layer["hosts"] = [
    host if isinstance(host, dict) else {"address": host, "socket_timeout": 15} for host in _layer["hosts"]
]
