"""SimulatorServer: every vendor's stand-in on one port, inside any running asyncio loop.

It wires the contact-centre model, the notification hub, the topic publisher,
the Genesys API and the CXone API (``cxone/``) into one aiohttp application,
ticks the model, and adds two local endpoints without auth:
``GET /simulator/truth`` (the ground truth, compared field by field with the
Floor by the convergence tests) and ``/simulator/control`` (actions and
faults, see ``control/``).

The generic push and SSE feeds (``feeds/``) share the port, fed by one
``RecordLog`` (``self.records``) that every generic feed uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import socket
import time
from dataclasses import asdict
from typing import Any

import aiohttp
from aiohttp import web

from simulator import control
from simulator.cxone.api import CxoneApi
from simulator.faults import Faults
from simulator.feeds.servers import FeedOptions, FeedServers
from simulator.genesys.api import GenesysApi
from simulator.genesys.channels import Hub
from simulator.genesys.socket_control import SOCKET_CLOSING_DELAY
from simulator.genesys.topic_publisher import TopicPublisher
from simulator.model import ContactCentreModel, ModelConfig
from simulator.records import RecordLog
from simulator.tokens import RateLimiter, TokenStore
from simulator.webhooks import WebhookSender

log = logging.getLogger(__name__)

# Channels and tokens are swept this often; nothing depends on it being exact.
SWEEP_EVERY = 5.0


class SimulatorServer:
    """Run the Genesys Cloud simulator: model, OAuth, REST, notification sockets, truth and control."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        client_id: str = "floorview-demo",
        client_secret: str | None = None,
        queues: int = 4,
        agents: int = 20,
        rate: float = 0.5,
        seed: int = 1,
        heartbeat_period: float = 30.0,
        token_expires_in: int = 86400,
        rate_limit_per_minute: int = 300,
        analytics_min_interval: float = 1.0,
        tick: float = 0.1,
        feed_format: str = "json",
        feed_keepalive: float = 15.0,
        feed_retry_ms: int | None = 1000,
        feed_line_end: str = "\n",
        feed_health_every: float = 5.0,
        cxone_access_key_id: str = "floorview-demo-key",
        cxone_access_key_secret: str | None = None,
        cxone_token_expires_in: int = 3600,
        webhook_url: str = "",
        webhook_secret: str = "",
        webhook_eventbridge: bool = False,
        **model_options: Any,
    ) -> None:
        """Build the simulator; MODEL_OPTIONS go to ``ModelConfig`` (handle_mean, patience_mean, ...).

        CXone signs in with the same OAuth client plus the access key CXONE_ACCESS_KEY_ID/SECRET.
        """
        self.host = host
        self.port = port
        self.client_id = client_id
        self.client_secret = client_secret if client_secret is not None else secrets.token_urlsafe(24)
        self.tick = tick
        self.base_url = ""
        config = ModelConfig(queues=queues, agents=agents, rate=rate, seed=seed, **model_options)
        self.model = ContactCentreModel(config)
        self.hub = Hub(heartbeat_period=heartbeat_period)
        self.token_expires_in = token_expires_in
        self.tokens = TokenStore({client_id: self.client_secret}, token_expires_in)
        self.limiter = RateLimiter(rate_limit_per_minute)
        self.faults = Faults()
        self.api = GenesysApi(self.model, self.hub, self.tokens, self.limiter, self.faults)
        self.cxone_access_key_id = cxone_access_key_id
        # CXone access key secrets are base64 text and may end in "=": the default does too.
        self.cxone_access_key_secret = (
            cxone_access_key_secret if cxone_access_key_secret is not None else secrets.token_urlsafe(30) + "="
        )
        self.cxone = CxoneApi(
            self.model,
            self.faults,
            client_id=client_id,
            client_secret=self.client_secret,
            access_keys={cxone_access_key_id: self.cxone_access_key_secret},
            token_expires_in=cxone_token_expires_in,
        )
        self.publisher = TopicPublisher(self.model, self.hub, analytics_min_interval)
        # One numbered record log per server, shared by the generic feeds (push, SSE, webhooks).
        self.records = RecordLog(self.model)
        # The push and SSE feeds (FEED_* options: push frame format, SSE keepalive, retry and line ends).
        feed_options = FeedOptions(feed_format, feed_health_every, feed_keepalive, feed_retry_ms, feed_line_end)
        self.feeds = FeedServers(self.records, self.tokens, self.faults, feed_options)
        # The webhook sender posts the same records to Floorview (to webhook_url, signed with webhook_secret;
        # with webhook_eventbridge, Genesys notifications too); the control action webhook_target moves it.
        self.webhooks = WebhookSender(self.records, tick=tick, analytics_min_interval=analytics_min_interval)
        if webhook_url:
            self.webhooks.set_target(webhook_url, webhook_secret, eventbridge=webhook_eventbridge)
        self._runner: web.AppRunner | None = None
        self._ticker: asyncio.Task | None = None
        self._stopped = False
        # Second sockets opened on channels by the kick_socket fault (see ``kick``).
        self._intruders: set[asyncio.Task] = set()

    # -- lifecycle ----------------------------------------------------------

    async def start(self) -> str:
        """Bind (port 0: any free port), start ticking the model, and return the base URL."""
        if self._runner is not None:
            return self.base_url
        app = web.Application()
        self.api.install(app)
        self.cxone.install(app)
        self.feeds.install(app)
        app.router.add_get("/simulator/truth", self._truth_view)
        app.router.add_get("/simulator/control", self._control_list_view)
        app.router.add_post("/simulator/control", self._control_view)
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        sock = socket.create_server((self.host, self.port), family=_family(self.host))
        site = web.SockSite(runner, sock)
        await site.start()
        self._runner = runner
        self.port = sock.getsockname()[1]
        shown = "127.0.0.1" if self.host in ("", "0.0.0.0") else ("::1" if self.host == "::" else self.host)
        self.base_url = f"http://[{shown}]:{self.port}" if ":" in shown else f"http://{shown}:{self.port}"
        self.publisher.start()
        self.webhooks.start()
        self._stopped = False
        self._ticker = asyncio.create_task(self._tick_forever(), name="simulator-tick")
        log.info("simulator listening on %s (Genesys, CXone, push, SSE; webhooks out)", self.base_url)
        return self.base_url

    async def stop(self) -> None:
        """Stop ticking, close every socket and the listener (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        self.publisher.stop()
        await self.webhooks.stop()
        await self._end_intruders()
        self.hub.close_all(1001, "simulator stopping")
        await self.feeds.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _tick_forever(self) -> None:
        last_sweep = time.monotonic()
        while True:
            try:
                self.model.step()
                if time.monotonic() - last_sweep >= SWEEP_EVERY:
                    last_sweep = time.monotonic()
                    self.hub.sweep()
                    self.tokens.sweep()
            except Exception:
                # The demo must keep running: log, and try again on the next tick.
                log.exception("simulator tick failed")
            await asyncio.sleep(self.tick)

    # -- the operator's handles -----------------------------------------------

    def truth(self) -> dict[str, Any]:
        """Return the ground truth (``GET /simulator/truth``): model state plus channels."""
        return self.model.truth() | {"channels": self.hub.channels_truth(), "sockets": self.hub.sockets_truth()}

    def pause(self) -> None:
        """Freeze the model (sockets, heartbeats and REST keep working)."""
        self.model.pause()

    def resume(self) -> None:
        """Unfreeze the model."""
        self.model.resume()

    def socket_closing(self, channel_id: str | None = None, delay: float = SOCKET_CLOSING_DELAY) -> int:
        """Warn sockets with ``v2.system.socket_closing`` and close them after DELAY; return how many."""
        return self.hub.socket_closing(channel_id, delay)

    def settings(self) -> dict[str, Any]:
        """Return the faults in force and what the API counted (listed by ``GET /simulator/control``)."""
        return {
            "faults": self.faults.describe(),
            "stalled_sockets": sum(s.stalled() for s in self.hub.sessions()),
            "intruders": len(self._intruders),
            "token_lifetime": self.tokens.expires_in,
            "counters": asdict(self.api.counters) | {"channels_created": self.hub.channels_created},
            "feeds": self.feeds.describe(),
            "cxone": self.cxone.settings(),
            "webhook": self.webhooks.describe(),
        }

    def go_unreachable(self, seconds: float | None) -> int:
        """Drop every socket and cut every new connection for SECONDS (None: until cleared); return drops."""
        self.faults.make_unreachable(seconds)
        sessions = self.hub.sessions()
        for session in sessions:
            session.abort()
        return len(sessions) + self.feeds.drop(None)

    def kick(self, channel_id: str | None, hold: float) -> int:
        """Open a second socket on each channel with an open socket (the first closes with 1000).

        The intruder reads and discards what it gets for HOLD seconds, then
        closes; ``clear`` and ``stop`` end it sooner. Return how many were opened.
        """
        sessions = self.hub.sessions(channel_id)
        for session in sessions:
            task = asyncio.create_task(self._intrude(session.channel.connect_uri, hold), name="simulator-intruder")
            self._intruders.add(task)
            task.add_done_callback(self._intruders.discard)
        return len(sessions)

    async def _intrude(self, uri: str, hold: float) -> None:
        try:
            async with aiohttp.ClientSession() as http, http.ws_connect(uri) as ws:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(hold):
                        async for _ in ws:
                            pass
        except aiohttp.ClientError as exc:
            log.info("simulator: the second socket could not connect (%s)", exc)

    async def _end_intruders(self) -> None:
        for task in list(self._intruders):
            task.cancel()
        await asyncio.gather(*self._intruders, return_exceptions=True)

    def clear_faults(self) -> None:
        """Disarm every fault: HTTP faults, outages, stalls, intruders, and the token lifetime."""
        self.faults.clear()
        self.hub.unstall_all()
        self.tokens.set_lifetime(self.token_expires_in)
        self.feeds.clear()
        self.cxone.clear_faults()
        for task in list(self._intruders):
            task.cancel()

    # -- local endpoints ----------------------------------------------------------

    async def _truth_view(self, request: web.Request) -> web.Response:
        return web.json_response(self.truth())

    async def _control_list_view(self, request: web.Request) -> web.Response:
        return web.json_response(control.describe() | {"settings": self.settings()})

    async def _control_view(self, request: web.Request) -> web.Response:
        try:
            payload = await request.json(loads=json.loads)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return web.json_response({"ok": False, "error": "the body is not valid JSON"}, status=400)
        try:
            reply = control.dispatch(self, payload)
        except control.ControlError as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=400)
        return web.json_response(reply)


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET
