from django.apps import AppConfig


class DashboardConfig(AppConfig):
    """The browser side: boards, pages and live sockets."""

    name = "dashboard"
