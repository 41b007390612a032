"""Settings the generic feeds share: the field mapping, the size limit and, for feeds we dial, address and token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator, URLValidator

from streams.feeds.mapping import FieldMapping, MappingError
from streams.vendors.settings import KindSettings, SettingsInvalid, secret, setting

# The admin's fields for the settings every feed has (declared by each kind as
# ``setting(MAPPING_FIELD, default={})`` and ``setting(SIZE_LIMIT_FIELD, default=1024 * 1024)``).
MAPPING_FIELD = forms.JSONField(
    required=False,
    help_text="Which record field holds what, as dotted paths, e.g. "
    '{"queue_id": "payload.queue.id", "terminal_types": ["interaction.ended"]}. '
    "Blank fields use the standard names (see the README's field mapping section).",
)
SIZE_LIMIT_FIELD = forms.IntegerField(
    label="size limit (bytes)",
    validators=[MinValueValidator(1024), MaxValueValidator(64 * 1024 * 1024)],
    help_text="Frames and webhook bodies above this size are refused without being decoded.",
)


@dataclass(frozen=True)
class FeedSettings(KindSettings):
    """A feed of generic records: subclasses declare ``field_mapping`` and ``max_frame_bytes``."""

    def mapping(self) -> FieldMapping:
        """Return the feed's field mapping (the admin checked it; a bad one falls back to the defaults)."""
        try:
            return FieldMapping.parse(self.field_mapping)
        except MappingError:
            return FieldMapping()

    def errors(self) -> dict[str, str]:
        """Return what is wrong with these settings, by name (subclasses add their own)."""
        try:
            FieldMapping.parse(self.field_mapping)
        except MappingError as exc:
            return {"field_mapping": str(exc)}
        return {}

    def check(self) -> FeedSettings:
        errors = self.errors()
        if errors:
            raise SettingsInvalid(errors)
        return self


@dataclass(frozen=True)
class DialledFeedSettings(FeedSettings):
    """A feed we connect to: its address and, when it wants a bearer token, the client-credentials client."""

    # The address schemes this kind of feed is reached by.
    schemes: ClassVar[tuple[str, ...]] = ()

    stream_url: str = setting(
        forms.CharField(
            label="stream URL",
            max_length=500,
            required=False,
            validators=[URLValidator(schemes=["ws", "wss", "http", "https"])],
            help_text="Push feeds: the ws:// or wss:// address. SSE feeds: the event-stream address.",
        )
    )
    token_url: str = setting(
        forms.URLField(
            label="token URL",
            max_length=500,
            required=False,
            help_text="The OAuth client-credentials token endpoint (blank: no token).",
        )
    )
    client_id: str = setting(
        forms.CharField(
            label="OAuth client id",
            max_length=200,
            required=False,
            help_text="The client-credentials client (blank when the feed needs no token).",
        )
    )
    client_secret: str = secret("OAuth client secret", "The secret of the OAuth client above.")
    scope: str = setting(forms.CharField(max_length=200, required=False, help_text="The OAuth scope to ask for."))

    def errors(self) -> dict[str, str]:
        errors = super().errors()
        if not self.stream_url:
            errors["stream_url"] = "Give the feed's address."
        elif self.stream_url.split(":", 1)[0].lower() not in self.schemes:
            errors["stream_url"] = f"This kind of feed needs a {' or '.join(self.schemes)} address."
        return errors

    def needed_secrets(self) -> tuple[str, ...]:
        return ("client_secret",) if self.token_url else ()

    def endpoint(self) -> str:
        return self.stream_url.split("?", 1)[0] or "—"
