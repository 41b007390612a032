"""``python manage.py simulate``: the vendor simulator on its own, until Ctrl-C or SIGTERM.

One port serves every source Floorview speaks, over one contact-centre model:
Genesys Cloud, NICE CXone, the generic push and SSE feeds, and a webhook
sender that posts to a Floorview of your choice.
"""

from __future__ import annotations

import asyncio
import json
import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from simulator import control
from simulator.server import SimulatorServer


def parse_fault(text: str) -> dict[str, Any]:
    """Return the control payload of ``--fault NAME[:key=value,...]`` (values read as JSON when they parse)."""
    name, _, rest = text.partition(":")
    payload: dict[str, Any] = {"fault": name.strip()}
    for pair in filter(None, (part.strip() for part in rest.split(","))):
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise CommandError(f"--fault {text!r}: expected NAME:key=value,...")
        try:
            payload[key.strip()] = json.loads(raw)
        except ValueError:
            payload[key.strip()] = raw
    return payload


class Command(BaseCommand):
    """Run the simulator alone and print how to reach each source."""

    help = (
        "Run the simulator: Genesys Cloud (OAuth, REST, notification sockets), NICE CXone (sign-in, discovery, "
        "real-time polling), push and SSE feeds, a webhook sender, /simulator/truth and /simulator/control."
    )

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
        parser.add_argument(
            "--token-expires-in", "--token-lifetime", type=int, default=86400, help="Token lifetime in seconds."
        )
        parser.add_argument(
            "--cxone-access-key-id", default="floorview-demo-key", help="CXone access key id to accept."
        )
        parser.add_argument(
            "--cxone-access-key-secret", default=None, help="CXone access key secret to accept (default: random)."
        )
        parser.add_argument(
            "--feed-format",
            default="json",
            choices=("json", "msgpack", "mixed"),
            help="Push feed frames: JSON text, MessagePack binary, or mixed (with JSON health checks as binary).",
        )
        parser.add_argument("--feed-keepalive", type=float, default=15.0, help="SSE keepalive comment period (s).")
        parser.add_argument(
            "--webhook-url", default="", help="Post webhook records here, e.g. http://host/hooks/slug/."
        )
        parser.add_argument("--webhook-secret", default="", help="Secret to sign webhook bodies with.")
        parser.add_argument(
            "--webhook-eventbridge",
            action="store_true",
            help="Also post Genesys notifications in Amazon EventBridge envelopes.",
        )
        parser.add_argument(
            "--fault",
            action="append",
            default=[],
            metavar="NAME[:key=value,...]",
            help="Arm a fault at start (repeatable), e.g. --fault stall or "
            "--fault rest_error:status=429,retry_after=5,path=/oauth/token. GET /simulator/control lists them.",
        )

    def handle(self, *args, **options) -> None:
        """Check the options, then serve until SIGINT or SIGTERM."""
        if options["queues"] < 1 or options["agents"] < 1:
            raise CommandError("--queues and --agents must be at least 1")
        if options["rate"] < 0 or options["heartbeat"] <= 0 or options["token_expires_in"] < 1:
            raise CommandError("--rate must be >= 0, --heartbeat and --token-expires-in > 0")
        if options["webhook_url"] and not options["webhook_secret"]:
            raise CommandError("--webhook-url needs --webhook-secret: the sender signs every body")
        faults = [parse_fault(text) for text in options["fault"]]
        unknown = [f["fault"] for f in faults if f["fault"] not in control.FAULTS]
        if unknown:
            raise CommandError(f"unknown fault {unknown[0]!r}; known: {', '.join(control.FAULTS)}")
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
            cxone_access_key_id=options["cxone_access_key_id"],
            cxone_access_key_secret=options["cxone_access_key_secret"],
            feed_format=options["feed_format"],
            feed_keepalive=options["feed_keepalive"],
            webhook_url=options["webhook_url"],
            webhook_secret=options["webhook_secret"],
            webhook_eventbridge=options["webhook_eventbridge"],
        )
        try:
            asyncio.run(self._run(server, faults))
        except OSError as exc:
            raise CommandError(f"cannot listen on {options['host']}:{options['port']}: {exc}") from exc

    async def _run(self, server: SimulatorServer, faults: list[dict[str, Any]]) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        base_url = await server.start()
        try:
            for payload in faults:
                control.dispatch(server, payload)
        except control.ControlError as exc:
            await server.stop()
            raise CommandError(f"--fault {payload['fault']}: {exc}") from None
        # The operator runs this to get these credentials: printing them to the terminal is the point.
        ws_base = "ws" + base_url[4:]
        webhook = server.webhooks.url or "not sending (--webhook-url, or the control action webhook_target)"
        self.stdout.write(
            "Simulator running.\n"
            f"  Base URL:      {base_url}\n"
            f"  Client id:     {server.client_id}\n"
            f"  Client secret: {server.client_secret}\n"
            f"  CXone key:     {server.cxone_access_key_id} / {server.cxone_access_key_secret}\n"
            f"  Push feed:     {ws_base}/feeds/push   (token: {base_url}/feeds/oauth/token, scope feeds:read)\n"
            f"  SSE feed:      {base_url}/feeds/sse\n"
            f"  Webhooks to:   {webhook}\n"
            f"  Truth:         {base_url}/simulator/truth\n"
            f"  Control:       {base_url}/simulator/control\n"
            + "".join(f"  Fault armed:   {payload}\n" for payload in faults)
            + "Press Ctrl-C to stop."
        )
        self.stdout.flush()
        try:
            await stop.wait()
        finally:
            await server.stop()
            self.stdout.write("Simulator stopped.")
