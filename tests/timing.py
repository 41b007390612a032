"""One constant scales every timeout in the suite, so a slow machine stretches them all alike."""

import os

SCALE = float(os.environ.get("FLOORVIEW_TEST_TIME_SCALE", "1"))


def scaled(seconds: float) -> float:
    """Return SECONDS stretched by the suite's time scale."""
    return seconds * SCALE
