"""Settings for the ``--redis`` benchmark's processes: the project's own, under a Redis key prefix of their own.

The prefix (``FLOORVIEW_BENCH_PREFIX``) covers every key the processes write
(channel layer, snapshot store, leases, token cache), so a run neither sees nor
disturbs other data in that Redis and its keys can be deleted afterwards.
Needs ``REDIS_URL``.
"""

import os

from dashboard_project.settings import *  # noqa: F403

# REDIS_PREFIX is the project's name for it; SNAPSHOT_PREFIX the one older code reads.
REDIS_PREFIX = SNAPSHOT_PREFIX = os.environ["FLOORVIEW_BENCH_PREFIX"]
CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = REDIS_PREFIX  # noqa: F405
