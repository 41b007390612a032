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

    help = (
        "Run Floorview with the built-in simulator behind every kind of source (Genesys, CXone, "
        "push, SSE and webhook feeds), each on a board of its own: migrate, seed, serve."
    )

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
        # Twisted's asyncio reactor is installed already: the daphne app imports daphne.server at setup.
        # The demo serves with the production server class, body cap included (``manage.py serve``).
        from dashboard_project.asgi import application
        from dashboard_project.webserver import FloorviewServer

        call_command("migrate", interactive=False, verbosity=0)
        password = self._admin_password()
        host, port = options["host"], options["port"]
        self.runner = DemoRunner(options, password, self.stdout)
        server = FloorviewServer(
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

        from dashboard.worker import Worker
        from simulator.server import SimulatorServer

        try:
            self.simulator = SimulatorServer(
                port=self.options["sim_port"],
                queues=self.options["queues"],
                agents=self.options["agents"],
                rate=self.options["rate"],
                seed=self.options["seed"],
                # The push feed speaks MessagePack (binary frames); SSE and webhooks carry JSON.
                feed_format="msgpack",
            )
            base_url = await self.simulator.start()
            self.boards = await seed_demo(self.simulator, base_url, self._own_url())
            self.worker = Worker()
            asyncio.get_running_loop().create_task(self.worker.run(), name="worker")
        except Exception:
            log.exception("the demo could not start")
            from twisted.internet import reactor

            reactor.stop()
            return
        url = self._own_url()
        lines = ["", "Floorview demo is running."]
        for index, (title, slug) in enumerate(self.boards):
            label = "Board:" if index == 0 else ""
            lines.append(f"  {label:<10} {url}/boards/{slug}/  ({title})")
        lines += [
            f"  Admin:     {url}/admin/",
            f"  Log in as: admin / {self.password}",
            f"  Simulator: {base_url} (truth at {base_url}/simulator/truth)",
            "Press Ctrl-C to stop.",
            "",
        ]
        self.stdout.write("\n".join(lines))
        self.stdout.flush()

    def _own_url(self) -> str:
        host, port = self.options["host"], self.options["port"]
        shown_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        return f"http://[{shown_host}]:{port}" if ":" in shown_host else f"http://{shown_host}:{port}"

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


# The demo's boards: one per kind of source, so each protocol shows end to end.
DEMO_BOARDS = (
    ("genesys", "contact-centre", "Contact centre (Genesys Cloud)", ["queues", "agents"]),
    ("cxone", "cxone", "Contact centre (NICE CXone)", ["queues", "agents", "interactions"]),
    ("push", "push-feed", "Interactions (MessagePack push feed)", ["interactions"]),
    ("sse", "sse-feed", "Interactions (SSE feed)", ["interactions"]),
    ("webhook", "webhook-feed", "Webhooks (and Genesys via EventBridge)", ["queues", "agents", "interactions"]),
)  # fmt: skip

# The feeds' records carry a campaign id and, in their payload, its name: boards show the name.
FEED_MAPPING = {"campaign": "payload.campaign_name"}
WEBHOOK_SLUG = "demo-webhook"


async def seed_demo(simulator, base_url: str, own_url: str) -> list[tuple[str, str]]:
    """Point one connection of each kind at the simulator, give each its queues and a board; return the boards.

    Genesys and CXone import their queues from the simulator, as an admin's action would; the feeds
    get the model's queues (their records name them by id). The simulator posts webhooks to OWN_URL.
    """
    from asgiref.sync import sync_to_async

    from streams.queue_import import fetch_vendor_queues, save_imported_queues

    connections = await sync_to_async(_demo_connections)(simulator, base_url)
    webhook_secret = await sync_to_async(lambda: connections["webhook"].secret("webhook_secret"))()
    for kind in ("genesys", "cxone"):
        vendor_queues = await fetch_vendor_queues(connections[kind])
        await sync_to_async(save_imported_queues)(connections[kind], vendor_queues)
    model_queues = [{"id": q.id, "name": q.name} for q in simulator.model.queues.values()]
    for kind in ("push", "sse", "webhook"):
        await sync_to_async(save_imported_queues)(connections[kind], model_queues)
    boards = await sync_to_async(_demo_boards)(connections)
    simulator.webhooks.set_target(f"{own_url}/hooks/{WEBHOOK_SLUG}/", webhook_secret, eventbridge=True)
    return boards


def _demo_connections(simulator, base_url: str) -> dict:
    from streams.models import Connection

    ws_base = "ws" + base_url[4:]  # http → ws, https → wss
    settings = {
        "genesys": {"name": "Genesys demo (simulator)", "base_url": base_url},
        "cxone": {
            "name": "CXone demo (simulator)",
            "base_url": base_url,
            "access_key_id": simulator.cxone_access_key_id,
            "poll_interval": 2.0,
        },
        "push": {
            "name": "Push feed demo (simulator, MessagePack)",
            "stream_url": f"{ws_base}/feeds/push",
            "token_url": f"{base_url}/feeds/oauth/token",
            "scope": "feeds:read",
            "field_mapping": FEED_MAPPING,
        },
        "sse": {
            "name": "SSE feed demo (simulator)",
            "stream_url": f"{base_url}/feeds/sse",
            "token_url": f"{base_url}/feeds/oauth/token",
            "scope": "feeds:read",
            "field_mapping": FEED_MAPPING,
        },
        "webhook": {"name": "Webhook demo (simulator)", "slug": WEBHOOK_SLUG, "field_mapping": FEED_MAPPING},
    }
    connections = {}
    for kind, fields in settings.items():
        name = fields.pop("name")
        connection = Connection.objects.filter(kind=kind, name=name).first() or Connection(kind=kind, name=name)
        connection.settings = {**connection.settings, **fields}
        connection.enabled = True
        if kind != "webhook":
            connection.settings["client_id"] = simulator.client_id
            connection.set_secret("client_secret", simulator.client_secret)
        if kind == "cxone":
            connection.set_secret("access_key_secret", simulator.cxone_access_key_secret)
        if kind == "webhook" and not connection.has_secret("webhook_secret"):
            connection.set_secret("webhook_secret", secrets.token_urlsafe(24))
        connection.full_clean()
        connection.save()
        connections[kind] = connection
    return connections


def _demo_boards(connections: dict) -> list[tuple[str, str]]:
    from dashboard.models import Board

    supervisors = Group.objects.get(name="Supervisors")
    boards = []
    for kind, slug, title, panels in DEMO_BOARDS:
        board, created = Board.objects.get_or_create(slug=slug, defaults={"title": title, "panels": panels})
        if created or not board.queues.exists():
            board.queues.set(connections[kind].queues.all())
        board.groups.add(supervisors)
        boards.append((board.title, board.slug))
    return boards
