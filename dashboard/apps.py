from django.apps import AppConfig


class DashboardConfig(AppConfig):
    """The browser side: boards, pages and live sockets."""

    name = "dashboard"

    def ready(self) -> None:
        """Connect the signals that close sockets whose access ended; register the app's system checks."""
        from dashboard import access_signals, checks  # noqa: F401
