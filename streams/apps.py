from django.apps import AppConfig


class StreamsConfig(AppConfig):
    """The upstream side: vendor connections, connectors, the Floor and the worker."""

    name = "streams"
    verbose_name = "Upstream streams"
