"""Encryption of practice credentials at rest (Fernet: AES-128-CBC with an HMAC)."""

import base64
import hashlib
from functools import cache

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


@cache
def _fernet(key: str) -> Fernet:
    if key:
        try:
            return Fernet(key.encode())
        except ValueError:
            raise ImproperlyConfigured(
                "PAYLINKS_ENCRYPTION_KEY must be a Fernet key (32 url-safe base64-encoded bytes)"
            ) from None
    # Development only (settings refuse a missing key in production).
    digest = hashlib.sha256(f"paylinks-credentials:{settings.SECRET_KEY}".encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt(plaintext: str) -> str:
    if not plaintext:
        return ""
    return _fernet(settings.PAYLINKS_ENCRYPTION_KEY).encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> str:
    if not ciphertext:
        return ""
    try:
        return _fernet(settings.PAYLINKS_ENCRYPTION_KEY).decrypt(ciphertext.encode()).decode()
    except InvalidToken:
        raise ImproperlyConfigured(
            "Stored Provet credentials cannot be decrypted: PAYLINKS_ENCRYPTION_KEY has changed"
        ) from None
