"""HR overrides of the plan: move, swap, defer, exempt, lock, unlock, and re-pairing a rotator's mentor.

Each override is validated against the planner's hard rules (:func:`validate_start`), needs a reason and is
audited; a moved, swapped or deferred rotation becomes locked, so the next plan keeps HR's decision. The
caller owns the transaction (the console performs an override, shows the outcome, and rolls it back until
HR confirms).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, timedelta

from sqlmodel import Session, col, select

from frontline.core import audit, clock
from frontline.core.clock import monday_on_or_after
from frontline.core.errors import PlanningError
from frontline.core.policy import Policy
from frontline.rotations.lifecycle import withdraw
from frontline.rotations.queries import active_pairing
from frontline.rotations.solver import department_cap
from frontline.rotations.weeks import rotation_end
from models import Absence, Department, Employee, Rotation, utcnow

OPEN_STATUSES = ("draft", "invited")  # planned and not over: what an override may still change


def _reason(reason: str | None) -> str:
    if reason is None or not reason.strip():
        raise PlanningError("a reason is required for every override")
    return reason.strip()


def _rotation(session: Session, rotation_id: int) -> Rotation:
    rot = session.get(Rotation, rotation_id)
    if rot is None:
        raise PlanningError(f"rotation {rotation_id} does not exist")
    if rot.status in {"cancelled", "done"}:
        raise PlanningError(f"rotation {rotation_id} is {rot.status} and cannot be changed")
    return rot


def _employee(session: Session, employee_id: str) -> Employee:
    e = session.exec(select(Employee).where(col(Employee.employee_id) == employee_id)).first()
    if e is None:
        raise PlanningError(f"employee {employee_id!r} does not exist")
    return e


def _owner(session: Session, rot: Rotation) -> Employee:
    e = session.get(Employee, rot.employee_id)
    if e is None:
        raise PlanningError(f"rotation {rot.id} belongs to no employee")
    return e


def upcoming_rotation(session: Session, employee_id: str) -> Rotation:
    """The employee's latest planned (draft or invited) rotation."""
    e = _employee(session, employee_id)
    rot = session.exec(
        select(Rotation)
        .where(col(Rotation.employee_id) == e.id)
        .where(col(Rotation.status).in_(OPEN_STATUSES))
        .order_by(col(Rotation.start).desc())
    ).first()
    if rot is None:
        raise PlanningError(f"employee {employee_id} has no planned rotation to change")
    return rot


# --------------------------------------------------------------------------------------------------
# The hard rules


def validate_start(
    session: Session,
    policy: Policy,
    rot: Rotation,
    new_start: date,
    *,
    ignore: Collection[int | None] = (),
    check_capacity: bool = True,
) -> None:
    """Raise PlanningError when ``rot`` may not start on ``new_start`` (hard rules)."""
    end = rotation_end(new_start, policy.length_weeks)
    e = _owner(session, rot)
    who = f"{e.employee_id} ({e.email})"
    if new_start.weekday() != 0:
        raise PlanningError(f"{new_start} is a {new_start.strftime('%A')}; rotations start on a Monday")
    if new_start < e.hire_date:
        raise PlanningError(f"{new_start} is before {who} is hired on {e.hire_date}")
    if not e.active or (e.left_on is not None and end >= e.left_on):
        raise PlanningError(f"{who} leaves on {e.left_on}; a rotation {new_start}..{end} would not end before that")
    for a in session.exec(select(Absence).where(col(Absence.employee_id) == e.id)).all():
        if a.start <= end and a.end >= new_start:
            raise PlanningError(
                f"{new_start}..{end} overlaps {who}'s absence {a.start}..{a.end} ({a.reason or 'absence'})"
            )
    for b in policy.blackouts:
        if b.start <= end and b.end >= new_start:
            raise PlanningError(
                f"{new_start}..{end} overlaps the blackout {b.start}..{b.end} ({b.reason or 'blackout'})"
            )
    if check_capacity:
        _check_capacity(session, policy, rot, e, new_start, end, ignore)


def _check_capacity(
    session: Session,
    policy: Policy,
    rot: Rotation,
    e: Employee,
    new_start: date,
    end: date,
    ignore: Collection[int | None],
) -> None:
    """Every week of ``new_start..end`` has a free seat and room under ``e``'s department cap."""
    others = [
        (r, oe)
        for r, oe in session.exec(
            select(Rotation, Employee)
            .where(col(Rotation.employee_id) == col(Employee.id))
            .where(Rotation.status != "cancelled")
            .where(col(Rotation.start) <= end)
            .where(col(Rotation.end) >= new_start)
        ).all()
        if r.id != rot.id and r.id not in ignore
    ]
    dept = session.get(Department, e.department_id)
    if dept is None:
        raise PlanningError(f"{e.employee_id} belongs to no department")
    headcount = len(
        session.exec(
            select(Employee.id)
            .where(col(Employee.department_id) == e.department_id)
            .where(col(Employee.active) == True)  # noqa: E712 - SQL, not Python truth
        ).all()
    )
    fraction = dept.max_away_fraction if dept.max_away_fraction is not None else policy.max_department_away_fraction
    cap = department_cap(fraction, headcount)
    day = new_start
    while day <= end:
        week_end = day + timedelta(days=6)
        on = [(r, oe) for r, oe in others if r.start <= week_end and r.end >= day]
        if len(on) >= policy.seats_per_week:
            raise PlanningError(f"the week of {day} already has {len(on)} of {policy.seats_per_week} seats taken")
        same = sum(1 for _r, oe in on if oe.department_id == e.department_id)
        if same >= cap:
            raise PlanningError(f"department {dept.name} already has {same} of at most {cap} away in the week of {day}")
        day += timedelta(days=7)


# --------------------------------------------------------------------------------------------------
# Overrides


def _reschedule(
    session: Session, policy: Policy, rot: Rotation, new_start: date, verb: str, reason: str, actor: str
) -> Rotation:
    """Move ``rot`` (already validated) to ``new_start`` and lock it there; audited as ``rotation.<verb>``."""
    old = rot.start
    rot.start, rot.end, rot.locked = new_start, rotation_end(new_start, policy.length_weeks), True
    done = {"move": "moved", "defer": "deferred"}[verb]
    rot.change_reason, rot.updated_at = f"{done} by HR from {old} to {new_start}: {reason}", utcnow()
    session.add(rot)
    audit.record(
        session,
        actor=actor,
        action=f"rotation.{verb}",
        subject_type="rotation",
        subject_id=rot.id,
        reason=reason,
        old_start=old.isoformat(),
        new_start=new_start.isoformat(),
    )
    return rot


def move(
    session: Session, policy: Policy, rotation_id: int, new_start: date, reason: str, actor: str = "cli"
) -> Rotation:
    """Move a rotation to ``new_start`` (a Monday) and lock it there."""
    reason = _reason(reason)
    rot = _rotation(session, rotation_id)
    validate_start(session, policy, rot, new_start)
    return _reschedule(session, policy, rot, new_start, "move", reason, actor)


def swap(
    session: Session, policy: Policy, rotation_a: int, rotation_b: int, reason: str, actor: str = "cli"
) -> tuple[Rotation, Rotation]:
    """Exchange the start weeks of two rotations and lock both."""
    reason = _reason(reason)
    a, b = _rotation(session, rotation_a), _rotation(session, rotation_b)
    if a.id == b.id:
        raise PlanningError("cannot swap a rotation with itself")
    validate_start(session, policy, a, b.start, ignore={b.id})
    validate_start(session, policy, b, a.start, ignore={a.id})
    sa, sb = a.start, b.start
    now = utcnow()
    for rot, new, other in ((a, sb, b), (b, sa, a)):
        old = rot.start
        rot.start, rot.end, rot.locked, rot.updated_at = new, rotation_end(new, policy.length_weeks), True, now
        rot.change_reason = f"swapped by HR with rotation {other.id} ({old} -> {new}): {reason}"
        session.add(rot)
    audit.record(
        session,
        actor=actor,
        action="rotation.swap",
        subject_type="rotation",
        subject_id=a.id,
        reason=reason,
        other_rotation=b.id,
        a_start=sb.isoformat(),
        b_start=sa.isoformat(),
    )
    return a, b


def defer(
    session: Session,
    policy: Policy,
    rotation_id: int,
    *,
    weeks: int | None = None,
    until: date | None = None,
    reason: str,
    actor: str = "cli",
) -> Rotation:
    """Start a rotation ``weeks`` weeks later, or on the first Monday on or after ``until``; locks it."""
    reason = _reason(reason)
    rot = _rotation(session, rotation_id)
    if weeks is not None and until is None:
        if weeks < 1:
            raise PlanningError("defer by at least one week")
        new_start = rot.start + timedelta(weeks=weeks)
    elif until is not None and weeks is None:
        new_start = monday_on_or_after(until)
    else:
        raise PlanningError("give either a number of weeks or an until date")
    if new_start <= rot.start:
        raise PlanningError(f"{new_start} is not later than the current start {rot.start}")
    validate_start(session, policy, rot, new_start)
    return _reschedule(session, policy, rot, new_start, "defer", reason, actor)


def exempt(
    session: Session, employee_id: str, until: date, reason: str, actor: str = "cli", today: date | None = None
) -> Employee:
    """Exempt an employee from rotating until ``until`` (inclusive); their rotations inside it are withdrawn."""
    reason = _reason(reason)
    e = _employee(session, employee_id)
    today = today or clock.today()
    if until < today:
        raise PlanningError(f"until {until} is in the past")
    e.exempt_until, e.exempt_reason, e.updated_at = until, reason, utcnow()
    session.add(e)
    withdrawn = []
    for rot in session.exec(
        select(Rotation).where(col(Rotation.employee_id) == e.id).where(col(Rotation.status).in_(OPEN_STATUSES))
    ).all():
        if rot.start <= until and rot.start >= today:
            withdrawn.append(rot.id)
            withdraw(session, rot, f"employee exempt until {until}: {reason}", actor, employee_id=e.employee_id)
    audit.record(
        session,
        actor=actor,
        action="employee.exempt",
        subject_type="employee",
        subject_id=e.employee_id,
        reason=reason,
        until=until.isoformat(),
        withdrawn_rotations=withdrawn,
    )
    return e


def set_lock(session: Session, rotation_id: int, locked: bool, reason: str, actor: str = "cli") -> Rotation:
    """Lock (never moved by the planner) or unlock a rotation. Unlocking an announced rotation makes it a
    draft again (``announced_start`` stays, so a later move is announced as an update)."""
    reason = _reason(reason)
    rot = _rotation(session, rotation_id)
    rot.locked = locked
    if not locked and rot.status == "invited":
        rot.status = "draft"
    rot.updated_at = utcnow()
    session.add(rot)
    audit.record(
        session,
        actor=actor,
        action="rotation.lock" if locked else "rotation.unlock",
        subject_type="rotation",
        subject_id=rot.id,
        reason=reason,
    )
    return rot


def lock(session: Session, rotation_id: int, reason: str, actor: str = "cli") -> Rotation:
    return set_lock(session, rotation_id, True, reason, actor)


def unlock(session: Session, rotation_id: int, reason: str, actor: str = "cli") -> Rotation:
    return set_lock(session, rotation_id, False, reason, actor)


# --------------------------------------------------------------------------------------------------
# Re-pairing the mentor


@dataclass
class MentorReplacement:
    """The outcome of :func:`replace_mentor`."""

    old_mentor: Employee | None
    new_mentor: str  # as the pairing run names it
    other_rotation_ids: list[int]  # rotations without a mentor that the same pairing run paired


def replace_mentor(
    session: Session, policy: Policy, rotation_id: int, who: str, reason: str, actor: str
) -> MentorReplacement:
    """HR replaces the rotator's mentor: the active pairing is marked ``replaced`` (so that mentor is never
    proposed again for this person) and :func:`frontline.mentors.service.pair_mentors` picks the new one. Like
    the nightly job, that run also pairs any other rotation that still has no mentor. ``who`` names the
    rotator in the error messages."""
    from frontline.mentors import service as mentoring

    pairing = active_pairing(session, rotation_id)
    if pairing is None:
        raise PlanningError(f"{who} has no mentor yet; the pairing job will pair them")
    old = session.get(Employee, pairing.mentor_id)
    pairing.status, pairing.reason, pairing.updated_at = "replaced", f"re-paired by HR: {reason}", utcnow()
    session.add(pairing)
    audit.record(
        session,
        actor=actor,
        action="pairing.replaced",
        subject_type="pairing",
        subject_id=pairing.id,
        reason=reason,
        rotation_id=rotation_id,
        mentor_id=pairing.mentor_id,
    )
    session.flush()
    result = mentoring.pair_mentors(session, policy, actor=actor)
    new = next((c for c in result.created if c["rotation_id"] == rotation_id), None)
    if new is None:
        why = next((u.get("reason") for u in result.unmatched if u.get("rotation_id") == rotation_id), None)
        raise PlanningError(f"no other mentor fits {who}" + (f": {why}" if why else ""))
    others = [c["rotation_id"] for c in result.created if c["rotation_id"] != rotation_id]
    return MentorReplacement(old, new["mentor"], others)
