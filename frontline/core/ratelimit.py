"""Rate limits that hold under concurrency, on SQLite and PostgreSQL.

A limit is a counter per *key* (what is limited and for whom: ``signin-ip:203.0.113.9``,
``signin-mail:<hash>``, ``escalation-mail:<hash>``) in :class:`models.RateLimitBucket`: at most ``limit``
uses per window, the window starting at the first use after the previous one ran out. :func:`take`
counts one use with a single conditional ``UPDATE`` (``... SET count = count + 1 WHERE key = :key AND
count < :limit``), so two requests can never both take the last use: PostgreSQL re-checks the condition
on the row the other transaction just updated, SQLite runs one writer at a time. Counting rows and
inserting afterwards (what the sign-in limit did before) lets every concurrent request see the same
count and pass.

The use is part of the caller's transaction: rolled back with it. Keys for addresses are hashed
(:func:`key_for`), so the table never holds an address somebody merely typed.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from frontline.core.clock import utcnow
from models import RateLimitBucket

_table = RateLimitBucket.__table__  # type: ignore[attr-defined]  # SQLModel tables have __table__
_key = _table.c.key
_start = _table.c.window_start
_count = _table.c.count


def key_for(kind: str, value: str) -> str:
    """The bucket key of ``value`` (an address, an IP) for a kind of limit: ``kind:<sha256 prefix>``."""
    digest = hashlib.sha256(value.strip().lower().encode("utf-8", "surrogatepass")).hexdigest()[:40]
    return f"{kind}:{digest}"


def _now(now: datetime | None) -> sa.BindParameter[datetime]:
    return sa.bindparam("now", now or utcnow(), type_=_start.type)


def take(session: Session, key: str, *, limit: int, window: timedelta, now: datetime | None = None) -> bool:
    """Count one use of ``key``; False (and nothing counted) when ``limit`` uses were already counted in
    the current window. Atomic: concurrent callers never count more than ``limit`` in one window."""
    stamp = now or utcnow()
    insert = _insert(session).values(key=key, window_start=stamp, count=0).on_conflict_do_nothing(index_elements=[_key])
    session.execute(insert)
    expired = _start <= sa.bindparam("cut", stamp - window, type_=_start.type)
    result = session.execute(
        sa.update(_table)
        .where(_key == key, sa.or_(expired, _count < limit))
        .values(
            count=sa.case((expired, 1), else_=_count + 1),
            window_start=sa.case((expired, _now(stamp)), else_=_start),
        )
    )
    return bool(getattr(result, "rowcount", 0))


def available(session: Session, key: str, *, limit: int, window: timedelta, now: datetime | None = None) -> bool:
    """Whether :func:`take` would count one more use of ``key`` now (a read; it counts nothing)."""
    stamp = now or utcnow()
    row = session.execute(sa.select(_start, _count).where(_key == key)).first()
    return row is None or row[0] <= stamp - window or row[1] < limit


def window_end(session: Session, key: str, *, window: timedelta) -> datetime | None:
    """When the current window of ``key`` runs out (None when nothing was counted)."""
    start = session.execute(sa.select(_start).where(_key == key)).scalar_one_or_none()
    return None if start is None else start + window


def forget_expired(session: Session, *, older_than: timedelta, now: datetime | None = None) -> int:
    """Delete buckets whose window started more than ``older_than`` ago (they count nothing any more)."""
    cut = (now or utcnow()) - older_than
    result = session.execute(sa.delete(_table).where(_start < sa.bindparam("cut", cut, type_=_start.type)))
    return int(getattr(result, "rowcount", 0) or 0)


def _insert(session: Session) -> Any:  # the dialect's Insert, which has on_conflict_do_nothing
    """``INSERT ... ON CONFLICT DO NOTHING`` of the session's database (SQLite 3.24+ and PostgreSQL)."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(_table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(_table)
