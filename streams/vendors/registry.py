"""Every kind of connection Floorview speaks, one entry each: adding a vendor is its package plus one line here.

The entries name their connector, queue import and unreported figures by dotted path: the model and
the admin read this registry, and must not pull in the network stack (aiohttp,
websockets) to learn a kind's label or settings.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from django.utils.module_loading import import_string

from streams.schema import QUEUE
from streams.vendors.cxone.settings import CxoneSettings
from streams.vendors.genesys.settings import GenesysSettings
from streams.vendors.push.settings import PushSettings
from streams.vendors.settings import KindSettings
from streams.vendors.sse.settings import SseSettings
from streams.vendors.webhook.settings import WebhookSettings

if TYPE_CHECKING:
    from streams.link.connector import Connector


@dataclass(frozen=True)
class Vendor:
    """One kind of connection: its label, settings, connector, queue import and the queue figures it never reports.

    ``queues`` is the dotted path of ``async fetch_queues(spec) -> [{"id", "name"}]``, or "" for a
    kind with no list of queues (a feed names its queues only in its records).
    """

    kind: str
    label: str
    settings: type[KindSettings]
    connector: str
    queues: str = ""
    # The dotted path of the queue figures this vendor's parsers never fill, declared beside them; "" = none.
    unreported: str = ""

    def connector_class(self) -> type[Connector]:
        """Return the connector class (imported on first use)."""
        return import_string(self.connector)

    @property
    def unreported_queue_fields(self) -> frozenset[str]:
        """Return the queue figures this vendor never reports (boards show "–"), with those counted from them."""
        return _unreported(self.unreported)

    def queue_import(self) -> Callable[[Any], Awaitable[list[dict]]] | None:
        """Return the kind's queue import, or None when it has none."""
        return import_string(self.queues) if self.queues else None


@cache
def _unreported(path: str) -> frozenset[str]:
    return QUEUE.unreported(import_string(path) if path else ())


_V = "streams.vendors"
VENDORS: dict[str, Vendor] = {
    v.kind: v
    for v in (
        Vendor(
            "genesys",
            "Genesys Cloud CX",
            GenesysSettings,
            f"{_V}.genesys.connector.GenesysConnector",
            f"{_V}.genesys.queues.fetch_queues",
        ),
        Vendor(
            "cxone",
            "NICE CXone",
            CxoneSettings,
            f"{_V}.cxone.connector.CxoneConnector",
            f"{_V}.cxone.queues.fetch_queues",
            f"{_V}.cxone.parsers.UNREPORTED_QUEUE_FIELDS",
        ),
        Vendor("push", "WebSocket push feed (JSON or MessagePack)", PushSettings, f"{_V}.push.connector.PushConnector"),
        Vendor("sse", "Server-Sent Events feed", SseSettings, f"{_V}.sse.connector.SseConnector"),
        Vendor(
            "webhook", "Webhook (the platform posts to us)", WebhookSettings, f"{_V}.webhook.connector.WebhookConnector"
        ),
    )
}


def vendor(kind: str) -> Vendor:
    """Return the entry of a connection KIND; refuse kinds nobody speaks."""
    try:
        return VENDORS[kind]
    except KeyError:
        raise ValueError(f"no connector for kind {kind!r}") from None


def connector_class(kind: str) -> type[Connector]:
    """Return the connector class for a connection KIND; refuse kinds nobody speaks."""
    return vendor(kind).connector_class()


def kind_choices() -> list[tuple[str, str]]:
    """Return the kinds as model choices (a callable, so a new kind needs no migration)."""
    return [(v.kind, v.label) for v in VENDORS.values()]
