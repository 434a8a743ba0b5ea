"""Onboarding one new hire between nightly runs: an *add-only* planner run for that person.

:func:`plan_new_hire` places one person into the current plan without moving anybody else: every other
person's rotation (drafts included) counts as fixed capacity, and the same solver, rules and policy as
the nightly plan decide the new hire's start week (seats per week, department cap, absences,
blackouts, onboarding window). The nightly ``plan-rotations`` run may later move the draft like any
other (stable re-planning keeps it unless something must change).

Idempotent: a person who already has a rotation in the horizon is left alone and reported as such.
"""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Any

from sqlmodel import Session, col, select

from frontline.core import audit, clock
from frontline.core.clock import monday_on_or_after
from frontline.core.policy import Policy
from frontline.rotations.inputs import PlanningInput
from frontline.rotations.service import load_input
from frontline.rotations.solver import LockedRotation, PlanInput, solve
from frontline.rotations.weeks import rotation_end, week_of, week_start
from models import Employee, Rotation


def plan_new_hire(
    session: Session,
    policy: Policy,
    employee_id: str,
    *,
    today: date | None = None,
    weeks: int = 52,
    actor: str = "flow:onboard-new-hire",
) -> dict[str, Any]:
    """Give ``employee_id`` (external id) a draft rotation if they need one. Caller commits.

    Returns ``{"employee_id", "status", "rotation_id", "start", "reason"}`` with status ``planned``,
    ``already_planned``, ``not_planned`` (not someone to plan now: left, support, exempt, not due) or
    ``unplaced`` (no start week satisfies the rules; ``reason`` says which rule binds).
    """
    emp = session.exec(select(Employee).where(col(Employee.employee_id) == employee_id)).first()
    if emp is None or emp.id is None:
        raise LookupError(f"no employee with employee_id {employee_id!r}")
    horizon = monday_on_or_after(today or clock.today())
    result: dict[str, Any] = {
        "employee_id": employee_id,
        "status": "",
        "rotation_id": None,
        "start": None,
        "reason": "",
    }
    existing = _live_rotation(session, emp.id, horizon)
    if existing is not None:
        return result | {"status": "already_planned", "rotation_id": existing.id, "start": existing.start.isoformat()}
    planning = load_input(session, policy, horizon, weeks)
    inp = add_only_input(planning, employee_id)
    if inp is None:
        return result | {
            "status": "not_planned",
            "reason": "not someone to plan now (left, support, exempt or not due)",
        }
    out = solve(inp)
    if employee_id not in out.assignments:
        reason = out.unplaced[0].reason if out.unplaced else "no feasible start week"
        audit.record(
            session,
            actor=actor,
            action="onboarding.unplaced",
            subject_type="employee",
            subject_id=employee_id,
            reason=reason,
        )
        return result | {"status": "unplaced", "reason": reason}
    start = week_start(horizon, out.assignments[employee_id])
    rotation = _add_draft(session, policy, planning, emp.id, employee_id, start, actor)
    return result | {"status": "planned", "rotation_id": rotation.id, "start": start.isoformat()}


def _live_rotation(session: Session, employee_pk: int, horizon: date) -> Rotation | None:
    """The employee's first rotation that is not cancelled and not over before the horizon."""
    return session.exec(
        select(Rotation)
        .where(col(Rotation.employee_id) == employee_pk, Rotation.status != "cancelled", col(Rotation.end) >= horizon)
        .order_by(col(Rotation.start))
    ).first()


def _add_draft(
    session: Session,
    policy: Policy,
    planning: PlanningInput,
    employee_pk: int,
    employee_id: str,
    start: date,
    actor: str,
) -> Rotation:
    """The new hire's draft rotation from ``start``, with its audit event."""
    rotation = Rotation(
        employee_id=employee_pk,
        start=start,
        end=rotation_end(start, policy.length_weeks),
        kind=planning.kinds[employee_id],
        status="draft",
        due=planning.due_dates[employee_id],
        change_reason="planned at hire (onboarding)",
    )
    session.add(rotation)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="rotation.created",
        subject_type="rotation",
        subject_id=rotation.id,
        reason="new hire onboarding (add-only plan)",
        employee_id=employee_id,
        start=start.isoformat(),
    )
    return rotation


def add_only_input(planning: PlanningInput, employee_id: str) -> PlanInput | None:
    """The solver input that places only ``employee_id``, with everyone else's draft as fixed capacity
    (None when the nightly plan would not plan that person now). Pure."""
    person = next((p for p in planning.inp.people if p.key == employee_id), None)
    if person is None:
        return None
    horizon = planning.inp.horizon_start
    dept_of = {p.key: p.dept for p in planning.inp.people}
    others = [
        LockedRotation(key, dept_of[key], week_of(horizon, rot.start))
        for key, rot in planning.drafts.items()
        if key != employee_id
    ]
    return dataclasses.replace(planning.inp, people=[person], locked=list(planning.inp.locked) + others)
