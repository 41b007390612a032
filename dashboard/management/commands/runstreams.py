"""``python manage.py runstreams``: the worker process."""

import asyncio
import logging
import signal

from django.core.management.base import BaseCommand

from dashboard.worker import Worker

log = logging.getLogger(__name__)


class Command(BaseCommand):
    """Hold the upstream vendor streams and publish board updates until SIGTERM or Ctrl-C."""

    help = "Run the worker: connectors, the Floor and the board publisher."

    def handle(self, *args, **options) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        worker = Worker()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            # The loop finishes its step: sockets close cleanly and pending updates are flushed.
            loop.add_signal_handler(signum, worker.stop)
        self.stdout.write("Floorview worker running; SIGTERM or Ctrl-C stops it.")
        await worker.run()
        self.stdout.write("Floorview worker stopped.")
