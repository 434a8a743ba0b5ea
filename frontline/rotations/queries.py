"""Read-only questions about rotations and plan runs, for the console and the CLI (views never query)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date

from sqlmodel import Session, col, select

from models import AuditEvent, Department, Employee, MentorPairing, PlanRun, Rotation

HISTORY_EVENTS = 50


@dataclass
class RotationDetails:
    """One rotation with its rotator, their department, the active mentor and the latest audit events."""

    rotation: Rotation
    employee: Employee
    department: Department | None
    mentor: Employee | None
    history: list[AuditEvent]


def active_pairing(session: Session, rotation_id: int) -> MentorPairing | None:
    return session.exec(
        select(MentorPairing).where(col(MentorPairing.rotation_id) == rotation_id, MentorPairing.status == "active")
    ).first()


def rotation_details(session: Session, rotation_id: int) -> RotationDetails | None:
    """None when there is no such rotation."""
    rotation = session.get(Rotation, rotation_id)
    if rotation is None:
        return None
    employee = session.get(Employee, rotation.employee_id)
    if employee is None:
        return None
    pairing = active_pairing(session, rotation_id)
    history = session.exec(
        select(AuditEvent)
        .where(AuditEvent.subject_type == "rotation", AuditEvent.subject_id == str(rotation.id))
        .order_by(col(AuditEvent.at).desc(), col(AuditEvent.id).desc())
        .limit(HISTORY_EVENTS)
    ).all()
    return RotationDetails(
        rotation=rotation,
        employee=employee,
        department=session.get(Department, employee.department_id),
        mentor=session.get(Employee, pairing.mentor_id) if pairing else None,
        history=list(history),
    )


def rotation_exists(session: Session, rotation_id: int) -> bool:
    return session.get(Rotation, rotation_id) is not None


def open_rotation_ids(session: Session, employee_pk: int) -> list[int]:
    """The employee's planned rotations that are not over (draft or invited)."""
    rows = session.exec(
        select(col(Rotation.id)).where(
            col(Rotation.employee_id) == employee_pk, col(Rotation.status).in_(["draft", "invited"])
        )
    ).all()
    return [rid for rid in rows if rid is not None]


def existing_rotation_ids(session: Session, rotation_ids: Collection[int]) -> set[int]:
    """Those of ``rotation_ids`` that still exist (withdrawn drafts are deleted, others cancelled)."""
    rows = session.exec(select(col(Rotation.id)).where(col(Rotation.id).in_(list(rotation_ids) or [-1]))).all()
    return {rid for rid in rows if rid is not None}


def announced_rotation_ids(session: Session, *, starting_by: date, ending_from: date) -> list[int]:
    """Rotations the rotator was told about that start by ``starting_by`` and end on or after ``ending_from``."""
    rows = session.exec(
        select(col(Rotation.id)).where(
            col(Rotation.start) <= starting_by,
            col(Rotation.end) >= ending_from,
            col(Rotation.announced_state).is_not(None),
        )
    ).all()
    return [rid for rid in rows if rid is not None]


def plan_run(session: Session, run_id: int | None) -> PlanRun | None:
    return None if run_id is None else session.get(PlanRun, run_id)


def latest_applied_run(session: Session) -> PlanRun | None:
    """The latest plan run that was not a dry run."""
    return session.exec(
        select(PlanRun)
        .where(col(PlanRun.dry_run).is_(False))
        .order_by(col(PlanRun.started_at).desc(), col(PlanRun.id).desc())
    ).first()
