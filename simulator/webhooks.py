"""The simulator as a platform that posts to a webhook (``docs/protocols/generic.md``, webhook).

``WebhookSender`` posts the generic records of a ``RecordLog`` to a target
URL, batched per tick, as a real platform would:

- ``POST <url>`` with a JSON list, signed ``X-Floorview-Signature:
  sha256=<hex HMAC-SHA256 of the body>`` with the target's secret and stamped
  ``X-Floorview-Timestamp`` (epoch seconds);
- one delivery in flight at a time, so records arrive in order; a non-2xx
  reply is retried with jittered exponential backoff (honouring Retry-After),
  except a 4xx other than 429, which drops the batch as a real platform gives
  up on a request the receiver refused; a retry sends the same body (same
  record ids: the receiver acknowledges what it already has) signed anew;
- when a target is set, the live contacts are sent first as they stand (the
  receiver's first picture), then every change.

With ``eventbridge`` on, it also forwards Genesys notifications the way
Genesys' server-side integration does (through Amazon EventBridge and an API
destination): queue observation, queue membership and user activity topics
as the notification publisher (``genesys/topic_publisher.py``) builds them, each wrapped in
an EventBridge envelope.

Faults (``control/webhook_actions.py``) post odd deliveries beside the real stream, once
each: a duplicate of the last delivered batch, a forged signature, a stale
timestamp, an oversized body, a garbage body. Their replies are kept in
``describe()["probes"]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

import aiohttp

from simulator.genesys import payloads
from simulator.genesys.topic_publisher import TopicPublisher
from simulator.model import ContactCentreModel
from simulator.records import RecordLog
from simulator.timefmt import iso
from streams.hooks.signatures import signature
from streams.http_body import BodyTooLarge, read_body
from streams.retry_after import parse_retry_after

log = logging.getLogger(__name__)

BATCH_MAX = 500  # items per delivery
BATCH_BYTES = 256 * 1024  # a delivery stops growing past this (well under the receiver's default 1 MiB)
OUTBOX_MAX = 100_000  # items waiting while the receiver is away; the oldest go first beyond this
RETRY_FIRST = 0.5
RETRY_CAP = 30.0
MAX_RETRY_AFTER = 300.0
TIMEOUT = 10.0
REPLY_LIMIT = 64 * 1024  # the receiver's answer is a short status text
KEPT_BODIES = 20  # delivered bodies kept for the duplicate fault
# The Genesys org the envelopes name (EventBridge's partner event source ends in the org id and a suffix).
ORG_ID = "5e4c8a1e-7d1b-4f00-9a7e-00000000f10e"
EVENTBRIDGE_SOURCE = f"aws.partner/genesys.com/cloud/{ORG_ID}/floorview-simulator"
PROBES = ("duplicate", "forged_signature", "stale_timestamp", "oversized_body", "garbage_body")

# Topics forwarded through EventBridge, and their wildcard form (EventBridge's detail-type).
_FORWARDED = re.compile(
    r"^v2\.(analytics\.queues\.[^.]+\.observations|routing\.queues\.[^.]+\.users|users\.[^.?]+\.activity)$"
)
_TOPIC_ID = re.compile(r"^(v2\.(?:analytics\.queues|routing\.queues|users))\.[^.?]+")


def eventbridge_envelope(topic: str, body: dict[str, Any], now: float) -> dict[str, Any]:
    """Return a Genesys notification on TOPIC wrapped as Amazon EventBridge delivers it."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": _TOPIC_ID.sub(r"\1.{id}", topic),
        "source": EVENTBRIDGE_SOURCE,
        "account": "000000000000",
        "time": iso(now)[:19] + "Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "topicName": topic,
            "version": "2",
            "eventBody": body,
            "metadata": {"CorrelationId": str(uuid.uuid4())},
            "timestamp": iso(now),
        },
    }


class EventBridgeOutbox:
    """Stands in for the notification hub: what the topic publisher publishes goes out as EventBridge envelopes."""

    def __init__(self, put: Callable[[dict[str, Any]], None]) -> None:
        self._put = put

    def wants(self, topic: str) -> bool:
        """Return whether TOPIC is forwarded (queue observations and members, user activity)."""
        return bool(_FORWARDED.match(topic))

    def combined_topics(self, user_id: str) -> dict[str, frozenset[str]]:
        """Return no combined topics: the integration forwards the activity topic."""
        return {}

    def publish(self, topic: str, body: dict[str, Any], *, also: str | None = None) -> int:
        """Queue BODY on TOPIC for delivery; return 1."""
        self._put(eventbridge_envelope(topic, body, time.time()))
        return 1


class WebhookSender:
    """Post a RecordLog's records (and optionally Genesys notifications) to a webhook, as a platform would."""

    def __init__(
        self,
        records: RecordLog,
        *,
        tick: float = 0.1,
        analytics_min_interval: float = 1.0,
    ) -> None:
        self.records = records
        self.model: ContactCentreModel = records.model
        self.tick = tick
        # The first retry's wait (seconds; it doubles up to RETRY_CAP): tests shorten it.
        self.retry_first = RETRY_FIRST
        self.url = ""
        self._secret = ""
        self.eventbridge = False
        self._outbox: deque[str] = deque()  # items as JSON text, oldest first
        self._bodies: deque[bytes] = deque(maxlen=KEPT_BODIES)  # delivered bodies, for the duplicate fault
        self._probes: deque[str] = deque()
        self.probe_results: deque[dict[str, Any]] = deque(maxlen=50)
        self._generation = 0  # bumped by every change of target: a delivery to an old one is abandoned
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._http: aiohttp.ClientSession | None = None
        self._notifications = TopicPublisher(self.model, EventBridgeOutbox(self._put), analytics_min_interval)
        self._rng = random.Random()
        self.counters = {
            "batches": 0,  # deliveries acknowledged with 2xx
            "items": 0,  # items in them
            "retries": 0,
            "refused": 0,  # batches dropped after a 4xx other than 429
            "overflowed": 0,  # items dropped because the outbox was full
        }
        self.last_status: int | None = None
        self.last_error = ""
        records.listeners.append(self._on_record)

    # -- the operator's handles ------------------------------------------------------------

    def set_target(self, url: str, secret: str, *, eventbridge: bool = False) -> None:
        """Post to URL, signing with SECRET, from now on; the live contacts (and queues, agents) go first."""
        if not url.startswith(("http://", "https://")):
            raise ValueError("the webhook URL must be http:// or https://")
        if not secret:
            raise ValueError("a webhook needs a secret to sign with")
        self.url, self._secret, self.eventbridge = url, secret, eventbridge
        self._generation += 1
        self._outbox.clear()
        self._bodies.clear()
        for index, record in enumerate(self.records.current()):
            # current() states every live contact under the last record number: each needs an id of its own.
            self._put(record | {"id": f"{record['id']}-{index}"})
        if eventbridge:
            self._picture_as_notifications()
            if self._task is not None:
                self._notifications.start()
        else:
            self._notifications.stop()
        self._wake.set()
        log.info("simulator webhook: posting to %s%s", url, " (with EventBridge notifications)" if eventbridge else "")

    def clear_target(self) -> None:
        """Stop posting (what waits is dropped)."""
        self.url, self._secret, self.eventbridge = "", "", False
        self._generation += 1
        self._outbox.clear()
        self._notifications.stop()

    def probe(self, kind: str, count: int = 1) -> int:
        """Queue COUNT odd deliveries of KIND (see ``PROBES``), posted before the next batch; return how many."""
        if kind not in PROBES:
            raise ValueError(f"unknown probe {kind!r}; known: {', '.join(PROBES)}")
        if not self.url:
            raise ValueError("no webhook target is set")
        self._probes.extend([kind] * count)
        self._wake.set()
        return count

    def describe(self) -> dict[str, Any]:
        """Return the sender's state as plain data (never the secret)."""
        return {
            "target": self.url or None,
            "eventbridge": self.eventbridge,
            "outbox": len(self._outbox),
            "last_status": self.last_status,
            "last_error": self.last_error,
            "probes": list(self.probe_results),
            **self.counters,
        }

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Start posting from the running event loop."""
        if self._task is not None:
            return
        # Local traffic only: no proxy from the environment stands between the simulator and Floorview.
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT))
        self._task = asyncio.create_task(self._run(), name="simulator-webhook")
        if self.eventbridge:
            self._notifications.start()

    async def stop(self) -> None:
        """Stop posting and close the HTTP session (idempotent)."""
        self._notifications.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._http is not None:
            await self._http.close()
            self._http = None

    # -- what to send ----------------------------------------------------------------------------

    def _on_record(self, seq: int, record: dict[str, Any]) -> None:
        if self.url:
            self._put(record)

    def _put(self, item: dict[str, Any]) -> None:
        if not self.url:
            return
        if len(self._outbox) >= OUTBOX_MAX:
            self._outbox.popleft()
            self.counters["overflowed"] += 1
        self._outbox.append(json.dumps(item, separators=(",", ":")))
        self._wake.set()

    def _picture_as_notifications(self) -> None:
        """Queue every queue's figures and every agent's activity, as the notifications would state them."""
        now = time.time()
        for queue in self.model.queues.values():
            for body in [*payloads.instant_observation_bodies(self.model, queue), payloads.interval_body(queue)]:
                self._put(eventbridge_envelope(f"v2.analytics.queues.{queue.id}.observations", body, now))
        for agent in self.model.agents.values():
            self._put(eventbridge_envelope(f"v2.users.{agent.id}.activity", payloads.activity_body(agent), now))

    def _take_batch(self) -> bytes:
        texts: list[str] = []
        size = 2
        while self._outbox and len(texts) < BATCH_MAX:
            text = self._outbox[0]
            if texts and size + len(text) + 1 > BATCH_BYTES:
                break
            texts.append(self._outbox.popleft())
            size += len(text) + 1
        return ("[" + ",".join(texts) + "]").encode()

    # -- posting ---------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self.url and (self._probes or self._outbox):
                if self._probes:
                    await self._send_probe(self._probes.popleft())
                    continue
                # A tick's worth of changes goes in one delivery.
                await asyncio.sleep(self.tick)
                if not self.url or not self._outbox:
                    continue
                count = min(len(self._outbox), BATCH_MAX)
                body = self._take_batch()
                await self._deliver(body, count)

    async def _deliver(self, body: bytes, count: int) -> None:
        """Post BODY until it is acknowledged, refused, or the target changes."""
        generation = self._generation
        delay = self.retry_first
        while self.url and generation == self._generation:
            status, retry_after = await self._post(body)
            if status is not None and 200 <= status < 300:
                self.counters["batches"] += 1
                self.counters["items"] += count
                self._bodies.append(body)
                return
            if status is not None and 400 <= status < 500 and status != 429:
                self.counters["refused"] += 1
                log.warning("simulator webhook: the receiver refused a delivery with %d; dropping it", status)
                return
            self.counters["retries"] += 1
            wait = min(delay * self._rng.uniform(0.5, 1.5), RETRY_CAP)
            if retry_after is not None:
                wait = max(wait, min(retry_after, MAX_RETRY_AFTER))
            delay = min(delay * 2, RETRY_CAP)
            await asyncio.sleep(wait)

    async def _post(
        self, body: bytes, *, secret: str | None = None, stamp: float | None = None
    ) -> tuple[int | None, float | None]:
        """Post BODY signed (with SECRET, default the target's) and stamped; return (status, Retry-After)."""
        if self._http is None:
            return None, None
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "floorview-simulator",
            "X-Floorview-Timestamp": str(int(time.time() if stamp is None else stamp)),
            "X-Floorview-Signature": signature(self._secret if secret is None else secret, body),
        }
        try:
            async with self._http.post(self.url, data=body, headers=headers) as response:
                # The receiver's answer is not used; read (boundedly) so the connection can be reused.
                await read_body(response, REPLY_LIMIT)
                self.last_status, self.last_error = response.status, ""
                return response.status, parse_retry_after(response.headers.get("Retry-After"))
        except (aiohttp.ClientError, TimeoutError, OSError, BodyTooLarge) as exc:
            self.last_status, self.last_error = None, type(exc).__name__
            return None, None

    async def _send_probe(self, kind: str) -> None:
        """Post one odd delivery of KIND once (no retry) and keep the receiver's answer."""
        status: int | None
        if kind == "duplicate":
            if not self._bodies:
                self.probe_results.append({"probe": kind, "status": None, "detail": "nothing delivered yet"})
                return
            status, _ = await self._post(self._bodies[-1])
        elif kind == "forged_signature":
            status, _ = await self._post(self._fake_body(), secret="not-" + self._secret)
        elif kind == "stale_timestamp":
            status, _ = await self._post(self._fake_body(), stamp=time.time() - 600)
        elif kind == "oversized_body":
            status, _ = await self._post(self._fake_body(pad=2 * 1024 * 1024))
        else:  # garbage_body
            status, _ = await self._post(b"\x00\xffthis is not JSON{")
        self.probe_results.append({"probe": kind, "status": status})

    def _fake_body(self, pad: int = 0) -> bytes:
        """Return a delivery of one made-up contact: if it were ever applied, a row would show it."""
        queue_id = next(iter(self.model.queues), "")
        now_ms = round(time.time() * 1000)
        record: dict[str, Any] = {
            "id": f"probe-{uuid.uuid4()}",
            "type": "interaction.created",
            "timestamp": now_ms,
            "interaction_id": f"forged-{uuid.uuid4()}",
            "queue_id": queue_id,
            "state": "waiting",
            "payload": {"media": "voice", "started_at": now_ms},
        }
        if pad:
            record["payload"]["padding"] = "x" * pad
        return json.dumps([record]).encode()
