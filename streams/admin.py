"""Admin for vendor connections and their queues.

A connection's form shows the common columns and its kind's own settings
(declared once, by the kind's settings class). Secrets (the OAuth client
secret, CXone's access key secret, a webhook's signing secret) are write-only
here: the form offers an empty password field, a blank submission keeps the
stored secret, and the encrypted values are never displayed.
``Connection.clean`` checks what each kind needs.

A connection's health (state, message age, ping, heartbeats, reconnects, last
error) and its recent events are what the worker saved; the admin only shows
them, and the event log is read-only.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from streams.log_safe import safe_text
from streams.models import Connection, ConnectionEvent, Queue
from streams.vendors.registry import VENDORS, vendor

log = logging.getLogger(__name__)


# The columns every kind has; the kind's own settings join them in the form.
COMMON_FIELDS = ["name", "kind", "enabled", "backoff_cap"]


def chosen_kind(data: Any, initial: dict, instance: Connection) -> str:
    """Return the kind a connection form is about: the one posted, else asked for (``?kind=``), else stored."""
    kind = data.get("kind") if data is not None else None
    return kind or initial.get("kind") or instance.kind


class ConnectionForm(forms.ModelForm):
    """The connection form: the common columns and its kind's settings, secrets write-only.

    The kind's fields come from its settings class (``streams.vendors.<kind>.settings``);
    ``Connection.clean`` checks them with it, so a save outside the admin is checked alike.
    """

    class Meta:
        model = Connection
        fields = COMMON_FIELDS
        help_texts = {
            "name": "A name for people, e.g. “Genesys EU production”.",
            "kind": "Each kind has its own settings: after choosing another kind, save to see and fill in its fields.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        kind = chosen_kind(self.data if self.is_bound else None, self.initial, self.instance)
        self.settings_class = vendor(kind).settings if kind in VENDORS else None
        if self.settings_class is None:
            return
        stored = self.instance.settings if self.instance.kind == kind else {}
        defaults = self.settings_class.from_values(stored).plain()
        for name, field in self.settings_class.form_fields().items():
            self.fields[name] = field
            if name in defaults:
                self.initial.setdefault(name, defaults[name])

    def clean(self) -> dict:
        cleaned = super().clean()
        if self.settings_class is None:
            return cleaned
        # Handed to the instance now: Connection.clean (run next, by the model form) checks them.
        stored = self.instance.settings if self.instance.kind == cleaned.get("kind") else {}
        self.instance.settings = {
            name: cleaned[name] if name in cleaned else stored.get(name) for name in self.settings_class.plain_names()
        }
        for name in self.settings_class.secret_names():
            if cleaned.get(name):
                self.instance.set_secret(name, cleaned[name])
        return cleaned


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


# Status colours for people who see them; the status word is always there for those who do not.
RECENT_EVENTS = 50


def _age(seconds: float | None) -> str:
    """Return SECONDS as a short age, e.g. "4 s ago", "3 min ago"."""
    if seconds is None:
        return "never"
    seconds = max(seconds, 0.0)
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} days ago"


def _ms(seconds: float | None) -> str:
    """Return a round trip in SECONDS as milliseconds, or a dash."""
    return "—" if seconds is None else f"{seconds * 1000:.0f} ms"


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

    class Media:
        # The status colours: a stylesheet, as the Content-Security-Policy refuses inline style attributes.
        css = {"all": ["dashboard/admin.css"]}

    list_display = (
        "name",
        "kind",
        "endpoint",
        "enabled",
        "status_with_time",
        "last_message",
        "ping",
        "reconnects",
        "last_error",
        "queue_count",
    )
    list_filter = ("status", "kind", "enabled")
    search_fields = ("name",)
    status_fields = ("status", "status_detail", "status_changed_at", "created_at", "updated_at")
    health_fields = ("health_report", "recent_events")
    readonly_fields = status_fields + health_fields
    actions = ["import_queues"]

    def get_fieldsets(self, request: HttpRequest, obj: Connection | None = None) -> list:
        """Return the common fields, the fields of the connection's kind only, then what the worker reported."""
        kind = chosen_kind(request.POST or None, request.GET.dict(), obj or Connection())
        entry = VENDORS.get(kind)
        own = [(f"{entry.label}: settings", {"fields": entry.settings.names()})] if entry else []
        return [
            (None, {"fields": ("name", "kind", "enabled")}),
            *own,
            ("Reconnecting", {"fields": ("backoff_cap",), "classes": ("collapse",)}),
            ("Status (reported by the worker)", {"fields": self.status_fields}),
            ("Health (reported by the worker)", {"fields": self.health_fields}),
        ]

    def get_form(self, request: HttpRequest, obj: Connection | None = None, change: bool = False, **kwargs: Any):
        # The kind's fields are the form's own (added per kind), not model columns for the factory to look up.
        kwargs["fields"] = COMMON_FIELDS
        return super().get_form(request, obj, change, **kwargs)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(queue_total=Count("queues"))

    @admin.display(description="Where")
    def endpoint(self, obj: Connection) -> str:
        """Show where the connection points (never a secret: URLs are shown without query strings)."""
        return obj.endpoint()

    @admin.display(description="Status", ordering="status")
    def status_with_time(self, obj: Connection) -> str:
        """Show the worker's last status, in words and colour, and since when."""
        badge = format_html(
            '<strong class="fv-status fv-status-{}" title="{}">● {}</strong>',
            obj.status,
            obj.status_detail,
            obj.get_status_display(),
        )
        if obj.status_changed_at is None:
            return badge
        when = timezone.localtime(obj.status_changed_at).strftime("%Y-%m-%d %H:%M:%S")
        return format_html('{} <span class="quiet">since {}</span>', badge, when)

    @admin.display(description="Last message")
    def last_message(self, obj: Connection) -> str:
        """Show how long ago the link last heard anything from the vendor."""
        if not obj.health:
            return "—"
        at = obj.health.get("last_message_at")
        return _age(None if at is None else time.time() - at)

    @admin.display(description="Ping p50")
    def ping(self, obj: Connection) -> str:
        """Show the median ping round trip."""
        return _ms(obj.health.get("ping_p50"))

    @admin.display(description="Reconnects")
    def reconnects(self, obj: Connection) -> str:
        """Show how often the link reconnected since the worker started it."""
        value = obj.health.get("reconnects")
        return "—" if value is None else str(value)

    @admin.display(description="Last error")
    def last_error(self, obj: Connection) -> str:
        """Show the last error, cut short (the whole text is in the tooltip and on the change page)."""
        error = obj.health.get("last_error") or ""
        if not error:
            return "—"
        short = error if len(error) <= 60 else error[:59] + "…"
        return format_html('<span title="{}">{}</span>', error, short)

    @admin.display(description="Health snapshot")
    def health_report(self, obj: Connection) -> SafeString:
        """Show everything the worker last saved about the link."""
        health = obj.health or {}
        ratio = health.get("missed_heartbeat_ratio")
        state = health.get("state", "unknown")
        context = {
            "health": health,
            "state": Connection.Status(state).label if state in Connection.Status.values else state,
            "saved_at": obj.health_at,
            "changed_at": obj.health_time("changed_at"),
            "last_message_at": obj.health_time("last_message_at"),
            "last_message_age": _age(time.time() - health["last_message_at"])
            if health.get("last_message_at") is not None
            else "never",
            "connected_since": obj.health_time("connected_since"),
            "ping_p50": _ms(health.get("ping_p50")),
            "ping_p95": _ms(health.get("ping_p95")),
            "missed_percent": None if ratio is None else f"{ratio * 100:.1f}%",
            "counters": sorted((health.get("counters") or {}).items()),
        }
        return render_to_string("admin/streams/connection/health.html#snapshot", context)

    @admin.display(description=f"Recent events (newest {RECENT_EVENTS})")
    def recent_events(self, obj: Connection) -> SafeString:
        """Show the newest events of the connection, newest first, with a link to all of them."""
        events = list(obj.events.all()[:RECENT_EVENTS]) if obj.pk is not None else []
        url = reverse("admin:streams_connectionevent_changelist") + f"?connection__id__exact={obj.pk}"
        return render_to_string("admin/streams/connection/health.html#events", {"events": events, "all_url": url})

    @admin.display(description="Queues", ordering="queue_total")
    def queue_count(self, obj: Connection) -> int:
        """Show how many queues the connection has."""
        return obj.queue_total

    @admin.action(description="Import queues from the vendor")
    def import_queues(self, request: HttpRequest, queryset: QuerySet) -> None:
        """Fetch each selected connection's queues from the vendor; create new ones, rename changed ones."""
        # Imported here: the connector stack (aiohttp, ...) is only needed when someone asks for it.
        from streams.queue_import import NothingToImport, import_queues

        for connection in queryset:
            try:
                result = import_queues(connection)
            except NothingToImport as exc:
                self.message_user(request, f"{connection.name}: {exc}.", messages.WARNING)
                continue
            except Exception as exc:
                known = []
                for name in connection.vendor().settings.secret_names():
                    # A secret that cannot be decrypted cannot be quoted either: nothing to blank out.
                    with contextlib.suppress(Exception):
                        known.append(connection.secret(name))
                reason = _redacted(str(exc) or exc.__class__.__name__, *known)
                log.warning("importing queues for connection %s failed: %s", connection.pk, safe_text(reason, 300))
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


@admin.register(ConnectionEvent)
class ConnectionEventAdmin(admin.ModelAdmin):
    """The audit trail of connection events, as the worker wrote it: read-only."""

    list_display = ("at", "connection", "kind", "detail", "data")
    list_filter = ("connection", "kind")
    list_select_related = ("connection",)
    date_hierarchy = "at"
    search_fields = ("detail",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ConnectionEvent | None = None) -> bool:
        # Deleting stays possible: otherwise deleting a connection in the admin would be refused
        # for want of permission on its events.
        return False
