"""What a NICE CXone connection is configured with: the API application, an access key, the API version, the poll."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator

from streams.vendors.cxone.values import DEFAULT_API_VERSION, ParseError, api_version
from streams.vendors.settings import KindSettings, SettingsInvalid, secret, setting

# NICE CXone's commercial sign-in host; the government cloud is given as a base URL instead.
CXONE_AUTH_BASE = "https://cxone.niceincontact.com"


@dataclass(frozen=True)
class CxoneSettings(KindSettings):
    """A CXone tenant: the sign-in host, the application's client, the API user's access key, how often to poll."""

    base_url: str = setting(
        forms.URLField(
            label="Base URL",
            required=False,
            help_text="The sign-in host (default the commercial cloud; the government cloud is "
            "https://cxone-gov.niceincontact.com). The built-in simulator: its address.",
        )
    )
    client_id: str = setting(
        forms.CharField(
            label="OAuth client id", max_length=200, required=False, help_text="The API application's client id."
        )
    )
    client_secret: str = secret("OAuth client secret", "The secret of the OAuth client above.")
    # CXone signs in with an access key (password grant) on top of the application's client.
    access_key_id: str = setting(
        forms.CharField(
            label="access key id", max_length=200, required=False, help_text="The access key id of the API user."
        )
    )
    access_key_secret: str = secret("access key secret", "The access key's secret.")
    api_version: str = setting(
        forms.CharField(
            label="API version",
            max_length=10,
            required=False,
            help_text="The inContactAPI version, e.g. v31.0.",
        ),
        default=DEFAULT_API_VERSION,
    )
    poll_interval: float = setting(
        forms.FloatField(
            label="poll interval (s)",
            validators=[MinValueValidator(1.0), MaxValueValidator(300.0)],
            help_text="How often the real-time API is polled (at least 1 s; NICE polls every 5 s).",
        ),
        default=5.0,
    )

    def check(self) -> CxoneSettings:
        errors = {}
        if not self.client_id:
            errors["client_id"] = "Give the OAuth client id."
        if not self.access_key_id:
            errors["access_key_id"] = "CXone signs in with an access key: give its id."
        try:
            # Stored as CXone's paths spell it ("31" and "v31" are v31.0).
            version = api_version(self.api_version)
        except ParseError:
            errors["api_version"] = "Give an API version such as v31.0."
        if errors:
            raise SettingsInvalid(errors)
        return dataclasses.replace(self, api_version=version)

    @property
    def login_base(self) -> str:
        """Return the sign-in host (no trailing slash); the API's own address is discovered at sign-in."""
        return self.base_url.rstrip("/") if self.base_url else CXONE_AUTH_BASE

    def endpoint(self) -> str:
        return self.base_url or "—"
