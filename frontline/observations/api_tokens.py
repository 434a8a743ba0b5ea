"""Bearer tokens for ``POST /api/observations``: per rotator (the token submits as that person) or per
integration (each request names the rotator). Only a hash of the secret is stored."""

from __future__ import annotations

import secrets
from datetime import datetime
from functools import cache
from typing import NamedTuple

import sqlalchemy as sa
from sqlmodel import Session, col, select

from frontline.core import audit
from frontline.core.security import hash_secret
from models import ApiToken, Employee, utcnow

API_TOKEN_PREFIX = "flo_"


def create_api_token(session: Session, name: str, employee: Employee | None = None) -> tuple[ApiToken, str]:
    """A new bearer token for ``POST /api/observations``: per rotator (``employee``) or per
    integration (None: each request names the rotator). Returns the row and the secret, which is
    shown once; only its hash is stored."""
    name = name.strip()
    if not name:
        raise ValueError("a token needs a name")
    if session.exec(select(ApiToken).where(ApiToken.name == name, col(ApiToken.revoked_at).is_(None))).first():
        raise ValueError(f"an active token called {name!r} exists; revoke it first or pick another name")
    secret = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(name=name, employee_id=employee.id if employee else None, token_hash=hash_secret(secret))
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor="cli",
        action="api_token.created",
        subject_type="api_token",
        subject_id=row.id,
        name=name,
        employee=employee.employee_id if employee else None,
    )
    return row, secret


def revoke_api_token(session: Session, name: str) -> int:
    """Revoke every active token called ``name``; returns how many."""
    rows = session.exec(select(ApiToken).where(ApiToken.name == name, col(ApiToken.revoked_at).is_(None))).all()
    for row in rows:
        row.revoked_at = utcnow()
        session.add(row)
        audit.record(
            session, actor="cli", action="api_token.revoked", subject_type="api_token", subject_id=row.id, name=name
        )
    return len(rows)


class TokenRow(NamedTuple):
    """An API token as authentication reads it (never the hash or the secret)."""

    id: int
    name: str
    employee_id: int | None  # Employee.id of a rotator token; None for an integration token
    revoked_at: datetime | None


@cache
def _token_by_hash() -> sa.Select:
    """Built once, reused with a bound value (hot path)."""
    return sa.select(col(ApiToken.id), col(ApiToken.name), col(ApiToken.employee_id), col(ApiToken.revoked_at)).where(
        col(ApiToken.token_hash) == sa.bindparam("token_hash", type_=sa.String())
    )


def authenticate_api_token(session: Session, secret: str) -> TokenRow | None:
    """The active token for ``secret`` (looked up by its hash), or None."""
    if not secret or len(secret) > 200:
        return None
    row = session.execute(_token_by_hash(), {"token_hash": hash_secret(secret)}).first()
    if row is None or row.revoked_at is not None:
        return None
    return TokenRow(*row)


def list_api_tokens(session: Session) -> list[tuple[ApiToken, str | None]]:
    """Every token with the HR id of its rotator (None for an integration token), oldest first."""
    people = {e.id: e.employee_id for e in session.exec(select(Employee)).all()}
    return [(t, people.get(t.employee_id)) for t in session.exec(select(ApiToken).order_by(col(ApiToken.id))).all()]
