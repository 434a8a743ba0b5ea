"""Console accounts: the HR admins (``frontline users add-hr`` / ``remove-hr`` / ``list``). Department
heads and rotators need no account: their roles come from the roster (see :mod:`frontline.access.principal`)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from frontline.access.principal import normalise_email
from frontline.core import audit
from models import ConsoleUser, utcnow


def add_hr(session: Session, email: str, *, actor: str) -> ConsoleUser:
    """Make ``email`` an HR admin of the console (idempotent; re-enables a disabled one)."""
    email = normalise_email(email)
    if "@" not in email or len(email) > 320:
        raise ValueError(f"{email!r} is not an email address")
    user = session.exec(select(ConsoleUser).where(ConsoleUser.email == email)).first()
    if user is None:
        user = ConsoleUser(email=email, role="hr", added_by=actor)
        session.add(user)
    user.disabled_at = None
    audit.record(session, actor=actor, action="console.add_hr", subject_type="console_user", subject_id=email)
    return user


def remove_hr(session: Session, email: str, *, actor: str) -> bool:
    """Take the HR admin role away from ``email``; False when it is not an (enabled) HR admin."""
    email = normalise_email(email)
    user = session.exec(select(ConsoleUser).where(ConsoleUser.email == email)).first()
    if user is None or user.disabled_at is not None:
        return False
    user.disabled_at = utcnow()
    audit.record(session, actor=actor, action="console.remove_hr", subject_type="console_user", subject_id=email)
    return True


def list_hr(session: Session) -> list[dict[str, Any]]:
    """Every HR admin account (enabled or disabled), by email."""
    rows = session.exec(select(ConsoleUser).order_by(col(ConsoleUser.email))).all()
    return [
        {
            "email": u.email,
            "role": u.role,
            "added_by": u.added_by,
            "since": u.created_at.date().isoformat(),
            "state": "disabled" if u.disabled_at else "active",
        }
        for u in rows
    ]
