"""HR overrides of the plan: move, swap, defer, add, exempt, lock, unlock, and re-pairing a rotator's mentor.

Each override is validated against the planner's hard rules (:func:`validate_start`), needs a reason and is
audited; a moved, swapped, deferred or added rotation is locked, so the next plan keeps HR's decision. A
refused move, defer or add names the nearest weeks that fit and the rotations that would make it fit
(:func:`validate_or_explain`). The
caller owns the transaction (the console performs an override, shows the outcome, and rolls it back until
HR confirms).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, timedelta

from sqlmodel import Session, col, select

from frontline.core import audit, clock
from frontline.core.clock import add_months, monday, monday_on_or_after
from frontline.core.errors import OverrideRefused, PlanningError
from frontline.core.policy import Policy
from frontline.rotations.lifecycle import withdraw
from frontline.rotations.queries import active_pairing
from frontline.rotations.solver import department_cap
from frontline.rotations.weeks import rotation_end
from models import Absence, Department, Employee, Rotation, utcnow
from models.db import planning_lock

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
    if e.exempt_until is not None and new_start <= e.exempt_until:
        raise PlanningError(f"{who} is exempt until {e.exempt_until} ({e.exempt_reason or 'exemption'})")
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
# What would work instead


def _fits(session: Session, policy: Policy, rot: Rotation, day: date, ignore: Collection[int | None] = ()) -> bool:
    try:
        validate_start(session, policy, rot, day, ignore=ignore)
    except PlanningError:
        return False
    return True


def nearest_weeks(
    session: Session,
    policy: Policy,
    rot: Rotation,
    wanted: date,
    *,
    not_before: date,
    count: int = 3,
    span_weeks: int = 26,
) -> list[date]:
    """Up to ``count`` start Mondays nearest to ``wanted`` (within ``span_weeks``; earlier first on a tie,
    none before ``not_before``) on which ``rot`` fits every hard rule, in date order."""
    base = monday(wanted)
    found: list[date] = []
    for k in range(0, span_weeks + 1):
        days = [base] if k == 0 else [base - timedelta(weeks=k), base + timedelta(weeks=k)]
        for day in days:
            if day != wanted and day >= not_before and day != rot.start and _fits(session, policy, rot, day):
                found.append(day)
        if len(found) >= count:
            break
    return sorted(found[:count])


def fit_partners(session: Session, policy: Policy, rot: Rotation, wanted: date, limit: int = 5) -> list[dict]:
    """Rotations that would make ``rot`` fit on ``wanted``: first those starting that week whose start weeks
    can be exchanged with ``rot``'s (``how = swap``); when none, those whose weeks overlap and whose leaving
    would make room (``how = room``, due latest first). Only when ``wanted`` breaks no personal rule."""
    if not _personal_ok(session, policy, rot, wanted):
        return []
    end = rotation_end(wanted, policy.length_weeks)
    rows = session.exec(
        select(Rotation, Employee)
        .where(col(Rotation.employee_id) == col(Employee.id))
        .where(col(Rotation.status).in_(OPEN_STATUSES))
        .where(col(Rotation.start) <= end)
        .where(col(Rotation.end) >= wanted)
        .order_by(col(Rotation.due).desc(), col(Rotation.id))
    ).all()
    others = [(r, e) for r, e in rows if r.id != rot.id]
    swaps = [
        _partner(r, e, "swap")
        for r, e in others
        if r.start == wanted
        and rot.id is not None
        and _fits(session, policy, rot, wanted, ignore={r.id})
        and _fits(session, policy, r, rot.start, ignore={rot.id})
    ]
    if swaps:
        return swaps[:limit]
    room = [_partner(r, e, "room") for r, e in others if _fits(session, policy, rot, wanted, ignore={r.id})]
    return room[:limit]


def _personal_ok(session: Session, policy: Policy, rot: Rotation, day: date) -> bool:
    """``rot`` on ``day`` breaks none of its owner's own rules (only seats or the department cap may be full)."""
    try:
        validate_start(session, policy, rot, day, check_capacity=False)
    except PlanningError:
        return False
    return True


def _partner(r: Rotation, e: Employee, how: str) -> dict:
    return {
        "rotation_id": r.id,
        "employee_id": e.employee_id,
        "name": e.name,
        "start": r.start.isoformat(),
        "end": r.end.isoformat(),
        "how": how,
    }


def validate_or_explain(
    session: Session,
    policy: Policy,
    rot: Rotation,
    new_start: date,
    *,
    not_before: date | None = None,
    today: date | None = None,
) -> None:
    """:func:`validate_start`; a refusal becomes :class:`OverrideRefused` naming the nearest weeks that fit
    (not before ``not_before``, default the coming Monday) and the rotations that would make it fit."""
    try:
        validate_start(session, policy, rot, new_start)
    except PlanningError as exc:
        earliest = monday_on_or_after(today or clock.today())
        if not_before is not None:
            earliest = max(earliest, not_before)
        raise OverrideRefused(
            str(exc),
            new_start.isoformat(),
            [d.isoformat() for d in nearest_weeks(session, policy, rot, new_start, not_before=earliest)],
            fit_partners(session, policy, rot, new_start) if new_start.weekday() == 0 else [],
            rot.id,
        ) from None


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
    session: Session,
    policy: Policy,
    rotation_id: int,
    new_start: date,
    reason: str,
    actor: str = "cli",
    today: date | None = None,
) -> Rotation:
    """Move a rotation to ``new_start`` (a Monday) and lock it there. A refusal names the nearest weeks that
    fit (from ``today``'s coming Monday on) and the swap partners that would make ``new_start`` fit."""
    reason = _reason(reason)
    planning_lock(session, f"plan move by {actor}")  # before reading: a plan run may be writing
    rot = _rotation(session, rotation_id)
    validate_or_explain(session, policy, rot, new_start, today=today)
    return _reschedule(session, policy, rot, new_start, "move", reason, actor)


def swap(
    session: Session, policy: Policy, rotation_a: int, rotation_b: int, reason: str, actor: str = "cli"
) -> tuple[Rotation, Rotation]:
    """Exchange the start weeks of two rotations and lock both."""
    reason = _reason(reason)
    planning_lock(session, f"plan swap by {actor}")  # before reading: a plan run may be writing
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
    today: date | None = None,
) -> Rotation:
    """Start a rotation ``weeks`` weeks later, or on the first Monday on or after ``until``; locks it. A
    refusal names the nearest later weeks that fit and the swap partners that would make it fit."""
    reason = _reason(reason)
    planning_lock(session, f"plan defer by {actor}")  # before reading: a plan run may be writing
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
    validate_or_explain(session, policy, rot, new_start, not_before=rot.start + timedelta(weeks=1), today=today)
    return _reschedule(session, policy, rot, new_start, "defer", reason, actor)


def add(
    session: Session,
    policy: Policy,
    employee_id: str,
    start: date,
    reason: str,
    actor: str = "cli",
    today: date | None = None,
) -> Rotation:
    """Give ``employee_id`` (someone the plan left unplaced, or anyone without a planned rotation) a rotation
    starting on ``start`` (a Monday), locked so the next plan keeps it. Checked against the hard rules; a
    refusal names the nearest weeks that fit and the rotations that would make room."""
    reason = _reason(reason)
    planning_lock(session, f"plan add by {actor}")  # before reading: a plan run may be writing
    e = _employee(session, employee_id)
    today = today or clock.today()
    who = f"{e.employee_id} ({e.email})"
    if not e.active:
        raise PlanningError(f"{who} has left")
    dept = session.get(Department, e.department_id)
    if dept is not None and dept.name == policy.support_department:
        raise PlanningError(f"{who} is in the support department ({dept.name}), which mentors rather than rotates")
    if start < monday_on_or_after(today):
        raise PlanningError(f"{start} is in the past; rotations are added from {monday_on_or_after(today)} on")
    existing = session.exec(
        select(Rotation)
        .where(col(Rotation.employee_id) == e.id)
        .where(col(Rotation.status).in_(OPEN_STATUSES))
        .where(col(Rotation.end) >= today)
        .order_by(col(Rotation.start))
    ).first()
    if existing is not None:
        raise PlanningError(
            f"{who} already has rotation {existing.id} ({existing.start}..{existing.end}); "
            f"use `frontline plan move {existing.id} {start} --reason ...` to change it"
        )
    if e.id is None:  # never: the row was read from the database
        raise PlanningError(f"employee {employee_id} is not stored yet")
    kind, due = _kind_and_due(session, policy, e, start)
    rot = Rotation(
        employee_id=e.id,
        start=start,
        end=rotation_end(start, policy.length_weeks),
        kind=kind,
        status="draft",
        due=due,
        locked=True,
        change_reason=f"added by HR: {reason}",
    )
    validate_or_explain(session, policy, rot, start, today=today)
    session.add(rot)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="rotation.add",
        subject_type="rotation",
        subject_id=rot.id,
        reason=reason,
        employee_id=e.employee_id,
        start=start.isoformat(),
    )
    return rot


def _kind_and_due(session: Session, policy: Policy, e: Employee, start: date) -> tuple[str, date]:
    """As the planner sees it: a new hire (never rotated, hired recently) is due in the hire week; anyone
    else ``cycle_months`` after their last rotation (never rotated: now)."""
    earlier = session.exec(
        select(Rotation)
        .where(col(Rotation.employee_id) == e.id)
        .where(col(Rotation.status).in_(("invited", "done", "draft")))
        .where(col(Rotation.start) < start)
        .order_by(col(Rotation.start).desc())
    ).first()
    starts = [d for d in (e.last_rotation, earlier.start if earlier is not None else None) if d is not None]
    last_rot = max(starts, default=None)
    if last_rot is None and e.hire_date > start - timedelta(weeks=policy.new_hire_within_weeks):
        return "new_hire", monday(e.hire_date)
    due = start if last_rot is None else add_months(last_rot, policy.cycle_months)
    return "cycle", monday(due)


def exempt(
    session: Session, employee_id: str, until: date, reason: str, actor: str = "cli", today: date | None = None
) -> Employee:
    """Exempt an employee from rotating until ``until`` (inclusive); their rotations inside it are withdrawn."""
    reason = _reason(reason)
    planning_lock(session, f"plan exempt by {actor}")  # before reading: a plan run may be writing
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
    planning_lock(session, f"plan lock by {actor}")  # before reading: a plan run may be writing
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

    planning_lock(session, f"mentor replacement by {actor}")  # before reading: it re-runs the pairing
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
