"""A kind's own settings: its fields with their defaults and admin form fields, which are secret, and their checks.

Each vendor package declares one frozen dataclass subclassing ``KindSettings``.
A connection stores the plain values as JSON and the secrets encrypted
(``streams.models.Connection``); connectors read them as ``spec.settings``;
the admin builds the kind's form from the same declaration. Frozen and
comparable, so the worker can tell a changed connection from an unchanged one.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

from django import forms

NEEDS_SECRET = "Give this secret: the connection cannot sign in without it."


class SettingsInvalid(ValueError):
    """Some settings are unusable: ERRORS maps each setting's name to what is wrong with it."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{name}: {message}" for name, message in errors.items()))
        self.errors = errors


def setting(form_field: forms.Field, default: Any = "", **options: Any) -> Any:
    """Declare a plain setting, edited in the admin by FORM_FIELD (OPTIONS go to ``dataclasses.field``)."""
    if isinstance(default, dict):
        # A dict is no dataclass default, and unhashable: it takes part in comparisons only.
        return dataclasses.field(
            default_factory=lambda: copy.deepcopy(default), hash=False, metadata={"form": form_field}, **options
        )
    return dataclasses.field(default=default, metadata={"form": form_field}, **options)


def secret(label: str, help_text: str) -> Any:
    """Declare a secret: stored encrypted, never shown (not even in a repr), write-only in the admin."""
    form_field = forms.CharField(
        label=label,
        required=False,
        strip=False,
        # render_value=False: the stored secret is never sent back to a browser, not even after an error.
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=help_text + " Stored encrypted and never shown again. Leave blank to keep the current one.",
    )
    return dataclasses.field(default="", repr=False, metadata={"form": form_field, "secret": True})


@dataclass(frozen=True)
class KindSettings:
    """The settings one kind of connection has beyond the common columns; subclasses declare the fields."""

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """Return every setting's name, in declaration order (the admin's order)."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def secret_names(cls) -> tuple[str, ...]:
        """Return the names of the secrets."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get("secret"))

    @classmethod
    def plain_names(cls) -> tuple[str, ...]:
        """Return the names of the settings that are not secret."""
        return tuple(f.name for f in dataclasses.fields(cls) if not f.metadata.get("secret"))

    @classmethod
    def form_fields(cls) -> dict[str, forms.Field]:
        """Return a fresh admin form field per setting."""
        return {f.name: copy.deepcopy(f.metadata["form"]) for f in dataclasses.fields(cls)}

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> Self:
        """Return the settings VALUES give (names of other kinds ignored, missing ones at their defaults)."""
        known = set(cls.names())
        return cls(**{name: value for name, value in values.items() if name in known and value is not None})

    def plain(self) -> dict[str, Any]:
        """Return the settings that are not secret, as JSON-ready values."""
        return {name: copy.deepcopy(getattr(self, name)) for name in self.plain_names()}

    def secret_values(self) -> tuple[str, ...]:
        """Return the secrets that are set (to blank them out of anything logged or saved)."""
        return tuple(value for name in self.secret_names() if (value := getattr(self, name)))

    def needed_secrets(self) -> tuple[str, ...]:
        """Return the secrets without which the connection cannot sign in (every one, unless a kind says less)."""
        return self.secret_names()

    def check(self) -> Self:
        """Return these settings as stored (normalised), or raise ``SettingsInvalid`` saying what to fix."""
        return self

    def endpoint(self) -> str:
        """Return where the connection points, for the admin's list (never a secret, never a query string)."""
        return "—"
