"""Admin for boards: what each board shows and who may see it."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from dashboard.models import Board

admin.site.site_header = "Floorview"
admin.site.site_title = "Floorview"
admin.site.index_title = "Administration: connections, queues and boards"
admin.site.site_url = "/"


class BoardForm(forms.ModelForm):
    """The board form, with panels as checkboxes rather than raw JSON."""

    panels = forms.MultipleChoiceField(
        choices=Board.Panel.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="The panels to show. Leave all unticked to show every panel.",
    )

    class Meta:
        model = Board
        fields = ["title", "slug", "queues", "panels", "coalesce_ms", "groups"]
        # The admin renders help texts as HTML: the model's "/boards/<slug>/" would lose its "<slug>".
        help_texts = {"slug": "The board's address: /boards/&lt;slug&gt;/ (letters, digits and hyphens)."}


@admin.register(Board)
class BoardAdmin(admin.ModelAdmin):
    """Boards: queues, panels, update pace and the groups allowed to view."""

    form = BoardForm
    prepopulated_fields = {"slug": ("title",)}
    filter_horizontal = ("queues", "groups")
    list_display = ("title", "slug", "panel_list", "queue_count", "coalesce_ms", "open_link")
    list_filter = ("groups",)
    search_fields = ("title", "slug")
    fieldsets = (
        (None, {"fields": ("title", "slug")}),
        ("Content", {"fields": ("queues", "panels")}),
        ("Live updates", {"fields": ("coalesce_ms",)}),
        ("Access", {"fields": ("groups",)}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(queue_total=Count("queues", distinct=True))

    def view_on_site(self, obj: Board) -> str:
        """Return the board's page, for the admin's "View on site" button."""
        return reverse("board", args=[obj.slug])

    @admin.display(description="Panels")
    def panel_list(self, obj: Board) -> str:
        """Show the panels the board shows."""
        labels = dict(Board.Panel.choices)
        return ", ".join(labels[panel] for panel in obj.shown_panels())

    @admin.display(description="Queues", ordering="queue_total")
    def queue_count(self, obj: Board) -> int:
        """Show how many queues the board shows."""
        return obj.queue_total

    @admin.display(description="Board")
    def open_link(self, obj: Board) -> str:
        """Link to the live board."""
        return format_html('<a href="{}">View board</a>', reverse("board", args=[obj.slug]))
