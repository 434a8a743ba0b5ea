"""The console's sessions (signed cookie payload + server-side row), its CSRF tokens and its flash messages.

* **Session**: a signed payload (:mod:`frontline.core.security`, purpose ``console-session``): a random
  session id and, once signed in, the email and the time of sign-in; valid 12 hours. A signed-in session
  also lives on the server (:class:`models.ConsoleSession`, keyed by the SHA-256 of the id): it is
  created by the sign-in link (:func:`start`), checked on every request (:func:`is_active`) and ended by
  signing out (:func:`end`), so a copied cookie stops working at sign-out, not 12 hours later.
* **CSRF**: a token signed for the session id (double submit, bound to the session).
* **Flash**: a one-line message signed so nobody can put their own text on a console page (10 minutes).
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlmodel import Session, col, select

from frontline.core.clock import utcnow
from frontline.core.errors import AccessDenied
from frontline.core.security import InvalidToken, hash_secret, sign, verify
from models import ConsoleSession

SESSION_PURPOSE = "console-session"
CSRF_PURPOSE = "console-csrf"
FLASH_PURPOSE = "console-flash"
SESSION_SECONDS = 12 * 3600
FLASH_SECONDS = 600


KEEP_ENDED_SESSIONS = timedelta(days=30)  # server-side rows are deleted this long after they expired


def new_session() -> dict[str, Any]:
    """A fresh anonymous session (a new id: no fixation); it carries the CSRF tokens of the sign-in forms."""
    return {"sid": secrets.token_urlsafe(18)}


def start(session: Session, email: str, signin_nonce: str, *, now: datetime | None = None) -> dict[str, Any]:
    """Sign ``email`` in: a new session id, recorded on the server with the sign-in link's nonce, which is
    unique (flushed here: a second use of the same link raises ``IntegrityError``). Returns the cookie
    payload. The caller commits."""
    now = now or utcnow()
    sid = secrets.token_urlsafe(18)
    row = ConsoleSession(
        sid_hash=hash_secret(sid),
        email=email,
        signin_nonce=signin_nonce[:100],
        created_at=now,
        expires_at=now + timedelta(seconds=SESSION_SECONDS),
    )
    session.add(row)
    session.flush()
    session.execute(delete(ConsoleSession).where(col(ConsoleSession.expires_at) < now - KEEP_ENDED_SESSIONS))
    return {"sid": sid, "email": email, "at": int(now.timestamp())}


def _row(session: Session, data: dict[str, Any]) -> ConsoleSession | None:
    sid = data.get("sid")
    if not isinstance(sid, str):
        return None
    return session.exec(select(ConsoleSession).where(ConsoleSession.sid_hash == hash_secret(sid))).first()


def is_active(session: Session, data: dict[str, Any], *, now: datetime | None = None) -> bool:
    """Whether the signed-in cookie payload ``data`` names a session the server still holds: started by a
    sign-in link for the same address, not signed out, not expired."""
    row = _row(session, data)
    return (
        row is not None
        and row.ended_at is None
        and row.expires_at > (now or utcnow())
        and secrets.compare_digest(row.email, str(data.get("email", "")))
    )


def end(session: Session, data: dict[str, Any], *, now: datetime | None = None) -> bool:
    """Sign out: the server forgets the session of ``data`` (every copy of its cookie stops working).
    False when there was no active session. The caller commits."""
    row = _row(session, data)
    if row is None or row.ended_at is not None:
        return False
    row.ended_at = now or utcnow()
    session.add(row)
    return True


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
