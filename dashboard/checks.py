"""Django system checks for settings that are each valid alone but wrong together."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Tags, Warning, register

W001 = "floorview.W001"


@register(Tags.security)
def client_address_behind_a_proxy(app_configs=None, **kwargs) -> list[Warning]:
    """Warn when Floorview sits behind a proxy but takes the connection's peer for the client's address.

    Behind a proxy every request comes from the proxy's address: sign-in
    throttling by address would then count everyone's failures together,
    and a few bad passwords would lock every user out for the cool-off.
    """
    behind_a_proxy = bool(getattr(settings, "SECURE_PROXY_SSL_HEADER", None))
    by_address = "ip_address" in getattr(settings, "AXES_LOCKOUT_BY", ())
    if behind_a_proxy and by_address and not getattr(settings, "FLOORVIEW_CLIENT_IP_HEADER", ""):
        return [
            Warning(
                "SECURE_PROXY_SSL_HEADER is set (a proxy is in front) but FLOORVIEW_CLIENT_IP_HEADER is not: "
                "every sign-in seems to come from the proxy's address, so a few failed sign-ins lock every "
                "user out for the cool-off.",
                hint=(
                    "Set FLOORVIEW_CLIENT_IP_HEADER to the header the proxy writes the client's address into "
                    "(e.g. X-Forwarded-For, with FLOORVIEW_TRUSTED_PROXIES), or FLOORVIEW_LOGIN_LOCKOUT_BY=username."
                ),
                id=W001,
            )
        ]
    return []
