"""The signed payloads behind the console's cookie, its CSRF tokens and its flash messages.

* **Session**: a signed payload (:mod:`frontline.core.security`, purpose ``console-session``): a random
  session id and, once signed in, the email and the time of sign-in; valid 12 hours.
* **CSRF**: a token signed for the session id (double submit, bound to the session).
* **Flash**: a one-line message signed so nobody can put their own text on a console page (10 minutes).
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from frontline.core.errors import AccessDenied
from frontline.core.security import InvalidToken, sign, verify

SESSION_PURPOSE = "console-session"
CSRF_PURPOSE = "console-csrf"
FLASH_PURPOSE = "console-flash"
SESSION_SECONDS = 12 * 3600
FLASH_SECONDS = 600


def new_session(email: str | None = None) -> dict[str, Any]:
    """A fresh session id (no fixation), signed in as ``email`` (or anonymous when None)."""
    data: dict[str, Any] = {"sid": secrets.token_urlsafe(18)}
    if email:
        data["email"] = email
        data["at"] = int(time.time())
    return data


def sign_session(data: dict[str, Any]) -> str:
    """The cookie value for a session payload."""
    return sign(SESSION_PURPOSE, data)


def read_session(cookie: str | None) -> dict[str, Any] | None:
    """The session payload of a cookie value, or None when it is missing, forged, expired or malformed."""
    if not cookie:
        return None
    try:
        data = verify(SESSION_PURPOSE, cookie, max_age_seconds=SESSION_SECONDS)
    except InvalidToken:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("sid"), str):
        return None
    return data


def csrf_token(sid: str) -> str:
    """The CSRF token of the session ``sid``."""
    return sign(CSRF_PURPOSE, sid)


def check_csrf(cookie: str | None, token: str | None) -> None:
    """Raise :class:`AccessDenied` unless ``token`` is a CSRF token for the session in ``cookie``."""
    if not token or not cookie:
        raise AccessDenied(
            "This form has expired or was not sent from Frontline (missing CSRF token). "
            "Go back, reload the page and try again."
        )
    try:
        data = verify(SESSION_PURPOSE, cookie, max_age_seconds=SESSION_SECONDS)
        sid = verify(CSRF_PURPOSE, token, max_age_seconds=SESSION_SECONDS)
    except InvalidToken:
        raise AccessDenied(
            "This form has expired or was not sent from Frontline (bad CSRF token). "
            "Go back, reload the page and try again."
        ) from None
    if not isinstance(data, dict) or not secrets.compare_digest(str(data.get("sid")), str(sid)):
        raise AccessDenied("This form does not belong to your session (CSRF token mismatch).")


def sign_flash(message: str) -> str:
    return sign(FLASH_PURPOSE, message)


def read_flash(token: str | None) -> str | None:
    """The message of a signed flash token, or None (missing, forged, expired, not text)."""
    if not token:
        return None
    try:
        message = verify(FLASH_PURPOSE, token, max_age_seconds=FLASH_SECONDS)
    except InvalidToken:
        return None
    return message if isinstance(message, str) else None
