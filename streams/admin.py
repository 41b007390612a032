"""Admin for vendor connections and their queues.

The OAuth client secret is write-only here: the form offers an empty password
field, a blank submission keeps the stored secret, and the encrypted column
is never displayed.
"""

from __future__ import annotations

import logging

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html

from streams.models import Connection, Queue

log = logging.getLogger(__name__)


class ConnectionForm(forms.ModelForm):
    """The connection form, with a write-only client secret."""

    client_secret = forms.CharField(
        label="OAuth client secret",
        required=False,
        strip=False,
        # render_value=False: the stored secret is never sent back to a browser, not even after an error.
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Stored encrypted and never shown again. Leave blank to keep the current secret.",
    )

    class Meta:
        model = Connection
        fields = ["name", "kind", "region", "base_url", "client_id", "enabled"]
        labels = {"base_url": "Base URL"}
        help_texts = {
            "name": "A name for people, e.g. “Genesys EU production”.",
            "client_id": "The OAuth client (client-credentials grant) the dashboard signs in with.",
        }

    def clean(self) -> dict:
        cleaned = super().clean()
        has_stored = bool(self.instance.pk and self.instance.client_secret_encrypted)
        if not cleaned.get("client_secret") and not has_stored:
            self.add_error("client_secret", "Give the client secret for this OAuth client.")
        return cleaned

    def save(self, commit: bool = True) -> Connection:
        """Save the connection, encrypting a newly given secret."""
        secret = self.cleaned_data.get("client_secret")
        if secret:
            self.instance.set_client_secret(secret)
        return super().save(commit=commit)


class QueueInline(admin.TabularInline):
    """The connection's queues, editable in place."""

    model = Queue
    extra = 0
    fields = (
        "name",
        "vendor_id",
        "sl_target_percent",
        "sl_target_seconds",
        "waiting_warning",
        "waiting_alert",
        "longest_wait_warning",
        "longest_wait_alert",
    )
    show_change_link = True


def _redacted(text: str, *secrets: str) -> str:
    """Return TEXT with every given secret blanked out, cut to a readable length."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "•••")
    return text[:300]


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):
    """Vendor connections: where the dashboard's data comes from."""

    form = ConnectionForm
    inlines = [QueueInline]
    list_display = ("name", "kind", "endpoint", "enabled", "status_with_time", "queue_count")
    list_filter = ("kind", "enabled", "status")
    search_fields = ("name", "client_id")
    readonly_fields = ("status", "status_detail", "status_changed_at", "created_at", "updated_at")
    actions = ["import_queues"]
    fieldsets = (
        (None, {"fields": ("name", "kind", "enabled")}),
        (
            "Where and how to connect",
            {
                "fields": ("region", "base_url", "client_id", "client_secret"),
                "description": "Give a region, or a base URL for the built-in simulator or a proxy.",
            },
        ),
        ("Status (reported by the worker)", {"fields": readonly_fields}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(queue_total=Count("queues"))

    @admin.display(description="Region / base URL", ordering="region")
    def endpoint(self, obj: Connection) -> str:
        """Show where the connection points."""
        return obj.base_url or obj.get_region_display()

    @admin.display(description="Status", ordering="status")
    def status_with_time(self, obj: Connection) -> str:
        """Show the worker's last status and when it was reported."""
        if obj.status_changed_at is None:
            return obj.get_status_display()
        when = timezone.localtime(obj.status_changed_at).strftime("%Y-%m-%d %H:%M:%S")
        return format_html('{} <span class="quiet">since {}</span>', obj.get_status_display(), when)

    @admin.display(description="Queues", ordering="queue_total")
    def queue_count(self, obj: Connection) -> int:
        """Show how many queues the connection has."""
        return obj.queue_total

    @admin.action(description="Import queues from the vendor")
    def import_queues(self, request: HttpRequest, queryset: QuerySet) -> None:
        """Fetch each selected connection's queues from the vendor; create new ones, rename changed ones."""
        # Imported here: the connector stack (aiohttp, ...) is only needed when someone asks for it.
        from streams.queue_import import import_queues

        for connection in queryset:
            try:
                result = import_queues(connection)
            except Exception as exc:
                try:
                    secret = connection.client_secret
                except Exception:
                    secret = ""
                reason = _redacted(str(exc) or exc.__class__.__name__, secret)
                log.warning("importing queues for connection %s failed: %s", connection.pk, reason)
                failure = f"{connection.name}: the import failed ({exc.__class__.__name__}: {reason})"
                self.message_user(request, failure, messages.ERROR)
                continue
            self.message_user(
                request,
                f"{connection.name}: {result.total} queues at the vendor; "
                f"{result.created} added, {result.updated} renamed.",
                messages.SUCCESS,
            )


@admin.register(Queue)
class QueueAdmin(admin.ModelAdmin):
    """Queues: identity at the vendor, service-level target and thresholds."""

    list_display = ("name", "connection", "vendor_id", "service_level_target", "waiting_thresholds", "wait_thresholds")
    list_filter = ("connection", "connection__kind")
    search_fields = ("name", "vendor_id")
    list_select_related = ("connection",)
    fieldsets = (
        (None, {"fields": ("connection", "name", "vendor_id")}),
        ("Service level", {"fields": ("sl_target_percent", "sl_target_seconds")}),
        (
            "Thresholds",
            {
                "fields": ("waiting_warning", "waiting_alert", "longest_wait_warning", "longest_wait_alert"),
                "description": "Boards colour a queue and flag it with a word at these values. 0 switches one off.",
            },
        ),
    )

    @admin.display(description="SL target")
    def service_level_target(self, obj: Queue) -> str:
        """Show the target as supervisors say it."""
        return f"{obj.sl_target_percent}% in {obj.sl_target_seconds} s"

    @admin.display(description="Waiting warn / alert")
    def waiting_thresholds(self, obj: Queue) -> str:
        """Show the waiting-contacts thresholds."""
        return f"{obj.waiting_warning} / {obj.waiting_alert}"

    @admin.display(description="Longest wait warn / alert")
    def wait_thresholds(self, obj: Queue) -> str:
        """Show the longest-wait thresholds."""
        return f"{obj.longest_wait_warning} s / {obj.longest_wait_alert} s"
