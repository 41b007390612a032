"""The ASGI application: Django for HTTP, the board sockets for WebSocket."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard_project.settings")
# Set up Django (and its app registry) before importing anything that touches models.
django_application = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from dashboard import shutdown  # noqa: E402
from dashboard.routing import websocket_urlpatterns  # noqa: E402
from streams.body_limit import BodyLimit  # noqa: E402

# Under Daphne: a restart closes viewers' sockets with "service restart" rather than dropping them.
shutdown.install()

application = ProtocolTypeRouter(
    {
        # Daphne serves no files itself; without this the pages would load without htmx, script or styles.
        # Only /static/ requests are intercepted; a proxy in front may still serve STATIC_ROOT directly.
        # Webhook bodies past the hard cap are refused before Django buffers them (see streams.body_limit).
        "http": BodyLimit(
            ASGIStaticFilesHandler(django_application),
            prefix="/hooks/",
            limit=settings.FLOORVIEW["WEBHOOK_MAX_BODY"],
        ),
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
