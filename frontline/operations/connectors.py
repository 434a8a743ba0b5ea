"""What each connector (calendar feeds, SCIM provisioning) last did: its last success and its last error.

A failure is recorded in a transaction of its own (the work that failed wrote nothing), a success in the
transaction of the work it describes. ``frontline status`` lists every connector and flags one whose last
error is newer than its last success.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from frontline.core.text import one_line
from models import ConnectorStatus

MAX_TEXT = 500


def _row(session: Session, name: str) -> ConnectorStatus:
    row = session.exec(select(ConnectorStatus).where(col(ConnectorStatus.name) == name)).first()
    if row is None:
        row = ConnectorStatus(name=name)
        session.add(row)
    return row


def record_success(session: Session, name: str, detail: str, now: datetime) -> None:
    row = _row(session, name)
    row.last_success_at = now
    row.last_success = one_line(detail)[:MAX_TEXT]
    session.add(row)
    session.flush()


def record_failure(session: Session, name: str, error: str, now: datetime) -> None:
    row = _row(session, name)
    row.last_error_at = now
    row.last_error = one_line(error)[:MAX_TEXT]
    session.add(row)
    session.flush()


def connector_rows(session: Session) -> list[dict[str, Any]]:
    """Every connector with its last success and error; ``failing`` when the error is the newer of the two."""
    rows = []
    for c in session.exec(select(ConnectorStatus).order_by(col(ConnectorStatus.name))).all():
        failing = c.last_error_at is not None and (c.last_success_at is None or c.last_error_at > c.last_success_at)
        rows.append(
            {
                "connector": c.name,
                "last_success_at": c.last_success_at,
                "last_success": c.last_success,
                "last_error_at": c.last_error_at,
                "last_error": c.last_error,
                "failing": failing,
            }
        )
    return rows
