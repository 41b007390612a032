"""What a Server-Sent Events feed is configured with: its address, an optional token, the mapping, the keepalive."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator

from streams.feeds.settings import MAPPING_FIELD, SIZE_LIMIT_FIELD, DialledFeedSettings
from streams.vendors.settings import setting


@dataclass(frozen=True)
class SseSettings(DialledFeedSettings):
    """An SSE feed: records as events on a long-lived HTTP response."""

    schemes: ClassVar[tuple[str, ...]] = ("http", "https")

    field_mapping: Mapping[str, Any] = setting(MAPPING_FIELD, default={})
    max_frame_bytes: int = setting(SIZE_LIMIT_FIELD, default=1024 * 1024)
    keepalive_seconds: float = setting(
        forms.FloatField(
            label="keepalive period (s)",
            validators=[MinValueValidator(1.0), MaxValueValidator(600.0)],
            help_text="How often the server sends a keepalive; twice this without a byte ends the stream.",
        ),
        default=15.0,
    )
