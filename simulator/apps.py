"""The simulator's Django app: it brings the ``simulate`` command."""

from django.apps import AppConfig


class SimulatorConfig(AppConfig):
    """The built-in vendor simulator."""

    name = "simulator"
    verbose_name = "Vendor simulator"
