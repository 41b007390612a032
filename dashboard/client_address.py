"""Which address a request came from, believing a proxy's header only where the operator says one sets it.

Sign-in throttling (django-axes, through ``AXES_CLIENT_IP_CALLABLE``) and the socket handshake's
per-address bounds both count by this address, so they must agree on it.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    """Return the address that failures from REQUEST count against.

    Without ``FLOORVIEW_CLIENT_IP_HEADER`` that is the peer of the socket: a header is only
    believed when the operator says a proxy sets it, or any client could pick its own address
    and escape the per-address lockout. With it, the proxies append to the header, so the entry
    ``FLOORVIEW_TRUSTED_PROXIES`` from the right is the one the outermost trusted proxy saw;
    anything left of it was written by the client and is ignored.
    """
    header = settings.FLOORVIEW_CLIENT_IP_HEADER
    if header:
        entries = [part.strip() for part in request.META.get(header, "").split(",") if part.strip()]
        if len(entries) >= settings.FLOORVIEW_TRUSTED_PROXIES:
            return entries[-settings.FLOORVIEW_TRUSTED_PROXIES]
        # Too short a header means the request did not come through the proxies: fall back to the peer.
    return request.META.get("REMOTE_ADDR")
