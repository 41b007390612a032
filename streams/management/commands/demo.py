"""``python manage.py demo``: everything in one process, no other service."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

log = logging.getLogger(__name__)


class Command(BaseCommand):
    """Run the simulator, the worker and the web server together, with demo data."""

    help = "Run Floorview with the built-in Genesys simulator: migrate, seed, serve."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="Interface the web server binds (default 127.0.0.1).")
        parser.add_argument("--port", type=int, default=8000, help="Web server port (default 8000).")
        parser.add_argument("--sim-port", type=int, default=0, help="Simulator port (default: any free port).")
        parser.add_argument("--queues", type=int, default=5, help="Simulated queues.")
        parser.add_argument("--agents", type=int, default=30, help="Simulated agents.")
        parser.add_argument("--rate", type=float, default=0.8, help="Simulated contacts per second.")
        parser.add_argument("--seed", type=int, default=1, help="Simulator seed.")

    def handle(self, *args, **options) -> None:
        if settings.REDIS_URL:
            # The demo is the embedded mode; a shared Redis would mix it with a real fleet.
            raise CommandError("The demo runs without Redis: unset REDIS_URL (use runstreams and Daphne instead).")
        # Daphne installs Twisted's asyncio reactor on import: do it before anything else touches Twisted.
        from daphne.server import Server

        from dashboard_project.asgi import application

        call_command("migrate", interactive=False, verbosity=0)
        password = self._admin_password()
        host, port = options["host"], options["port"]
        self.runner = DemoRunner(options, password, self.stdout)
        server = Server(
            application,
            endpoints=[f"tcp:port={port}:interface={host}"],
            ready_callable=self.runner.schedule,
            verbosity=0,
        )
        self.runner.server = server
        server.run()

    def _admin_password(self) -> str:
        """Create (or reset) user admin; return the password to print."""
        password = os.environ.get("DEMO_PASSWORD") or secrets.token_urlsafe(9)
        user, _ = User.objects.get_or_create(username="admin", defaults={"email": "admin@example.com"})
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        group, _ = Group.objects.get_or_create(name="Supervisors")
        user.groups.add(group)
        return password


class DemoRunner:
    """The demo's background half: simulator, seed data and worker, on Daphne's event loop."""

    def __init__(self, options: dict, password: str, stdout) -> None:
        self.options = options
        self.password = password
        self.stdout = stdout
        self.server = None
        self.simulator = None
        self.worker = None
        self.task: asyncio.Task | None = None

    def schedule(self) -> None:
        """Start the background half once the reactor's loop runs (Daphne's ready hook)."""
        from twisted.internet import defer, reactor

        loop = asyncio.get_event_loop()
        self.task = loop.create_task(self.start())
        reactor.addSystemEventTrigger(
            "before", "shutdown", lambda: defer.Deferred.fromFuture(asyncio.ensure_future(self.stop()))
        )

    async def start(self) -> None:
        """Start the simulator, seed the database, start the worker and print where to go."""
        from asgiref.sync import sync_to_async

        from streams.simulator.server import SimulatorServer
        from streams.worker import Worker

        try:
            self.simulator = SimulatorServer(
                port=self.options["sim_port"],
                queues=self.options["queues"],
                agents=self.options["agents"],
                rate=self.options["rate"],
                seed=self.options["seed"],
            )
            base_url = await self.simulator.start()
            await seed_demo(self.simulator, base_url)
            self.worker = Worker()
            asyncio.get_running_loop().create_task(self.worker.run(), name="worker")
        except Exception:
            log.exception("the demo could not start")
            from twisted.internet import reactor

            reactor.stop()
            return
        host, port = self.options["host"], self.options["port"]
        shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        board = await sync_to_async(_first_board_slug)()
        self.stdout.write(
            "\nFloorview demo is running.\n"
            f"  Board:     http://{shown_host}:{port}/boards/{board}/\n"
            f"  Admin:     http://{shown_host}:{port}/admin/\n"
            f"  Log in as: admin / {self.password}\n"
            f"  Simulator: {base_url} (truth at {base_url}/simulator/truth)\n"
            "Press Ctrl-C to stop.\n"
        )
        self.stdout.flush()

    async def stop(self) -> None:
        """Stop the worker (flushing updates) and the simulator."""
        if self.worker is not None:
            self.worker.stop()
            # Give the worker its chance to close sockets and flush.
            for _ in range(50):
                if not self.worker.connectors:
                    break
                await asyncio.sleep(0.05)
        if self.simulator is not None:
            await self.simulator.stop()


def _first_board_slug() -> str:
    from dashboard.models import Board

    board = Board.objects.order_by("pk").first()
    return board.slug if board else ""


async def seed_demo(simulator, base_url: str) -> None:
    """Point the demo connection at the simulator, import its queues, and make a board."""
    from asgiref.sync import sync_to_async

    from streams.queue_import import fetch_vendor_queues, save_imported_queues

    connection = await sync_to_async(_demo_connection)(simulator, base_url)
    vendor_queues = await fetch_vendor_queues(connection)
    await sync_to_async(save_imported_queues)(connection, vendor_queues)
    await sync_to_async(_demo_board)(connection)


def _demo_connection(simulator, base_url: str):
    from streams.models import Connection

    connection, _ = Connection.objects.get_or_create(
        name="Genesys demo (simulator)",
        defaults={"kind": Connection.Kind.GENESYS, "client_id": simulator.client_id},
    )
    connection.base_url = base_url
    connection.region = ""
    connection.client_id = simulator.client_id
    connection.enabled = True
    connection.set_client_secret(simulator.client_secret)
    connection.save()
    return connection


def _demo_board(connection) -> None:
    from dashboard.models import Board

    board, created = Board.objects.get_or_create(
        slug="contact-centre", defaults={"title": "Contact centre", "coalesce_ms": 250}
    )
    if created or not board.queues.exists():
        board.queues.set(connection.queues.all())
    board.groups.add(Group.objects.get(name="Supervisors"))
