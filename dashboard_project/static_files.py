"""Daphne's static files: Django's ASGI handler, answering 404 to paths that climb out of /static/."""

from __future__ import annotations

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.exceptions import SuspiciousFileOperation
from django.http import Http404


class StaticFiles(ASGIStaticFilesHandler):
    """Serve /static/ like Django's handler, but refuse ``/static/..%2f...`` with a plain 404.

    Django's handler only turns Http404 into a response; the SuspiciousFileOperation a
    traversal raises would reach the server as an unhandled error (a 500 and a traceback per
    probe). There is no such file to serve, so it is simply not found.
    """

    def serve(self, request):
        """Return the static file for REQUEST, or raise Http404."""
        try:
            return super().serve(request)
        except SuspiciousFileOperation:
            raise Http404("not found") from None
