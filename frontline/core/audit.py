"""Audit trail: who did what, when, to what, with which counts. Every import, flow and HR action
writes one event through :func:`record`."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from models import AuditEvent


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    subject_type: str | None = None,
    subject_id: object | None = None,
    reason: str | None = None,
    **details: Any,
) -> AuditEvent:
    event = AuditEvent(
        actor=actor,
        action=action,
        subject_type=subject_type,
        subject_id=None if subject_id is None else str(subject_id),
        reason=reason,
        details=details,
    )
    session.add(event)
    return event
