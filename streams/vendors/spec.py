"""What a connector knows of one connection: the admin's settings, read once, with no database access."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from streams.feeds.mapping import FieldMapping, MappingError


@dataclass(frozen=True)
class ConnectionSpec:
    """Everything a connector needs to know about one connection (no database access).

    Fields past ``queue_ids`` matter to some kinds only (see ``streams.models.Connection``).
    """

    source: str
    kind: str
    api_base: str
    login_base: str
    client_id: str
    client_secret: str = field(repr=False)
    queue_ids: tuple[str, ...] = ()
    access_key_id: str = ""  # CXone
    access_key_secret: str = field(default="", repr=False)  # CXone
    api_version: str = ""  # CXone ("": its default)
    poll_interval: float = 5.0  # CXone
    stream_url: str = ""  # push and SSE feeds
    token_url: str = ""  # push and SSE feeds: client-credentials endpoint, "" for no token
    scope: str = ""
    mapping_json: str = "{}"  # feeds: the field mapping, as canonical JSON (hashable, comparable)
    max_frame_bytes: int = 1024 * 1024
    keepalive_seconds: float = 15.0  # SSE
    backoff_cap: float | None = None  # None: the connector's default
    slug: str = ""  # webhook
    webhook_secret: str = field(default="", repr=False)  # webhook

    @classmethod
    def from_connection(cls, connection: Any, queue_ids: tuple[str, ...] | list[str]) -> ConnectionSpec:
        """Return the spec of a ``streams.models.Connection`` watching QUEUE_IDS."""
        return cls(
            source=connection.source_key,
            kind=connection.kind,
            api_base=connection.api_base(),
            login_base=connection.login_base(),
            client_id=connection.client_id,
            client_secret=connection.client_secret if connection.client_secret_encrypted else "",
            queue_ids=tuple(queue_ids),
            access_key_id=connection.access_key_id,
            access_key_secret=connection.access_key_secret,
            api_version=connection.api_version,
            poll_interval=connection.poll_interval,
            stream_url=connection.stream_url,
            token_url=connection.token_url,
            scope=connection.scope,
            mapping_json=json.dumps(connection.field_mapping or {}, sort_keys=True),
            max_frame_bytes=connection.max_frame_bytes,
            keepalive_seconds=connection.keepalive_seconds,
            backoff_cap=connection.backoff_cap,
            slug=connection.slug or "",
            webhook_secret=connection.webhook_secret,
        )

    def mapping(self) -> FieldMapping:
        """Return the feed's field mapping (the admin validated it; a bad one falls back to the defaults)."""
        try:
            return FieldMapping.parse(json.loads(self.mapping_json))
        except (ValueError, MappingError):
            return FieldMapping()
