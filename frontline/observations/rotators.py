"""A rotator as the observation pages see them: who may use a personal link, their current rotation
and mentor, and their own observations (the form's recent list, the console's ``/console/me``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlmodel import Session, col, select

from frontline.core import clock
from models import Department, Employee, MentorPairing, Observation, Rotation


def active_employee(session: Session, employee_id: int) -> Employee | None:
    """The employee with this ``Employee.id`` while they are active (a personal link of someone who
    left opens nothing), else None."""
    employee = session.get(Employee, employee_id)
    return employee if employee is not None and employee.active else None


def current_rotation(session: Session, employee_id: int, on: date | None = None) -> Rotation | None:
    on = on or clock.today()
    return session.exec(
        select(Rotation)
        .where(Rotation.employee_id == employee_id, Rotation.status != "cancelled")
        .where(Rotation.start <= on, Rotation.end >= on)
        .order_by(col(Rotation.start).desc())
    ).first()


def mentor_for(session: Session, rotation_id: int | None) -> Employee | None:
    """The active mentor of a rotation (the newest pairing), or None."""
    if rotation_id is None:
        return None
    return session.exec(
        select(Employee)
        .join(MentorPairing, col(MentorPairing.mentor_id) == col(Employee.id))
        .where(MentorPairing.rotation_id == rotation_id, MentorPairing.status == "active")
        .order_by(col(MentorPairing.id).desc())
    ).first()


def recent_observations(session: Session, rotator_id: int, limit: int = 10) -> list[Observation]:
    return list(
        session.exec(
            select(Observation)
            .where(Observation.rotator_id == rotator_id)
            .order_by(col(Observation.created_at).desc(), col(Observation.id).desc())
            .limit(limit)
        ).all()
    )


@dataclass
class RotatorOverview:
    """What ``/console/me`` shows a rotator: their rotations with each one's mentor, and their own
    observations with the names of the departments they were addressed to."""

    employee: Employee
    rotations: list[Rotation]
    mentors: dict[int, Employee]  # rotation id -> active mentor
    observations: list[Observation]  # newest first
    departments: dict[int, str]  # department id -> name


def rotator_overview(session: Session, employee_id: int, observation_limit: int = 200) -> RotatorOverview | None:
    """The overview of the employee with this ``Employee.id`` (None when there is none)."""
    employee = session.get(Employee, employee_id)
    if employee is None:
        return None
    rotations = list(
        session.exec(
            select(Rotation)
            .where(Rotation.employee_id == employee_id, Rotation.status != "cancelled")
            .order_by(col(Rotation.start))
        ).all()
    )
    mentors = {}
    for rotation in rotations:
        mentor = mentor_for(session, rotation.id)
        if rotation.id is not None and mentor is not None:
            mentors[rotation.id] = mentor
    observations = list(
        session.exec(
            select(Observation)
            .where(Observation.rotator_id == employee_id)
            .order_by(col(Observation.created_at).desc())
            .limit(observation_limit)
        ).all()
    )
    departments = {d.id: d.name for d in session.exec(select(Department)).all() if d.id is not None}
    return RotatorOverview(employee, rotations, mentors, observations, departments)
