"""``{% versioned_static "path" %}``: a static file's URL carrying a hash of its content.

Static file names are not hashed (the demo and the tests serve them without
``collectstatic``), so a browser could keep a cached ``board.js`` across a
deploy and run it against a server that speaks another protocol. The query
string changes whenever the file does, so the page fetches the new one;
whoever serves ``/static/`` (Django, or the proxy after ``collectstatic``)
ignores it.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

from django import template
from django.conf import settings
from django.contrib.staticfiles import finders
from django.templatetags.static import static

register = template.Library()


def content_version(path: str) -> str:
    """Return a short hash of the static file PATH's content, or "" if no finder knows it."""
    found = finders.find(path)
    if not found:
        return ""
    with open(found, "rb") as file:
        return hashlib.sha256(file.read()).hexdigest()[:12]


# A deploy restarts the web processes, so each file is hashed once per process (outside DEBUG).
_cached_version = lru_cache(maxsize=128)(content_version)


@register.simple_tag
def versioned_static(path: str) -> str:
    """Return the URL of the static file PATH with ``?v=<hash of its content>``."""
    version = content_version(path) if settings.DEBUG else _cached_version(path)
    url = static(path)
    return f"{url}?v={version}" if version else url
