"""What a connector knows of one connection: the admin's settings, read once, with no database access."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streams.vendors.registry import vendor
from streams.vendors.settings import KindSettings


@dataclass(frozen=True)
class ConnectionSpec:
    """Everything a connector needs to know about one connection (no database access).

    The common fields, and ``settings``: the kind's own (``streams.vendors.<kind>.settings``),
    secrets included in plain text (never in a repr).
    """

    source: str
    kind: str
    settings: KindSettings
    queue_ids: tuple[str, ...] = ()
    backoff_cap: float | None = None  # None: the connector's default

    @classmethod
    def of(
        cls,
        kind: str,
        source: str = "c1",
        *,
        queue_ids: tuple[str, ...] | list[str] = (),
        backoff_cap: float | None = None,
        **settings: Any,
    ) -> ConnectionSpec:
        """Return the spec of a KIND of connection given its SETTINGS by name (the others at their defaults)."""
        return cls(source, kind, vendor(kind).settings(**settings), tuple(queue_ids), backoff_cap)

    @classmethod
    def from_connection(cls, connection: Any, queue_ids: tuple[str, ...] | list[str]) -> ConnectionSpec:
        """Return the spec of a ``streams.models.Connection`` watching QUEUE_IDS."""
        return cls(
            source=connection.source_key,
            kind=connection.kind,
            settings=connection.kind_settings(),
            queue_ids=tuple(queue_ids),
            backoff_cap=connection.backoff_cap,
        )
