"""Planning service: turns the database (roster, absences, policy, existing rotations) into a plan.

``plan_rotations`` loads everything, asks the pure solver in :mod:`frontline.rotations.solver` for start weeks,
and writes draft ``Rotation`` rows and a ``PlanRun``. Rules (README, *Planning*):

* Planned: active employees outside the support department who are not exempt for the whole horizon
  and have not left. New hires (never rotated, hired less than ``new_hire_within_weeks`` before the
  horizon, or hired later) start at or after their hire week; everyone else is due ``cycle_months``
  after their last rotation (never rotated: due now).
* Fixed, never moved: rotations that are locked, or announced (status ``invited``/``done``) unless HR
  unlocked them; rotations that started before the horizon are history (they count as the last rotation
  and, while they run, use seats).
* Stable: a draft rotation keeps its start unless moving it is worth the move cost or its start broke a
  hard rule; every move, removal and cancellation is recorded with why (``change_reason`` + AuditEvent).
* HR overrides (move, swap, defer, exempt, lock, unlock) are validated against the hard rules and audited
  with a required reason; a moved rotation becomes locked.
"""

from __future__ import annotations

import csv
import io
import json
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

import numpy as np
from sqlmodel import Session, select

from frontline.core import audit, clock
from frontline.core.clock import add_months, monday_on_or_after
from frontline.core.errors import PlanningError
from frontline.core.policy import Policy
from frontline.core.security import spreadsheet_safe
from frontline.rotations.solver import LockedRotation, Person, PlanInput, Weights, department_cap, solve, week_loads
from models import Absence, Department, Employee, MentorPairing, PlanRun, Rotation, utcnow

FIXED_STATUSES = {"invited", "done"}


# --------------------------------------------------------------------------------------------------
# Dates <-> week indices


def _ceil_div(a: int, b: int) -> int:
    return -((-a) // b)


def first_week_on_or_after(horizon: date, day: date) -> int:
    """Index of the first week whose Monday is on or after ``day``."""
    return _ceil_div((day - horizon).days, 7)


def blocked_starts_for(horizon: date, length_weeks: int, start: date, end: date) -> range:
    """Start weeks whose rotation (Monday .. Sunday ``length_weeks`` later) overlaps ``start..end``."""
    lo = _ceil_div((start - horizon).days - 7 * length_weeks + 1, 7)
    hi = (end - horizon).days // 7
    return range(lo, hi + 1)


def rotation_end(start: date, length_weeks: int) -> date:
    return start + timedelta(days=7 * length_weeks - 1)


@lru_cache(maxsize=512)
def _holiday_calendar(country: str, year: int) -> tuple[tuple[date, ...], tuple[str, ...]]:
    import holidays

    try:
        items = sorted(holidays.country_holidays(country, years=[year]).items())
    except (NotImplementedError, KeyError):
        items = []
    return tuple(d for d, _ in items), tuple(n for _, n in items)


def holidays_between(country: str | None, start: date, end: date) -> list[tuple[date, str]]:
    """Public holidays of ``country`` in ``start..end`` (shown on the plan; they reduce nothing)."""
    if not country:
        return []
    out = []
    for year in range(start.year, end.year + 1):
        days, names = _holiday_calendar(country.upper(), year)
        for i in range(bisect_left(days, start), bisect_right(days, end)):
            out.append((days[i], names[i]))
    return out


# --------------------------------------------------------------------------------------------------
# Loading the input


@dataclass
class _Loaded:
    inp: PlanInput
    employees: dict[str, Employee]  # employee_id -> row (people planned)
    drafts: dict[str, Rotation]  # employee_id -> movable draft rotation
    stale_drafts: list[tuple[Rotation, str]]  # drafts of people no longer planned, with why
    kinds: dict[str, str]
    due_dates: dict[str, date]
    fixed: list[Rotation]
    skipped: dict[str, int]
    dept_caps: dict[str, int]


def _is_fixed(rot: Rotation) -> bool:
    return rot.locked or rot.status in FIXED_STATUSES


def load_input(session: Session, policy: Policy, horizon: date, weeks: int) -> _Loaded:
    """Read the roster, absences and rotations and build the planner's input."""
    return build_input(
        policy,
        horizon,
        weeks,
        session.exec(select(Department)).all(),
        session.exec(select(Employee).order_by(Employee.employee_id)).all(),
        session.exec(select(Absence)).all(),
        session.exec(select(Rotation).where(Rotation.status != "cancelled").order_by(Rotation.id)).all(),
    )


def build_input(
    policy: Policy,
    horizon: date,
    weeks: int,
    departments: list[Department],
    employees: list[Employee],
    absence_rows: list[Absence],
    rotations: list[Rotation],
) -> _Loaded:
    """The planner's input from plain rows (no session needed: the benchmark builds rows in memory)."""
    L = policy.length_weeks
    depts = {d.id: d for d in departments}
    employees = sorted(employees, key=lambda e: e.employee_id)
    headcount: dict[int, int] = defaultdict(int)
    for e in employees:
        if e.active and (e.left_on is None or e.left_on > horizon):
            headcount[e.department_id] += 1
    caps: dict[str, int] = {}
    for dept_id, dept in depts.items():
        fraction = dept.max_away_fraction if dept.max_away_fraction is not None else policy.max_department_away_fraction
        caps[dept.name] = department_cap(fraction, headcount.get(dept_id, 0))

    by_emp: dict[int, list[Rotation]] = defaultdict(list)
    for r in rotations:
        if r.status != "cancelled":
            by_emp[r.employee_id].append(r)
    absences: dict[int, list[Absence]] = defaultdict(list)
    for a in absence_rows:
        absences[a.employee_id].append(a)
    blackout_starts: set[int] = set()
    for b in policy.blackouts:
        blackout_starts.update(blocked_starts_for(horizon, L, b.start, b.end))

    people: list[Person] = []
    locked: list[LockedRotation] = []
    planned_rows: dict[str, Employee] = {}
    drafts: dict[str, Rotation] = {}
    stale: list[tuple[Rotation, str]] = []
    kinds: dict[str, str] = {}
    dues: dict[str, date] = {}
    fixed: list[Rotation] = []
    skipped: dict[str, int] = defaultdict(int)
    horizon_end = horizon + timedelta(weeks=weeks)
    for e in employees:
        dept = depts[e.department_id].name
        rots = sorted(by_emp.get(e.id, []), key=lambda r: (r.start, r.id))
        history = [r for r in rots if r.start < horizon]
        future = [r for r in rots if r.start >= horizon]
        running = [r for r in history if r.end >= horizon]
        future_fixed = [r for r in future if _is_fixed(r)]
        future_drafts = [r for r in future if not _is_fixed(r)]
        # Drafts that start after this run's horizon are outside its scope: a short re-plan leaves
        # them where they are (only a leaver's, a support member's or a duplicate's are withdrawn).
        beyond = [r for r in future_drafts if r.start >= horizon_end]
        future_drafts = [r for r in future_drafts if r.start < horizon_end]
        for r in running + future_fixed:  # they use seats whatever happens to their owner
            locked.append(LockedRotation(e.employee_id, dept, (r.start - horizon).days // 7))
            fixed.append(r)

        why_not = None
        if not e.active or (e.left_on is not None and e.left_on <= horizon):
            why_not = "left"
        elif dept == policy.support_department:
            why_not = "support"
        elif e.exempt_until is not None and e.exempt_until >= horizon_end:
            why_not = "exempt"
        elif running or future_fixed:
            why_not = "fixed"
        if why_not:
            skipped[why_not] += 1
            if why_not == "exempt":
                for r in future_drafts + [b for b in beyond if b.start <= e.exempt_until]:
                    stale.append((r, f"employee exempt until {e.exempt_until}"))
            elif why_not != "fixed":
                for r in future_drafts + beyond:
                    stale.append(
                        (r, {"left": "employee left", "support": "employee is in the support department"}[why_not])
                    )
            else:
                for r in future_drafts + beyond:
                    stale.append((r, "employee already has a fixed rotation"))
            continue
        if beyond and not future_drafts:
            skipped["planned_after_horizon"] += 1
            for r in beyond[1:]:
                stale.append((r, "duplicate draft rotation"))
            continue
        for r in future_drafts[1:] + beyond:
            stale.append((r, "duplicate draft rotation"))

        last_rot = max([d for d in [e.last_rotation, *(r.start for r in history)] if d is not None], default=None)
        hire_week = first_week_on_or_after(horizon, e.hire_date)
        release = hire_week
        if e.exempt_until is not None and e.exempt_until >= horizon:
            release = max(release, first_week_on_or_after(horizon, e.exempt_until + timedelta(days=1)))
        deadline = None
        if e.left_on is not None:
            deadline = ((e.left_on - horizon).days - 7 * L) // 7
        new_hire = last_rot is None and e.hire_date > horizon - timedelta(weeks=policy.new_hire_within_weeks)
        if new_hire and hire_week >= weeks:
            skipped["hired_after_horizon"] += 1
            for r in future_drafts:
                stale.append((r, f"hired after the horizon ends ({e.hire_date})"))
            continue
        if new_hire:
            due_week = hire_week
            due_date = horizon + timedelta(weeks=hire_week)
        else:
            due_date = horizon if last_rot is None else add_months(last_rot, policy.cycle_months)
            due_week = max(first_week_on_or_after(horizon, due_date), -52)
            if due_week >= weeks:
                skipped["not_due"] += 1
                for r in future_drafts:
                    stale.append((r, f"not due before {horizon_end} (due {due_date})"))
                continue
        blocked: set[int] = set()
        for a in absences.get(e.id, []):
            blocked.update(blocked_starts_for(horizon, L, a.start, a.end))
        cur = future_drafts[0] if future_drafts else None
        people.append(
            Person(
                key=e.employee_id,
                dept=dept,
                release_week=release,
                due_week=due_week,
                deadline_week=deadline,
                is_new_hire=new_hire,
                blocked_starts=frozenset(b for b in blocked if -L <= b <= weeks),
                current_start=None if cur is None else (cur.start - horizon).days // 7,
            )
        )
        planned_rows[e.employee_id] = e
        kinds[e.employee_id] = "new_hire" if new_hire else "cycle"
        dues[e.employee_id] = (
            monday_on_or_after(due_date) if due_date >= horizon else due_date - timedelta(days=due_date.weekday())
        )
        if cur is not None:
            drafts[e.employee_id] = cur
    inp = PlanInput(
        horizon_start=horizon,
        weeks=weeks,
        length_weeks=L,
        seats_per_week=policy.seats_per_week,
        people=people,
        dept_caps=caps,
        locked=locked,
        blocked_starts=frozenset(blackout_starts),
        new_hire_within_weeks=policy.new_hire_within_weeks,
        weights=Weights(balance=policy.balance_weight),
    )
    return _Loaded(inp, planned_rows, drafts, stale, kinds, dues, fixed, dict(skipped), caps)


# --------------------------------------------------------------------------------------------------
# Planning


@dataclass
class PlanResult:
    run_id: int | None
    horizon_start: date
    weeks: int
    dry_run: bool
    planned: int
    new_hires: int
    late: int
    unplaced: list[dict[str, Any]]
    objective: float
    lower_bound: float | None
    gap: float | None
    solve_seconds: float
    created: int = 0
    moved: int = 0
    kept: int = 0
    removed: int = 0
    fixed: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    changes: list[dict[str, Any]] = field(default_factory=list)
    week_load: list[dict[str, Any]] = field(default_factory=list)
    holidays: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """JSON-safe summary (what the PlanRun row, the CLI and the flow artifact show)."""
        data = asdict(self)
        for k in ("unplaced", "changes", "week_load", "holidays"):
            data.pop(k)
        data["horizon_start"] = self.horizon_start.isoformat()
        data["unplaced_count"] = len(self.unplaced)
        data["holiday_rotations"] = len({h["employee_id"] for h in self.holidays})
        return json.loads(json.dumps(data, default=str))


def _why_moved(inp: PlanInput, person: Person, old: int, new: int, loads) -> str:
    blocked = person.blocked_starts | inp.blocked_starts
    lo = max(person.release_week, 0)
    hi = inp.weeks - 1 if person.deadline_week is None else min(person.deadline_week, inp.weeks - 1)
    if old in inp.blocked_starts:
        return "its weeks now overlap a blackout"
    if old in blocked:
        return "its weeks now overlap an absence"
    if old < lo:
        return "it started before the employee may rotate (hire date or exemption)"
    if old > hi:
        return "it would end after the employee leaves or outside the horizon"
    seat, dept = loads  # the new plan's loads; take this person's own new rotation out
    L = inp.length_weeks
    own = np.zeros(len(seat), dtype=np.int64)
    own[new : new + L] = 1
    if ((seat - own)[old : old + L] >= inp.seats_per_week).any():
        return "its seats are now needed by new hires or more overdue colleagues"
    cap = inp.dept_caps.get(person.dept, inp.seats_per_week)
    if ((dept.get(person.dept, seat) - own)[old : old + L] >= cap).any():
        return f"department {person.dept} reached its cap of {cap} away in those weeks"
    return "an earlier start became free" if new < old else "a later start lowers total lateness"


def plan_rotations(
    session: Session,
    policy: Policy,
    start: date | None = None,
    weeks: int = 52,
    dry_run: bool = False,
    actor: str = "cli",
    today: date | None = None,
) -> PlanResult:
    """Plan the horizon of ``weeks`` weeks from the Monday on or after ``start`` (default: today)."""
    if weeks < 1 or weeks > 260:
        raise PlanningError(f"weeks must be between 1 and 260, not {weeks}")
    from frontline.mentors.service import support_department

    support_department(session, policy)  # a typo would plan the support team as rotators
    horizon = monday_on_or_after(start or today or clock.today())
    loaded = load_input(session, policy, horizon, weeks)
    inp = loaded.inp
    out = solve(inp)
    L = policy.length_weeks
    by_key = {p.key: p for p in inp.people}
    changes: list[dict[str, Any]] = []
    created = moved = kept = removed = 0
    now = utcnow()

    def remove(rot: Rotation, why: str, employee_id: str) -> None:
        nonlocal removed
        removed += 1
        action = "cancelled" if _must_cancel(session, rot) else "deleted"
        changes.append(
            {
                "employee_id": employee_id,
                "action": action,
                "old_start": rot.start.isoformat(),
                "new_start": None,
                "why": why,
            }
        )
        if not dry_run:
            withdraw(session, rot, why, actor, employee_id=employee_id)

    emp_key_of = {}
    for rot, why in loaded.stale_drafts:
        if rot.employee_id not in emp_key_of:
            emp_key_of[rot.employee_id] = session.get(Employee, rot.employee_id).employee_id
        remove(rot, why, emp_key_of[rot.employee_id])

    unplaced_by_key = {u.key: u for u in out.unplaced}
    loads = week_loads(inp, out.assignments)
    for key in sorted(by_key):
        e = loaded.employees[key]
        draft = loaded.drafts.get(key)
        if key not in out.assignments:
            if draft is not None:
                remove(draft, f"could not be placed: {unplaced_by_key[key].reason}", key)
            continue
        start_day = horizon + timedelta(weeks=out.assignments[key])
        if draft is None:
            created += 1
            changes.append(
                {
                    "employee_id": key,
                    "action": "created",
                    "old_start": None,
                    "new_start": start_day.isoformat(),
                    "why": "planned",
                }
            )
            if not dry_run:
                session.add(
                    Rotation(
                        employee_id=e.id,
                        start=start_day,
                        end=rotation_end(start_day, L),
                        kind=loaded.kinds[key],
                        status="draft",
                        due=loaded.due_dates[key],
                    )
                )
            continue
        if draft.start == start_day:
            kept += 1
            if not dry_run and (draft.kind != loaded.kinds[key] or draft.end != rotation_end(start_day, L)):
                draft.kind, draft.end, draft.updated_at = loaded.kinds[key], rotation_end(start_day, L), now
                session.add(draft)
            continue
        moved += 1
        old_week = (draft.start - horizon).days // 7
        why = _why_moved(inp, by_key[key], old_week, out.assignments[key], loads)
        reason = f"moved from {draft.start} to {start_day}: {why}"
        changes.append(
            {
                "employee_id": key,
                "action": "moved",
                "old_start": draft.start.isoformat(),
                "new_start": start_day.isoformat(),
                "why": why,
            }
        )
        if not dry_run:
            audit.record(
                session,
                actor=actor,
                action="rotation.moved",
                subject_type="rotation",
                subject_id=draft.id,
                reason=reason,
                employee_id=key,
                old_start=draft.start.isoformat(),
                new_start=start_day.isoformat(),
            )
            draft.start, draft.end, draft.kind = start_day, rotation_end(start_day, L), loaded.kinds[key]
            draft.due, draft.change_reason, draft.updated_at = loaded.due_dates[key], reason, now
            session.add(draft)

    # figures
    late = sum(
        1
        for k, s in out.assignments.items()
        if s
        > max(by_key[k].due_week, by_key[k].release_week, 0)
        + (policy.new_hire_within_weeks if by_key[k].is_new_hire else 0)
    )
    new_hires = sum(1 for k in out.assignments if by_key[k].is_new_hire)
    seat, _dept = week_loads(inp, out.assignments)
    starts = defaultdict(int)
    for s in out.assignments.values():
        starts[s] += 1
    for lr in inp.locked:
        starts[lr.start_week] += 1
    week_load = [
        {
            "week": (horizon + timedelta(weeks=w)).isoformat(),
            "starts": starts.get(w, 0),
            "on_rotation": int(seat[w]),
            "seats": inp.seats_per_week,
        }
        for w in range(weeks)
    ]
    hols: list[dict[str, Any]] = []
    for key, s in sorted(out.assignments.items()):
        e = loaded.employees[key]
        first = horizon + timedelta(weeks=s)
        for day, name in holidays_between(e.country or policy.holidays_country, first, rotation_end(first, L)):
            hols.append({"employee_id": key, "country": e.country, "date": day.isoformat(), "name": name})
    unplaced = [
        {
            "employee_id": u.key,
            "email": loaded.employees[u.key].email,
            "department": by_key[u.key].dept,
            "code": u.code,
            "reason": u.reason,
        }
        for u in out.unplaced
    ]
    result = PlanResult(
        run_id=None,
        horizon_start=horizon,
        weeks=weeks,
        dry_run=dry_run,
        planned=len(out.assignments),
        new_hires=new_hires,
        late=late,
        unplaced=unplaced,
        objective=out.objective,
        lower_bound=out.lower_bound,
        gap=out.gap,
        solve_seconds=round(out.solve_seconds, 3),
        created=created,
        moved=moved,
        kept=kept,
        removed=removed,
        fixed=len(loaded.fixed),
        skipped=loaded.skipped,
        changes=changes,
        week_load=week_load,
        holidays=hols,
        stats={k: v for k, v in out.stats.items() if isinstance(v, (int, float, str))},
    )
    run = PlanRun(
        horizon_start=horizon,
        horizon_weeks=weeks,
        dry_run=dry_run,
        planned=result.planned,
        objective=out.objective,
        lower_bound=out.lower_bound,
        solve_seconds=result.solve_seconds,
        summary={**result.summary(), "changes": changes[:500]},
        unplaced=unplaced,
    )
    session.add(run)
    session.flush()
    result.run_id = run.id
    if not dry_run:
        audit.record(
            session,
            actor=actor,
            action="plan.run",
            subject_type="plan_run",
            subject_id=run.id,
            planned=result.planned,
            created=created,
            moved=moved,
            kept=kept,
            removed=removed,
            unplaced=len(unplaced),
            objective=out.objective,
            lower_bound=out.lower_bound,
        )
    return result


def _must_cancel(session: Session, rot: Rotation) -> bool:
    """Announced rotations, and rotations that already have a mentor pairing, are cancelled (so the
    rotator and mentor hear about it); never-announced drafts are deleted."""
    if rot.announced_start is not None or rot.status in FIXED_STATUSES:
        return True
    return session.exec(select(MentorPairing.id).where(MentorPairing.rotation_id == rot.id)).first() is not None


def withdraw(session: Session, rot: Rotation, why: str, actor: str, **details: Any) -> str:
    """Cancel or delete ``rot`` with an audit event; returns ``cancelled`` or ``deleted``."""
    action = "cancelled" if _must_cancel(session, rot) else "deleted"
    audit.record(
        session,
        actor=actor,
        action=f"rotation.{action}",
        subject_type="rotation",
        subject_id=rot.id,
        reason=why,
        start=rot.start.isoformat(),
        **details,
    )
    if action == "cancelled":
        rot.status, rot.change_reason, rot.updated_at = "cancelled", why, utcnow()
        session.add(rot)
    else:
        session.delete(rot)
    return action


# --------------------------------------------------------------------------------------------------
# Export

# One entry per column: adding a column is one edit here.
EXPORT_COLUMNS: list[tuple[str, Callable[[Rotation, Employee, Department], Any]]] = [
    ("rotation_id", lambda r, e, d: r.id),
    ("employee_id", lambda r, e, d: e.employee_id),
    ("email", lambda r, e, d: e.email),
    ("department", lambda r, e, d: d.name),
    ("start", lambda r, e, d: r.start.isoformat()),
    ("end", lambda r, e, d: r.end.isoformat()),
    ("kind", lambda r, e, d: r.kind),
    ("status", lambda r, e, d: r.status),
    ("locked", lambda r, e, d: bool(r.locked or r.status in FIXED_STATUSES)),
    (
        "holidays",
        lambda r, e, d: "; ".join(
            f"{day.isoformat()} {name}" for day, name in holidays_between(e.country, r.start, r.end)
        ),
    ),
]


MENTOR_COLUMNS = ["mentor_employee_id", "mentor_email"]


def export_rows(session: Session, include_cancelled: bool = False) -> list[dict[str, Any]]:
    """One record per rotation (ordered by start, employee): the columns of ``EXPORT_COLUMNS``."""
    stmt = (
        select(Rotation, Employee, Department)
        .where(Rotation.employee_id == Employee.id)
        .where(Employee.department_id == Department.id)
    )
    if not include_cancelled:
        stmt = stmt.where(Rotation.status != "cancelled")
    rows = session.exec(stmt).all()
    rows = sorted(rows, key=lambda t: (t[0].start, t[1].employee_id, t[0].id))
    from frontline.mentors.service import mentor_columns  # the active mentor pairing (empty when none yet)

    mentors = mentor_columns(session, [r.id for r, _e, _d in rows])
    blank = dict.fromkeys(MENTOR_COLUMNS, "")
    return [{**{name: get(r, e, d) for name, get in EXPORT_COLUMNS}, **mentors.get(r.id, blank)} for r, e, d in rows]


def export_text(rows: list[dict[str, Any]], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(rows, indent=2, ensure_ascii=False) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(
            buf, fieldnames=[name for name, _ in EXPORT_COLUMNS] + MENTOR_COLUMNS, lineterminator="\n"
        )
        writer.writeheader()
        writer.writerows({k: spreadsheet_safe(v) for k, v in row.items()} for row in rows)
        return buf.getvalue()
    raise PlanningError(f"unknown export format {fmt!r} (use json or csv)")


# --------------------------------------------------------------------------------------------------
# HR overrides (validated, audited, reason required)


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
    e = session.exec(select(Employee).where(Employee.employee_id == employee_id)).first()
    if e is None:
        raise PlanningError(f"employee {employee_id!r} does not exist")
    return e


def validate_start(
    session: Session,
    policy: Policy,
    rot: Rotation,
    new_start: date,
    *,
    ignore: set[int] = frozenset(),
    check_capacity: bool = True,
) -> None:
    """Raise PlanningError when ``rot`` may not start on ``new_start`` (hard rules)."""
    L = policy.length_weeks
    end = rotation_end(new_start, L)
    e = session.get(Employee, rot.employee_id)
    who = f"{e.employee_id} ({e.email})"
    if new_start.weekday() != 0:
        raise PlanningError(f"{new_start} is a {new_start.strftime('%A')}; rotations start on a Monday")
    if new_start < e.hire_date:
        raise PlanningError(f"{new_start} is before {who} is hired on {e.hire_date}")
    if not e.active or (e.left_on is not None and end >= e.left_on):
        raise PlanningError(f"{who} leaves on {e.left_on}; a rotation {new_start}..{end} would not end before that")
    for a in session.exec(select(Absence).where(Absence.employee_id == e.id)).all():
        if a.start <= end and a.end >= new_start:
            raise PlanningError(
                f"{new_start}..{end} overlaps {who}'s absence {a.start}..{a.end} ({a.reason or 'absence'})"
            )
    for b in policy.blackouts:
        if b.start <= end and b.end >= new_start:
            raise PlanningError(
                f"{new_start}..{end} overlaps the blackout {b.start}..{b.end} ({b.reason or 'blackout'})"
            )
    if not check_capacity:
        return
    others = session.exec(
        select(Rotation, Employee)
        .where(Rotation.employee_id == Employee.id)
        .where(Rotation.status != "cancelled")
        .where(Rotation.start <= end)
        .where(Rotation.end >= new_start)
    ).all()
    others = [(r, oe) for r, oe in others if r.id != rot.id and r.id not in ignore]
    dept = session.get(Department, e.department_id)
    headcount = len(
        session.exec(
            select(Employee.id).where(Employee.department_id == e.department_id).where(Employee.active == True)  # noqa: E712 - SQL, not Python truth
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


def move(
    session: Session, policy: Policy, rotation_id: int, new_start: date, reason: str, actor: str = "cli"
) -> Rotation:
    """Move a rotation to ``new_start`` (a Monday) and lock it there."""
    reason = _reason(reason)
    rot = _rotation(session, rotation_id)
    validate_start(session, policy, rot, new_start)
    old = rot.start
    rot.start, rot.end, rot.locked = new_start, rotation_end(new_start, policy.length_weeks), True
    rot.change_reason, rot.updated_at = f"moved by HR from {old} to {new_start}: {reason}", utcnow()
    session.add(rot)
    audit.record(
        session,
        actor=actor,
        action="rotation.move",
        subject_type="rotation",
        subject_id=rot.id,
        reason=reason,
        old_start=old.isoformat(),
        new_start=new_start.isoformat(),
    )
    return rot


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


def upcoming_rotation(session: Session, employee_id: str) -> Rotation:
    e = _employee(session, employee_id)
    rot = session.exec(
        select(Rotation)
        .where(Rotation.employee_id == e.id)
        .where(Rotation.status.in_(["draft", "invited"]))
        .order_by(Rotation.start.desc())
    ).first()
    if rot is None:
        raise PlanningError(f"employee {employee_id} has no planned rotation to change")
    return rot


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
    if (weeks is None) == (until is None):
        raise PlanningError("give either a number of weeks or an until date")
    if weeks is not None and weeks < 1:
        raise PlanningError("defer by at least one week")
    new_start = rot.start + timedelta(weeks=weeks) if weeks is not None else monday_on_or_after(until)
    if new_start <= rot.start:
        raise PlanningError(f"{new_start} is not later than the current start {rot.start}")
    old = rot.start
    validate_start(session, policy, rot, new_start)
    rot.start, rot.end, rot.locked = new_start, rotation_end(new_start, policy.length_weeks), True
    rot.change_reason, rot.updated_at = f"deferred by HR from {old} to {new_start}: {reason}", utcnow()
    session.add(rot)
    audit.record(
        session,
        actor=actor,
        action="rotation.defer",
        subject_type="rotation",
        subject_id=rot.id,
        reason=reason,
        old_start=old.isoformat(),
        new_start=new_start.isoformat(),
    )
    return rot


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
        select(Rotation).where(Rotation.employee_id == e.id).where(Rotation.status.in_(["draft", "invited"]))
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
