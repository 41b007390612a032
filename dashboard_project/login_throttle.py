"""How django-axes tells sign-in attempts apart: which client address, and which counters a success clears.

Settings name these functions (``AXES_LOCKOUT_PARAMETERS``, ``AXES_LOCKOUT_CALLABLE``) and
``dashboard.client_address.client_ip`` (``AXES_CLIENT_IP_CALLABLE``, shared with the socket
handshake); the counting, lockout and logging are django-axes' own.
"""

from __future__ import annotations

from axes.helpers import get_client_username, get_cool_off
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def lockout_parameters(request_or_attempt, credentials: dict | None = None) -> list[str]:
    """Return what failures are counted by: each account and each client address, separately.

    A successful sign-in clears only its own account's failures. If it cleared its address's
    too, anyone with a valid account could reset the counters between guesses at someone
    else's password from the same address.
    """
    user = getattr(request_or_attempt, "user", None)
    # Signed in as the very account the attempt names: this is the success being recorded.
    signed_in_as_it = (
        isinstance(request_or_attempt, HttpRequest)
        and user is not None
        and user.is_authenticated
        and user.get_username() == get_client_username(request_or_attempt, credentials)
    )
    if signed_in_as_it and "username" in settings.AXES_LOCKOUT_BY:
        return ["username"]
    return list(settings.AXES_LOCKOUT_BY)


def lockout_response(request: HttpRequest, original_response=None, credentials: dict | None = None) -> HttpResponse:
    """Render the site's "sign-in paused" page (429), saying how long the pause lasts."""
    cool_off = get_cool_off(request)
    minutes = max(1, round(cool_off.total_seconds() / 60)) if cool_off else None
    return render(request, "registration/locked_out.html", {"minutes": minutes}, status=429)
