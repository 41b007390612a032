"""Settings for the test run: the project's own, on the public development keys.

Set in the environment rather than here, so that every process a test starts (Daphne, workers,
``manage.py``) inherits the same keys and can read what the others encrypted.
"""

import os

os.environ.setdefault("FLOORVIEW_REQUIRE_SECRETS", "false")

from dashboard_project.settings import *  # noqa: F403
