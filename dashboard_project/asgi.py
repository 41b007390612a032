"""The ASGI application: Django for HTTP, the board sockets for WebSocket."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard_project.settings")
# Set up Django (and its app registry) before importing anything that touches models.
django_application = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from dashboard import shutdown  # noqa: E402
from dashboard.routing import socket_application  # noqa: E402
from dashboard_project.static_files import StaticFiles  # noqa: E402
from streams.body_limit import BodyLimit  # noqa: E402

# Under Daphne: a restart closes viewers' sockets with "service restart" rather than dropping them.
shutdown.install()

application = ProtocolTypeRouter(
    {
        # Daphne serves no files itself; without this the pages would load without htmx, script or styles.
        # Only /static/ requests are intercepted; a proxy in front may still serve STATIC_ROOT directly.
        # Webhook bodies past the hard cap are refused before Django buffers them (see streams.body_limit).
        "http": BodyLimit(
            StaticFiles(django_application),
            prefix="/hooks/",
            limit=settings.FLOORVIEW["WEBHOOK_MAX_BODY"],
        ),
        # Full-origin check, unknown paths refused, sockets without a session refused cheaply (dashboard.routing).
        "websocket": socket_application(),
    }
)
