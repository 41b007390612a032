"""The log filter and formatter named by settings.LOGGING."""

from __future__ import annotations

import logging

from streams.log_safe import safe_text


class RefusalsOnOneLine(logging.Filter):
    """Drop the traceback from the log lines of refused requests, so each logs one line.

    Django attaches the exception to every 403 (``django.request``) and to every suspicious
    request (``django.security.*``, e.g. a path that climbs out of the static directory). Those
    are the client's doing; a traceback per scanner probe buries the errors that matter. A
    server error (``django.request`` at ERROR, a 500) keeps its traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Strip the traceback from a refusal's record; let every record through."""
        refusal = record.name.startswith("django.security") or (
            record.name == "django.request" and record.levelno < logging.ERROR
        )
        if refusal:
            record.exc_info = None
            record.exc_text = None
            record.stack_info = None
        return True


class OneRecordPerLine(logging.Formatter):
    """Format a record so that nothing in it can pose as a record of its own.

    Messages often carry text someone else wrote (an upstream error, a client's path). Call sites
    escape what they know to be foreign, but an exception's text reaches the log through the
    traceback. Here the message is escaped to one line, and every line after it (a traceback) is
    indented and stripped of other control characters, so a line that starts at the margin is
    always a record of ours.
    """

    def format(self, record: logging.LogRecord) -> str:
        """Return the record's text: its message on one line, any traceback indented below it."""
        saved = record.msg, record.args
        record.msg, record.args = safe_text(record.getMessage()), None
        try:
            text = super().format(record)
        finally:
            record.msg, record.args = saved
        first, *rest = text.split("\n")
        return "\n".join([first, *("    " + safe_text(line) for line in rest)])
