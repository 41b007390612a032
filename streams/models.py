"""Vendor connections and their queues, as configured in the admin."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, URLValidator
from django.db import models
from django.utils import timezone

from streams import crypto
from streams.vendors.cxone.parsers import DEFAULT_API_VERSION

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


# NICE CXone's commercial sign-in host; the government cloud is given as a base URL instead.
CXONE_AUTH_BASE = "https://cxone.niceincontact.com"

_stream_url = URLValidator(schemes=["ws", "wss", "http", "https"])


class Connection(models.Model):
    """A connection to one vendor platform or feed (one set of credentials)."""

    class Kind(models.TextChoices):
        GENESYS = "genesys", "Genesys Cloud CX"
        CXONE = "cxone", "NICE CXone"
        PUSH = "push", "WebSocket push feed (JSON or MessagePack)"
        SSE = "sse", "Server-Sent Events feed"
        WEBHOOK = "webhook", "Webhook (the platform posts to us)"

    # Kinds whose records are mapped onto Floorview's fields by ``field_mapping``.
    MAPPED_KINDS = (Kind.PUSH, Kind.SSE, Kind.WEBHOOK)

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
    client_id = models.CharField(
        "OAuth client id",
        max_length=200,
        blank=True,
        help_text="Genesys and CXone: the API application's client id. Feeds: the client-credentials client "
        "(blank when the feed needs no token).",
    )
    client_secret_encrypted = models.TextField(blank=True, editable=False)
    # NICE CXone signs in with an access key (password grant) on top of the application's client.
    access_key_id = models.CharField(
        "access key id", max_length=200, blank=True, help_text="CXone only: the access key id of the API user."
    )
    access_key_secret_encrypted = models.TextField(blank=True, editable=False)
    api_version = models.CharField(
        "API version",
        max_length=10,
        blank=True,
        default=DEFAULT_API_VERSION,
        help_text="CXone only: the inContactAPI version, e.g. v31.0.",
    )
    poll_interval = models.FloatField(
        "poll interval (s)",
        default=5.0,
        validators=[MinValueValidator(1.0), MaxValueValidator(300.0)],
        help_text="CXone only: how often the real-time API is polled (at least 1 s; NICE polls every 5 s).",
    )
    stream_url = models.CharField(
        "stream URL",
        max_length=500,
        blank=True,
        validators=[_stream_url],
        help_text="Push feeds: the ws:// or wss:// address. SSE feeds: the event-stream address.",
    )
    token_url = models.URLField(
        "token URL",
        max_length=500,
        blank=True,
        help_text="Push and SSE feeds: the OAuth client-credentials token endpoint (blank: no token).",
    )
    scope = models.CharField(max_length=200, blank=True, help_text="Push and SSE feeds: the OAuth scope to ask for.")
    field_mapping = models.JSONField(
        default=dict,
        blank=True,
        help_text="Feeds: which record field holds what, as dotted paths, e.g. "
        '{"queue_id": "payload.queue.id", "terminal_types": ["interaction.ended"]}. '
        "Blank fields use the standard names.",
    )
    max_frame_bytes = models.PositiveIntegerField(
        "size limit (bytes)",
        default=1024 * 1024,
        validators=[MinValueValidator(1024), MaxValueValidator(64 * 1024 * 1024)],
        help_text="Feeds: frames and webhook bodies above this size are refused without being decoded.",
    )
    keepalive_seconds = models.FloatField(
        "keepalive period (s)",
        default=15.0,
        validators=[MinValueValidator(1.0), MaxValueValidator(600.0)],
        help_text="SSE feeds: how often the server sends a keepalive; twice this without a byte ends the stream.",
    )
    backoff_cap = models.FloatField(
        "longest reconnect wait (s)",
        null=True,
        blank=True,
        validators=[MinValueValidator(1.0), MaxValueValidator(600.0)],
        help_text="Blank: the kind's default (SSE 5 s, push 30 s, CXone and Genesys 60 s).",
    )
    slug = models.SlugField(
        "webhook slug",
        max_length=100,
        unique=True,
        null=True,
        blank=True,
        help_text="Webhooks only: the platform posts to /hooks/<slug>/.",
    )
    webhook_secret_encrypted = models.TextField(blank=True, editable=False)
    enabled = models.BooleanField(default=True, help_text="Disabled connections are not streamed.")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.UNKNOWN, editable=False)
    status_detail = models.CharField(max_length=300, blank=True, editable=False)
    status_changed_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The worker's last snapshot of the link (``LinkHealth.as_dict()``: epoch seconds, counters, ping
    # percentiles), saved on every change of state and every few seconds while it streams.
    health = models.JSONField(default=dict, blank=True, editable=False)
    health_at = models.DateTimeField("health saved at", null=True, blank=True, editable=False)
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

    @property
    def access_key_secret(self) -> str:
        """Return the decrypted CXone access key secret."""
        return crypto.decrypt(self.access_key_secret_encrypted) if self.access_key_secret_encrypted else ""

    def set_access_key_secret(self, secret: str) -> None:
        """Store the CXone access key SECRET encrypted."""
        self.access_key_secret_encrypted = crypto.encrypt(secret)

    @property
    def webhook_secret(self) -> str:
        """Return the decrypted webhook signing secret."""
        return crypto.decrypt(self.webhook_secret_encrypted) if self.webhook_secret_encrypted else ""

    def set_webhook_secret(self, secret: str) -> None:
        """Store the webhook signing SECRET encrypted."""
        self.webhook_secret_encrypted = crypto.encrypt(secret)

    def clean(self) -> None:
        from streams.feeds.mapping import FieldMapping, MappingError

        if self.kind == self.Kind.GENESYS and not self.region and not self.base_url:
            raise ValidationError("Give either a region or a base URL.")
        if self.kind == self.Kind.CXONE and not self.access_key_id:
            raise ValidationError({"access_key_id": "CXone signs in with an access key: give its id."})
        if self.kind == self.Kind.CXONE:
            from streams.vendors.cxone.parsers import ParseError, api_version

            try:
                # Stored as CXone's paths spell it ("31" and "v31" are v31.0).
                self.api_version = api_version(self.api_version)
            except ParseError:
                raise ValidationError({"api_version": "Give an API version such as v31.0."}) from None
        if self.kind in (self.Kind.PUSH, self.Kind.SSE):
            if not self.stream_url:
                raise ValidationError({"stream_url": "Give the feed's address."})
            scheme = self.stream_url.split(":", 1)[0].lower()
            wanted = ("ws", "wss") if self.kind == self.Kind.PUSH else ("http", "https")
            if scheme not in wanted:
                raise ValidationError({"stream_url": f"This kind of feed needs a {' or '.join(wanted)} address."})
        if self.kind == self.Kind.WEBHOOK and not self.slug:
            raise ValidationError({"slug": "Give the slug the platform posts to."})
        if self.kind in self.MAPPED_KINDS:
            try:
                FieldMapping.parse(self.field_mapping)
            except MappingError as exc:
                raise ValidationError({"field_mapping": str(exc)}) from None

    def api_base(self) -> str:
        """Return the REST API base URL (no trailing slash); CXone discovers its own at sign-in."""
        if self.base_url:
            return self.base_url.rstrip("/")
        if self.kind == self.Kind.CXONE:
            return CXONE_AUTH_BASE
        if self.kind in self.MAPPED_KINDS:
            return self.stream_url
        return f"https://api.{GENESYS_REGIONS[self.region]}"

    def login_base(self) -> str:
        """Return the OAuth login base URL (no trailing slash)."""
        if self.base_url:
            return self.base_url.rstrip("/")
        if self.kind == self.Kind.CXONE:
            return CXONE_AUTH_BASE
        if self.kind in self.MAPPED_KINDS:
            return self.token_url
        return f"https://login.{GENESYS_REGIONS[self.region]}"

    def record_status(self, status: str, detail: str = "") -> None:
        """Save a new status (called by the worker)."""
        Connection.objects.filter(pk=self.pk).update(
            status=status, status_detail=detail[:300], status_changed_at=timezone.now()
        )

    def record_health(self, health: dict[str, Any], events: list[dict[str, Any]], *, state_changed: bool) -> None:
        """Save the worker's HEALTH snapshot and the EVENTS noted since the last save (called by the worker).

        With STATE_CHANGED the status and its time move too; a periodic save
        leaves ``status_changed_at`` alone, so it keeps saying since when.
        """
        now = timezone.now()
        fields: dict[str, Any] = {"health": health, "health_at": now}
        if health.get("state") in self.Status.values:
            fields |= {"status": health["state"], "status_detail": (health.get("detail") or "")[:300]}
            if state_changed:
                fields["status_changed_at"] = now
        Connection.objects.filter(pk=self.pk).update(**fields)
        ConnectionEvent.objects.bulk_create(
            ConnectionEvent(
                connection_id=self.pk,
                at=datetime.fromtimestamp(event["at"], tz=UTC),
                kind=event["kind"],
                detail=event.get("detail", "")[:300],
                data=event.get("data") or {},
            )
            for event in events
        )

    def health_time(self, key: str) -> datetime | None:
        """Return the time (aware) the health snapshot holds under KEY (epoch seconds), if any."""
        value = self.health.get(key)
        if not isinstance(value, int | float):
            return None
        return datetime.fromtimestamp(value, tz=UTC)


class ConnectionEvent(models.Model):
    """One notable moment of a connection's link, kept for the admin's audit trail."""

    # Kept per connection at most (newest first), whatever the retention days say.
    KEEP_PER_CONNECTION = 1000

    class Kind(models.TextChoices):
        CONNECTED = "connected", "Connected"
        CLOSED = "closed", "Closed"
        TOKEN_REFRESHED = "token_refreshed", "Token refreshed"
        AUTH_FAILED = "auth_failed", "Auth failed"
        BACKOFF_SCHEDULED = "backoff_scheduled", "Backoff scheduled"
        RESYNCED = "resynced", "Resynced"
        STATE_CHANGED = "state_changed", "State changed"
        ERROR = "error", "Error"

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField()
    kind = models.CharField(max_length=20, choices=Kind.choices)
    # Scrubbed by ``LinkHealth.note`` and the worker: never a secret, token or full URL.
    detail = models.CharField(max_length=300, blank=True)
    data = models.JSONField(default=dict, blank=True, help_text="A few plain values, e.g. the backoff delay.")

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["connection", "-at"], name="connection_event_recent")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} at {self.at:%Y-%m-%d %H:%M:%S}"

    @classmethod
    def prune(cls, connection_ids: list[int], *, days: float, keep: int | None = None) -> int:
        """Delete events older than DAYS, and beyond the newest KEEP of each of CONNECTION_IDS; return how many.

        One DELETE for the age (every connection, so a disabled one's events age out too) and
        one per connection for the count.
        """
        keep = cls.KEEP_PER_CONNECTION if keep is None else keep
        deleted, _ = cls.objects.filter(at__lt=timezone.now() - timedelta(days=days)).delete()
        for pk in connection_ids:
            newest = cls.objects.filter(connection_id=pk).order_by("-at", "-pk").values("pk")[keep:]
            n, _ = cls.objects.filter(connection_id=pk, pk__in=models.Subquery(newest)).delete()
            deleted += n
        return deleted


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
