"""Signed, expiring, purpose-bound tokens for links in mail (observation form, acknowledge, survey,
sign-in) and for cookies. One place so every link is signed the same way.

A token binds a *purpose* (``"observe"``, ``"ack"``, ...) and a JSON payload (for example the employee's
id); a token made for one purpose or person never verifies for another.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from functools import lru_cache
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
            "to have one generated in the file FRONTLINE_SECRET_KEY_FILE names, by default secret.key next "
            "to the SQLite database)"
        )
    return _made_serializer(purpose, key)


@lru_cache(maxsize=64)
def _made_serializer(purpose: str, key: str) -> URLSafeTimedSerializer:
    """One serializer per purpose and key (it holds no state between calls; making one runs a JSON dump
    to test its serializer: a quarter of signing a digest's links)."""
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


_UNSTORABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def unstorable_character(text: str) -> str | None:
    """Why ``text`` cannot be taken as it is, or None: a NUL (PostgreSQL refuses to store it), another
    control character (tab and line breaks are fine) or half of a surrogate pair (not valid Unicode; it
    cannot be written as UTF-8)."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    char = found.group()
    if char == "\x00":
        return "contains a NUL character (U+0000)"
    if "\ud800" <= char <= "\udfff":
        return f"contains half of a surrogate pair (U+{ord(char):04X}), which is not valid Unicode"
    return f"contains a control character (U+{ord(char):04X})"


FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# Characters a spreadsheet may split a cell on when it guesses the delimiter or the locale's list
# separator (Excel in much of Europe splits on ";"), and line breaks a sloppy importer splits rows on.
CELL_SEPARATORS = ",;\t|\r\n"
_SPLIT_FORMULA = re.compile(r"([,;\t|\r\n])( *[=+\-@])")  # spaces only: a tab or line break is a separator


def spreadsheet_safe(value: object) -> object:
    """A CSV cell that a spreadsheet will not run as a formula, however it splits the cell (OWASP CSV
    injection guidance): text starting with = + - @ tab or CR gets a leading single quote, and so does
    every piece after a separator a spreadsheet may split on (``x;=1+1`` -> ``x;'=1+1``, which Excel in
    a ";" locale would otherwise split into ``x`` and a formula). Numbers are left alone. Every CSV
    export goes through this."""
    if not isinstance(value, str):
        return value
    value = _SPLIT_FORMULA.sub(r"\1'\2", value)
    if value.startswith(FORMULA_PREFIXES) or value.lstrip(" ").startswith(FORMULA_PREFIXES):
        return "'" + value
    return value
