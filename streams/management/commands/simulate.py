"""``python manage.py simulate``: the Genesys Cloud simulator on its own, until Ctrl-C or SIGTERM."""

from __future__ import annotations

import asyncio
import signal

from django.core.management.base import BaseCommand, CommandError

from streams.simulator.server import SimulatorServer


class Command(BaseCommand):
    """Run the Genesys Cloud simulator alone and print how to reach it."""

    help = "Run the Genesys Cloud simulator (OAuth, REST, notification sockets, /simulator/truth and /control)."

    def add_arguments(self, parser) -> None:
        """Declare the simulator's options."""
        parser.add_argument("--port", type=int, default=8765, help="Port to listen on (0: any free port).")
        parser.add_argument("--host", default="127.0.0.1", help="Interface to bind (default 127.0.0.1).")
        parser.add_argument("--client-id", default="floorview-demo", help="OAuth client id to accept.")
        parser.add_argument("--client-secret", default=None, help="OAuth client secret to accept (default: random).")
        parser.add_argument("--queues", type=int, default=4, help="Number of queues.")
        parser.add_argument("--agents", type=int, default=20, help="Number of agents.")
        parser.add_argument("--rate", type=float, default=0.5, help="New contacts per second across all queues.")
        parser.add_argument("--seed", type=int, default=1, help="Seed: the same seed gives the same ids and names.")
        parser.add_argument("--heartbeat", type=float, default=30.0, help="Socket heartbeat period in seconds.")
        parser.add_argument("--token-expires-in", type=int, default=86400, help="Token lifetime in seconds.")

    def handle(self, *args, **options) -> None:
        """Check the options, then serve until SIGINT or SIGTERM."""
        if options["queues"] < 1 or options["agents"] < 1:
            raise CommandError("--queues and --agents must be at least 1")
        if options["rate"] < 0 or options["heartbeat"] <= 0 or options["token_expires_in"] < 1:
            raise CommandError("--rate must be >= 0, --heartbeat and --token-expires-in > 0")
        server = SimulatorServer(
            host=options["host"],
            port=options["port"],
            client_id=options["client_id"],
            client_secret=options["client_secret"],
            queues=options["queues"],
            agents=options["agents"],
            rate=options["rate"],
            seed=options["seed"],
            heartbeat_period=options["heartbeat"],
            token_expires_in=options["token_expires_in"],
        )
        try:
            asyncio.run(self._run(server))
        except OSError as exc:
            raise CommandError(f"cannot listen on {options['host']}:{options['port']}: {exc}") from exc

    async def _run(self, server: SimulatorServer) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        base_url = await server.start()
        # The operator runs this to get these credentials: printing them to the terminal is the point.
        self.stdout.write(
            "Genesys simulator running.\n"
            f"  Base URL:      {base_url}\n"
            f"  Client id:     {server.client_id}\n"
            f"  Client secret: {server.client_secret}\n"
            f"  Truth:         {base_url}/simulator/truth\n"
            f"  Control:       {base_url}/simulator/control\n"
            "Press Ctrl-C to stop."
        )
        self.stdout.flush()
        try:
            await stop.wait()
        finally:
            await server.stop()
            self.stdout.write("Simulator stopped.")
