"""Onboarding new hires between nightly runs: who is still owed something, and their placement.

:func:`pending_new_hires` is the onboarding work list, read from the database (never from the events that
announced the hires, so nothing is lost when events are many, duplicated or dropped): new hires whose
onboarding is not finished. :func:`plan_new_hires` places them with the **full planner**
(:func:`frontline.rotations.service.plan_rotations`), so a new hire gets the same placement the nightly plan
would give: within the policy's ``new_hire_within_weeks`` whenever the optimum can, moving other people's
*drafts* when that is what the optimum does (announced and locked rotations never move). Both are
idempotent: a hire who is placed, paired and (inside the announce window) invited is no longer pending, and
re-planning an unchanged roster changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from sqlmodel import Session, col, select

from frontline.core import clock
from frontline.core.policy import Policy
from models import AuditEvent, Department, Employee, MentorPairing, Rotation

LIVE = ("draft", "invited")


def new_hire_since(policy: Policy, today: date) -> date:
    """The earliest hire date that still counts as a new hire on ``today``: ``new_hire_within_weeks`` back."""
    return today - timedelta(weeks=policy.new_hire_within_weeks)


def is_new_hire(policy: Policy, hire_date: date, last_rotation: date | None, today: date) -> bool:
    """Never rotated and hired no longer than the policy's new-hire window ago (or later: future hires)."""
    return last_rotation is None and hire_date >= new_hire_since(policy, today)


def pending_new_hires(
    session: Session, policy: Policy, *, today: date | None = None, announce_weeks: int = 8
) -> list[str]:
    """External ids (sorted) of the new hires onboarding still owes something.

    A new hire (active, outside the support department, never rotated, hired within the policy's
    ``new_hire_within_weeks`` or later) is pending while they have no live rotation, or their live rotation
    has no active mentor pairing, or it starts inside the announce window (``announce_weeks`` from
    ``today``) and has not been announced yet."""
    today = today or clock.today()
    rows = session.exec(
        select(Employee.id, Employee.employee_id)
        .join(Department, col(Department.id) == col(Employee.department_id))
        .where(
            col(Employee.active).is_(True),
            col(Employee.last_rotation).is_(None),
            col(Employee.hire_date) >= new_hire_since(policy, today),
            col(Department.name) != policy.support_department,
        )
    ).all()
    if not rows:
        return []
    key_of: dict[int, str] = {int(pk): str(eid) for pk, eid in rows if pk is not None}
    rotations = session.exec(
        select(Rotation)
        .where(col(Rotation.employee_id).in_(list(key_of)), col(Rotation.status).in_(LIVE), Rotation.end >= today)
        .order_by(col(Rotation.start))
    ).all()
    first: dict[int, Rotation] = {}
    for rotation in rotations:
        first.setdefault(rotation.employee_id, rotation)
    paired = set(
        session.exec(
            select(MentorPairing.rotation_id).where(
                col(MentorPairing.rotation_id).in_([r.id for r in first.values()]), MentorPairing.status == "active"
            )
        ).all()
    )
    announce_until = today + timedelta(weeks=announce_weeks)
    pending = [
        key_of[pk]
        for pk in key_of
        if pk not in first
        or first[pk].id not in paired
        or (first[pk].status == "draft" and first[pk].start <= announce_until)
    ]
    return sorted(pending)


def plan_new_hires(
    session: Session,
    policy: Policy,
    employee_ids: Iterable[str],
    *,
    today: date | None = None,
    weeks: int = 52,
    actor: str = "flow:onboard-new-hire",
) -> dict[str, Any]:
    """Run the full planner (caller commits) and report where each of ``employee_ids`` stands.

    Returns ``{"plan": <the plan summary>, "hires": {employee_id: {"status", "rotation_id", "start",
    "weeks_after_hire", "reason"}}}``; status is ``planned`` (a live rotation), ``unplaced`` (the planner
    found no start week; ``reason`` says which rule binds) or ``not_planned`` (not someone to plan now:
    left, support, exempt)."""
    from frontline.rotations.service import plan_rotations

    today = today or clock.today()
    ids = sorted(set(employee_ids))
    result = plan_rotations(session, policy, today=today, weeks=weeks, actor=actor)
    session.flush()
    unplaced = {u.get("employee_id"): u.get("reason", "") for u in result.unplaced}
    people = {e.employee_id: e for e in session.exec(select(Employee).where(col(Employee.employee_id).in_(ids))).all()}
    hires: dict[str, dict[str, Any]] = {}
    for key in ids:
        emp = people.get(key)
        rotation = None
        if emp is not None:
            rotation = session.exec(
                select(Rotation)
                .where(Rotation.employee_id == emp.id, col(Rotation.status).in_(LIVE), Rotation.end >= today)
                .order_by(col(Rotation.start))
            ).first()
        if rotation is not None and emp is not None:
            weeks_after = (rotation.start - clock.monday(emp.hire_date)).days // 7
            hires[key] = {
                "status": "planned",
                "rotation_id": rotation.id,
                "start": rotation.start.isoformat(),
                "weeks_after_hire": weeks_after,
                "reason": "",
            }
        else:
            status = "unplaced" if key in unplaced else "not_planned"
            reason = unplaced.get(key) or "not someone to plan now (left, support or exempt)"
            hires[key] = {
                "status": status,
                "rotation_id": None,
                "start": None,
                "weeks_after_hire": None,
                "reason": reason,
            }
    return {"plan": result.summary(), "hires": hires}


def unrecorded_onboarded(
    session: Session, policy: Policy, *, today: date | None = None, announce_weeks: int = 8
) -> dict[str, dict[str, Any]]:
    """New hires onboarding owes nothing any more (not :func:`pending_new_hires`) but who have no
    ``onboarding.hire`` record: a run stopped between its last step and its record (a worker stopped mid-run),
    or they were placed by another job. Each with what the record says (rotation, start, mentor, invited), so
    the next onboarding run can record them; the work itself is never redone."""
    today = today or clock.today()
    pending = set(pending_new_hires(session, policy, today=today, announce_weeks=announce_weeks))
    rows = session.exec(
        select(Employee.id, Employee.employee_id)
        .join(Department, col(Department.id) == col(Employee.department_id))
        .where(
            col(Employee.active).is_(True),
            col(Employee.last_rotation).is_(None),
            col(Employee.hire_date) >= new_hire_since(policy, today),
            col(Department.name) != policy.support_department,
        )
    ).all()
    key_of = {int(pk): str(eid) for pk, eid in rows if pk is not None and str(eid) not in pending}
    if not key_of:
        return {}
    recorded = set(
        session.exec(
            select(AuditEvent.subject_id).where(
                AuditEvent.action == "onboarding.hire", col(AuditEvent.subject_id).in_(list(key_of.values()))
            )
        ).all()
    )
    first: dict[int, Rotation] = {}
    for live in session.exec(
        select(Rotation)
        .where(col(Rotation.employee_id).in_(list(key_of)), col(Rotation.status).in_(LIVE), Rotation.end >= today)
        .order_by(col(Rotation.start))
    ).all():
        first.setdefault(live.employee_id, live)
    mentors = mentors_of(session, [r.id for r in first.values() if r.id is not None])
    out: dict[str, dict[str, Any]] = {}
    for pk, employee_id in key_of.items():
        rotation = first.get(pk)
        if employee_id in recorded or rotation is None or rotation.id is None:
            continue
        out[employee_id] = {
            "status": "planned",
            "rotation_id": rotation.id,
            "start": rotation.start.isoformat(),
            "mentor": mentors.get(rotation.id),
            "invited": rotation.status == "invited",
            "reason": "onboarded before this run (e.g. by a run stopped before its record); recorded now",
        }
    return out


def mentors_of(session: Session, rotation_ids: Iterable[int]) -> dict[int, str]:
    """The external id of the active mentor of each of ``rotation_ids`` that has one."""
    ids = list(rotation_ids)
    if not ids:
        return {}
    rows = session.exec(
        select(MentorPairing.rotation_id, Employee.employee_id)
        .join(Employee, col(Employee.id) == col(MentorPairing.mentor_id))
        .where(col(MentorPairing.rotation_id).in_(ids), MentorPairing.status == "active")
    ).all()
    return {int(rotation_id): str(mentor) for rotation_id, mentor in rows}


def announced(session: Session, rotation_ids: Iterable[int]) -> set[int]:
    """Those of ``rotation_ids`` that have been announced (status ``invited``)."""
    ids = list(rotation_ids)
    if not ids:
        return set()
    rows = session.exec(select(Rotation.id).where(col(Rotation.id).in_(ids), Rotation.status == "invited")).all()
    return {int(r) for r in rows if r is not None}


def record_onboarded(session: Session, hires: dict[str, dict[str, Any]], actor: str) -> None:
    """One ``onboarding.hire`` AuditEvent per hire with where onboarding left them (rotation, mentor, invite)."""
    from frontline.core import audit

    for employee_id, hire in sorted(hires.items()):
        details: dict[str, Any] = {k: v for k, v in hire.items() if isinstance(v, (str, int, bool)) or v is None}
        audit.record(
            session,
            actor=actor,
            action="onboarding.hire",
            subject_type="employee",
            subject_id=employee_id,
            reason=details.pop("reason", None) or None,
            **details,
        )
