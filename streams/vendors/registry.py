"""Which connector class speaks which vendor: adding a vendor is one file plus one line here."""

from __future__ import annotations

from streams.link.connector import Connector
from streams.vendors.cxone.connector import CxoneConnector
from streams.vendors.genesys.connector import GenesysConnector
from streams.vendors.push.connector import PushConnector
from streams.vendors.sse.connector import SseConnector
from streams.vendors.webhook.connector import WebhookConnector

CONNECTORS: dict[str, type[Connector]] = {
    GenesysConnector.kind: GenesysConnector,
    CxoneConnector.kind: CxoneConnector,
    PushConnector.kind: PushConnector,
    SseConnector.kind: SseConnector,
    WebhookConnector.kind: WebhookConnector,
}


def connector_class(kind: str) -> type[Connector]:
    """Return the connector class for a connection KIND; refuse kinds nobody speaks."""
    try:
        return CONNECTORS[kind]
    except KeyError:
        raise ValueError(f"no connector for kind {kind!r}") from None
