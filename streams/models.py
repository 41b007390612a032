"""Vendor connections and their queues, as configured in the admin."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.fields.json import KT
from django.utils import timezone

from streams import crypto
from streams.vendors.registry import Vendor, kind_choices, vendor
from streams.vendors.settings import NEEDS_SECRET, KindSettings, SettingsInvalid


class Connection(models.Model):
    """A connection to one vendor platform or feed (one set of credentials).

    The columns are what every kind has; ``settings`` holds the kind's own
    (declared by ``streams.vendors.<kind>.settings``, checked by ``clean``), and
    ``encrypted_secrets`` its secrets, each encrypted on its own: read them
    with ``secret()`` or ``kind_settings()``, write them with ``set_secret()``.
    """

    class Status(models.TextChoices):
        UNKNOWN = "unknown", "Unknown"
        CONNECTING = "connecting", "Connecting"
        LIVE = "live", "Live"
        DEGRADED = "degraded", "Degraded"
        RECONNECTING = "reconnecting", "Reconnecting"
        AUTH_FAILED = "auth_failed", "Auth failed"
        DISABLED = "disabled", "Disabled"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=20, choices=kind_choices, default="genesys")
    settings = models.JSONField(default=dict, blank=True, help_text="The kind's own settings (secrets aside).")
    # Setting name → its value encrypted (streams.crypto): never displayed, written only through set_secret().
    encrypted_secrets = models.JSONField(default=dict, blank=True, editable=False)
    backoff_cap = models.FloatField(
        "longest reconnect wait (s)",
        null=True,
        blank=True,
        validators=[MinValueValidator(1.0), MaxValueValidator(600.0)],
        help_text="Blank: the kind's default (SSE 5 s, push 30 s, CXone and Genesys 60 s).",
    )
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
        constraints = [
            # A slug is an address on this site (a webhook's /hooks/<slug>/): no two connections share one.
            models.UniqueConstraint(
                KT("settings__slug"),
                name="unique_connection_slug",
                violation_error_message="Another connection already uses this slug.",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @classmethod
    def of(cls, kind: str = "genesys", *, name: str = "", **values: Any) -> Connection:
        """Return an unsaved connection of KIND: VALUES are common columns or the kind's settings (secrets too)."""
        columns = {f.name for f in cls._meta.concrete_fields}
        known = vendor(kind).settings.names()
        unknown = set(values) - columns - set(known)
        if unknown:
            raise TypeError(f"{kind} connections have no {', '.join(sorted(unknown))}")
        connection = cls(kind=kind, name=name, **{k: v for k, v in values.items() if k in columns})
        given = {k: v for k, v in values.items() if k in known}
        secrets = vendor(kind).settings.secret_names()
        connection.settings = vendor(kind).settings.from_values(given).plain()
        for key in secrets:
            if given.get(key):
                connection.set_secret(key, given[key])
        return connection

    @property
    def source_key(self) -> str:
        """Return the key that names this connection's data on the Floor."""
        return f"c{self.pk}"

    def vendor(self) -> Vendor:
        """Return the registry's entry for this connection's kind."""
        return vendor(self.kind)

    def secret(self, name: str) -> str:
        """Return the secret NAME decrypted ("" when unset); raise ``crypto.SecretUnreadable`` if it cannot be."""
        return crypto.decrypt(self.encrypted_secrets.get(name, ""))

    def set_secret(self, name: str, value: str) -> None:
        """Store the secret NAME encrypted; the plaintext is never saved."""
        self.encrypted_secrets = {**self.encrypted_secrets, name: crypto.encrypt(value)}

    def has_secret(self, name: str) -> bool:
        """Return whether a secret NAME is stored."""
        return bool(self.encrypted_secrets.get(name))

    def kind_settings(self) -> KindSettings:
        """Return the kind's settings with the secrets decrypted (for the worker's spec)."""
        secrets = {name: self.secret(name) for name in self.vendor().settings.secret_names()}
        return self.vendor().settings.from_values({**self.settings, **secrets})

    def endpoint(self) -> str:
        """Return where the connection points, for the admin's list (never a secret)."""
        try:
            return self.vendor().settings.from_values(self.settings).endpoint()
        except ValueError:  # a kind nobody speaks any more
            return "—"

    def clean(self) -> None:
        try:
            settings_class = self.vendor().settings
        except ValueError as exc:
            raise ValidationError({"kind": str(exc)}) from None
        try:
            checked = settings_class.from_values(self.settings).check()
        except SettingsInvalid as exc:
            raise ValidationError(exc.errors) from None
        self.settings = checked.plain()  # normalised, and without other kinds' names
        missing = {name: NEEDS_SECRET for name in checked.needed_secrets() if not self.has_secret(name)}
        if missing:
            raise ValidationError(missing)
        # Secrets another kind left behind go: nothing would ever read or replace them.
        kept = settings_class.secret_names()
        self.encrypted_secrets = {k: v for k, v in self.encrypted_secrets.items() if k in kept}

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
