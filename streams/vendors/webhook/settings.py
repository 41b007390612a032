"""What a webhook is configured with: the slug the platform posts to, its signing secret, the field mapping."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django import forms

from streams.feeds.settings import MAPPING_FIELD, SIZE_LIMIT_FIELD, FeedSettings
from streams.vendors.settings import secret, setting


@dataclass(frozen=True)
class WebhookSettings(FeedSettings):
    """A webhook: the platform posts signed records to ``/hooks/<slug>/``."""

    slug: str = setting(
        forms.SlugField(
            label="webhook slug", max_length=100, required=False, help_text="The platform posts to /hooks/<slug>/."
        )
    )
    webhook_secret: str = secret("webhook secret", "The shared secret the platform signs each body with (HMAC-SHA256).")
    field_mapping: Mapping[str, Any] = setting(MAPPING_FIELD, default={})
    max_frame_bytes: int = setting(SIZE_LIMIT_FIELD, default=1024 * 1024)

    def errors(self) -> dict[str, str]:
        errors = super().errors()
        if not self.slug:
            errors["slug"] = "Give the slug the platform posts to."
        return errors

    def endpoint(self) -> str:
        return f"/hooks/{self.slug}/" if self.slug else "—"
