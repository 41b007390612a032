"""``python manage.py serve``: the web server (Daphne with a hard cap on request bodies)."""

from __future__ import annotations

import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    """Run Floorview's web server; takes ``daphne``'s arguments (``-b``, ``-p``, ...)."""

    help = (
        "Serve Floorview with Daphne, refusing request bodies over FLOORVIEW_MAX_REQUEST_BODY before they are "
        "buffered. Takes daphne's arguments; the application defaults to dashboard_project.asgi:application. "
        "See 'manage.py serve --help'."
    )

    def run_from_argv(self, argv: list[str]) -> None:
        # Daphne's own parser reads every argument: Django's would clash with its -v and reject the rest.
        from dashboard_project.webserver import ServeCommandLine

        command_line = ServeCommandLine()
        command_line.parser.prog = f"{Path(argv[0]).name} {argv[1]}"
        profile_path = os.environ.get("FLOORVIEW_PROFILE")
        if not profile_path:
            command_line.run(argv[2:])
            return
        # For finding where a storm's time goes (bench/storm.py): the event loop's thread, profiled until the
        # server stops, its statistics written for pstats. The database thread is not in it.
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
        try:
            command_line.run(argv[2:])
        finally:
            profiler.disable()
            profiler.dump_stats(f"{profile_path}.{os.getpid()}")

    def handle(self, *args, **options) -> None:
        raise CommandError("serve runs from the command line only: python manage.py serve [daphne arguments]")
