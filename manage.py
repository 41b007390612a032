#!/usr/bin/env python
"""Django's command-line utility for Floorview."""

import os
import sys


def main() -> None:
    """Run a management command."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard_project.settings")
    if sys.argv[1:2] == ["demo"]:
        # The demo is the laptop mode: it may run on the public development keys (see settings).
        os.environ.setdefault("FLOORVIEW_REQUIRE_SECRETS", "false")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
