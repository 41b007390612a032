"""Which connector class speaks which vendor: adding a vendor is one file plus one line here."""

from __future__ import annotations

from streams.connectors.base import Connector
from streams.connectors.cxone import CxoneConnector
from streams.connectors.genesys import GenesysConnector
from streams.connectors.push import PushConnector
from streams.connectors.sse import SseConnector
from streams.connectors.webhook import WebhookConnector

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
