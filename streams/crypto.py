"""Encryption at rest for vendor secrets (Fernet, keyed from FIELD_ENCRYPTION_KEY)."""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class SecretUnreadable(Exception):
    """The stored secret cannot be decrypted with the configured key."""


def _fernet() -> Fernet:
    # Settings decide whether a development key may stand in (FLOORVIEW_REQUIRE_SECRETS); by here there is a key.
    key = settings.FIELD_ENCRYPTION_KEY
    if not key:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEY must be set")
    # Any string is accepted; SHA-256 turns it into the 32 bytes Fernet wants.
    digest = hashlib.sha256(key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt(plaintext: str) -> str:
    """Return PLAINTEXT encrypted for storage."""
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    """Return the plaintext of a stored secret, or raise SecretUnreadable."""
    if not token:
        return ""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except (InvalidToken, ValueError) as exc:
        raise SecretUnreadable("stored secret cannot be decrypted; was FIELD_ENCRYPTION_KEY changed?") from exc
