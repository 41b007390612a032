"""``python manage.py serve``: the web server (Daphne with a hard cap on request bodies)."""

from __future__ import annotations

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
        command_line.run(argv[2:])

    def handle(self, *args, **options) -> None:
        raise CommandError("serve runs from the command line only: python manage.py serve [daphne arguments]")
