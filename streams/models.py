"""Vendor connections and their queues, as configured in the admin."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from streams import crypto

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


class Connection(models.Model):
    """A connection to one vendor platform (one OAuth client)."""

    class Kind(models.TextChoices):
        GENESYS = "genesys", "Genesys Cloud CX"

    class Status(models.TextChoices):
        UNKNOWN = "unknown", "Unknown"
        CONNECTING = "connecting", "Connecting"
        LIVE = "live", "Live"
        DEGRADED = "degraded", "Degraded"
        RECONNECTING = "reconnecting", "Reconnecting"
        AUTH_FAILED = "auth_failed", "Auth failed"
        DISABLED = "disabled", "Disabled"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.GENESYS)
    region = models.CharField(
        max_length=30,
        blank=True,
        choices=sorted((r, f"{r} ({d})") for r, d in GENESYS_REGIONS.items()),
        help_text="The vendor region. Leave blank when a base URL is given.",
    )
    base_url = models.URLField(
        blank=True,
        help_text="Overrides the region: one URL serving login, API and streaming "
        "(the built-in simulator, or a proxy), e.g. http://127.0.0.1:8765",
    )
    client_id = models.CharField("OAuth client id", max_length=200)
    client_secret_encrypted = models.TextField(blank=True, editable=False)
    enabled = models.BooleanField(default=True, help_text="Disabled connections are not streamed.")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.UNKNOWN, editable=False)
    status_detail = models.CharField(max_length=300, blank=True, editable=False)
    status_changed_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def source_key(self) -> str:
        """Return the key that names this connection's data on the Floor."""
        return f"c{self.pk}"

    @property
    def client_secret(self) -> str:
        """Return the decrypted OAuth client secret."""
        return crypto.decrypt(self.client_secret_encrypted)

    def set_client_secret(self, secret: str) -> None:
        """Store SECRET encrypted; the plaintext is never saved."""
        self.client_secret_encrypted = crypto.encrypt(secret)

    def clean(self) -> None:
        if not self.region and not self.base_url:
            raise ValidationError("Give either a region or a base URL.")

    def api_base(self) -> str:
        """Return the REST API base URL (no trailing slash)."""
        if self.base_url:
            return self.base_url.rstrip("/")
        return f"https://api.{GENESYS_REGIONS[self.region]}"

    def login_base(self) -> str:
        """Return the OAuth login base URL (no trailing slash)."""
        if self.base_url:
            return self.base_url.rstrip("/")
        return f"https://login.{GENESYS_REGIONS[self.region]}"

    def record_status(self, status: str, detail: str = "") -> None:
        """Save a new status (called by the worker)."""
        Connection.objects.filter(pk=self.pk).update(
            status=status, status_detail=detail[:300], status_changed_at=timezone.now()
        )


class Queue(models.Model):
    """A vendor queue (or skill) that boards can show."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="queues")
    vendor_id = models.CharField("vendor id", max_length=100, help_text="The queue's id at the vendor.")
    name = models.CharField(max_length=200)
    sl_target_percent = models.PositiveSmallIntegerField(
        "service level target (%)",
        default=80,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="Share of contacts to answer within the threshold, e.g. 80 for 80% in 20 s.",
    )
    sl_target_seconds = models.PositiveIntegerField(
        "service level threshold (s)", default=20, help_text="Answer-time threshold, e.g. 20 for 80% in 20 s."
    )
    waiting_warning = models.PositiveIntegerField(
        default=5, help_text="Contacts waiting at or above which the queue shows a warning."
    )
    waiting_alert = models.PositiveIntegerField(
        default=10, help_text="Contacts waiting at or above which the queue shows an alert."
    )
    longest_wait_warning = models.PositiveIntegerField(
        "longest wait warning (s)", default=60, help_text="Longest wait (seconds) that shows a warning."
    )
    longest_wait_alert = models.PositiveIntegerField(
        "longest wait alert (s)", default=180, help_text="Longest wait (seconds) that shows an alert."
    )

    class Meta:
        ordering = ["connection__name", "name"]
        constraints = [models.UniqueConstraint(fields=["connection", "vendor_id"], name="unique_queue_per_connection")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.waiting_alert < self.waiting_warning:
            raise ValidationError({"waiting_alert": "The alert threshold must not be below the warning."})
        if self.longest_wait_alert < self.longest_wait_warning:
            raise ValidationError({"longest_wait_alert": "The alert threshold must not be below the warning."})

    def thresholds(self) -> dict:
        """Return the numbers the row partial needs to colour this queue."""
        return {
            "sl_target_percent": self.sl_target_percent,
            "sl_target_seconds": self.sl_target_seconds,
            "waiting_warning": self.waiting_warning,
            "waiting_alert": self.waiting_alert,
            "longest_wait_warning": self.longest_wait_warning,
            "longest_wait_alert": self.longest_wait_alert,
        }
