"""What a WebSocket push feed is configured with: its ws:// address, an optional token, the field mapping."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from streams.feeds.settings import MAPPING_FIELD, SIZE_LIMIT_FIELD, DialledFeedSettings
from streams.vendors.settings import setting


@dataclass(frozen=True)
class PushSettings(DialledFeedSettings):
    """A push feed: records over a WebSocket (JSON or MessagePack)."""

    schemes: ClassVar[tuple[str, ...]] = ("ws", "wss")

    field_mapping: Mapping[str, Any] = setting(MAPPING_FIELD, default={})
    max_frame_bytes: int = setting(SIZE_LIMIT_FIELD, default=1024 * 1024)
