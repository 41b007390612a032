"""What a Genesys Cloud connection is configured with: a region (or a base URL) and an OAuth client."""

from __future__ import annotations

from dataclasses import dataclass

from django import forms

from streams.vendors.settings import KindSettings, SettingsInvalid, secret, setting

GENESYS_REGIONS = {
    "us-east-1": "mypurecloud.com",
    "us-east-2": "use2.us-gov-pure.cloud",
    "us-west-2": "usw2.pure.cloud",
    "ca-central-1": "cac1.pure.cloud",
    "eu-west-1": "mypurecloud.ie",
    "eu-west-2": "euw2.pure.cloud",
    "eu-central-1": "mypurecloud.de",
    "eu-central-2": "euc2.pure.cloud",
    "ap-southeast-2": "mypurecloud.com.au",
    "ap-northeast-1": "mypurecloud.jp",
    "ap-northeast-2": "apne2.pure.cloud",
    "ap-south-1": "aps1.pure.cloud",
    "sa-east-1": "sae1.pure.cloud",
    "me-central-1": "mec1.pure.cloud",
}
REGION_CHOICES = [("", "---------"), *sorted((r, f"{r} ({d})") for r, d in GENESYS_REGIONS.items())]


@dataclass(frozen=True)
class GenesysSettings(KindSettings):
    """A Genesys Cloud org: where it lives and the OAuth client (client credentials) that reads it."""

    region: str = setting(
        forms.ChoiceField(
            choices=REGION_CHOICES, required=False, help_text="The org's region. Leave blank when a base URL is given."
        )
    )
    base_url: str = setting(
        forms.URLField(
            label="Base URL",
            required=False,
            help_text="Overrides the region: one URL serving login, API and streaming "
            "(the built-in simulator, or a proxy), e.g. http://127.0.0.1:8765",
        )
    )
    client_id: str = setting(
        forms.CharField(
            label="OAuth client id", max_length=200, required=False, help_text="The API application's client id."
        )
    )
    client_secret: str = secret("OAuth client secret", "The secret of the OAuth client above.")

    def check(self) -> GenesysSettings:
        errors = {}
        if not self.region and not self.base_url:
            errors["region"] = "Give either a region or a base URL."
        elif self.region and not self.base_url and self.region not in GENESYS_REGIONS:
            errors["region"] = "Pick one of Genesys Cloud's regions."
        if not self.client_id:
            errors["client_id"] = "Give the OAuth client id."
        if errors:
            raise SettingsInvalid(errors)
        return self

    @property
    def api_base(self) -> str:
        """Return the REST API base URL (no trailing slash)."""
        if self.base_url:
            return self.base_url.rstrip("/")
        return f"https://api.{GENESYS_REGIONS[self.region]}"

    @property
    def login_base(self) -> str:
        """Return the OAuth login base URL (no trailing slash)."""
        if self.base_url:
            return self.base_url.rstrip("/")
        return f"https://login.{GENESYS_REGIONS[self.region]}"

    def endpoint(self) -> str:
        if self.base_url:
            return self.base_url
        return dict(REGION_CHOICES).get(self.region) or "—"
