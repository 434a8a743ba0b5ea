"""Signed, expiring, purpose-bound tokens for links in mail (observation form, acknowledge, survey,
sign-in) and for cookies. One place so every link is signed the same way.

A token binds a *purpose* (``"observe"``, ``"ack"``, ...) and a JSON payload (for example the employee's
id); a token made for one purpose or person never verifies for another.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer


class InvalidToken(Exception):
    """The token is forged, tampered with, made for another purpose, or expired (``expired`` tells)."""

    def __init__(self, message: str, expired: bool = False):
        super().__init__(message)
        self.expired = expired


def _serializer(purpose: str, key: str | None = None) -> URLSafeTimedSerializer:
    if key is None:
        from frontline.core.settings import get_settings

        key = get_settings().signing_key()
    if not key or not key.strip():  # an empty key would let anyone forge every link and cookie
        raise ValueError(
            "the secret key is empty: set FRONTLINE_SECRET_KEY to a long random value (or unset it "
            "to have one generated in var/secret.key)"
        )
    return URLSafeTimedSerializer(key, salt=f"frontline:{purpose}")


def sign(purpose: str, payload: Any, *, key: str | None = None) -> str:
    return _serializer(purpose, key).dumps(payload)


def verify(purpose: str, token: str, *, max_age_seconds: float, key: str | None = None) -> Any:
    """The payload of a valid token; raises :class:`InvalidToken` otherwise."""
    try:
        # token ages are whole seconds, so "age > max_age" is the same against the whole part of max_age
        return _serializer(purpose, key).loads(token, max_age=int(max_age_seconds))
    except SignatureExpired:
        raise InvalidToken("this link has expired", expired=True) from None
    except BadSignature:
        raise InvalidToken("this link is not valid") from None


def hash_secret(secret: str) -> str:
    """Hash of a bearer secret (feed tokens, API tokens) for storage; compare with :func:`secret_matches`."""
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)


FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> object:
    """A CSV cell that a spreadsheet will not run as a formula: text starting with = + - @ tab or CR
    gets a leading single quote (OWASP CSV injection guidance). Numbers are left alone. Every CSV
    export goes through this."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value
