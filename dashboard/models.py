"""Boards: what a team sees, and who may see it."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from dashboard import protocol
from streams.models import Queue


def default_coalesce_ms() -> int:
    """Return the coalescing window a new board starts with: ``FLOORVIEW_COALESCE_WINDOW``, in milliseconds."""
    return round(settings.FLOORVIEW["COALESCE_WINDOW"] * 1000)


def viewing_allowed(user, shares_a_group: Callable[[], bool]) -> bool:
    """Return whether USER may view a board: active and signed in, and a superuser or in one of its groups.

    The one rule for pages, the API and sockets. SHARES_A_GROUP answers the group question however the
    caller has the groups at hand (one query for one board, or sets fetched once for many sockets), and is
    asked only when the answer depends on it.
    """
    if not user.is_authenticated or not user.is_active:
        return False
    return user.is_superuser or shares_a_group()


class Board(models.Model):
    """A live board: a set of queues, the panels shown, and the groups who may view it."""

    class Panel(models.TextChoices):
        QUEUES = "queues", "Queues"
        AGENTS = "agents", "Agents"
        INTERACTIONS = "interactions", "Interactions"

    slug = models.SlugField(unique=True, help_text="The board's address: /boards/<slug>/")
    title = models.CharField(max_length=200)
    queues = models.ManyToManyField(Queue, related_name="boards", blank=True)
    panels = models.JSONField(
        default=list,
        blank=True,
        help_text='Panels to show, in order: any of "queues", "agents", "interactions". Empty shows all.',
    )
    coalesce_ms = models.PositiveIntegerField(
        "coalescing window (ms)",
        default=default_coalesce_ms,
        validators=[MinValueValidator(20), MaxValueValidator(10_000)],
        help_text="Changes are batched and pushed at most once per window. Wall screens: 1000.",
    )
    groups = models.ManyToManyField(
        Group, related_name="boards", blank=True, help_text="Users in any of these groups may view the board."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title

    @property
    def group_name(self) -> str:
        """Return the Channels group that carries this board's updates."""
        return protocol.group_name(self.pk)

    def shown_panels(self) -> list[str]:
        """Return the panels to show, defaulting to all."""
        valid = [p for p in self.panels or [] if p in self.Panel.values]
        return valid or list(self.Panel.values)

    def may_view(self, user) -> bool:
        """Return whether USER may open this board."""
        return viewing_allowed(user, lambda: self.groups.filter(pk__in=user.groups.values("pk")).exists())

    @classmethod
    def visible_to(cls, user):
        """Return the boards USER may open."""
        if not user.is_authenticated or not user.is_active:
            return cls.objects.none()
        if user.is_superuser:
            return cls.objects.all()
        return cls.objects.filter(groups__in=user.groups.all()).distinct()
