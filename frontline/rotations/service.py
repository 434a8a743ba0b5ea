"""Planning service: turns the database (roster, absences, policy, existing rotations) into a plan.

:func:`plan_rotations` runs four phases:

1. **load** (:func:`load_input`): read departments, employees, absences and live rotations;
2. **solver input** (:func:`frontline.rotations.inputs.build_input`, pure): who is planned, who is due
   when, which rotations are fixed and which drafts are stale (the rules are in that module);
3. **solve** (:func:`frontline.rotations.solver.solve`, pure): a start week for everyone planned;
4. **write** (:class:`_PlanWriter`): draft ``Rotation`` rows are created, kept or moved and stale drafts
   withdrawn, then the figures, a ``PlanRun`` row and an audit event are recorded (:func:`_record_run`).

Stable: a draft rotation keeps its start unless moving it is worth the move cost or its start broke a hard
rule; every move, removal and cancellation is recorded with why (``change_reason`` + AuditEvent). HR's
overrides are in :mod:`frontline.rotations.overrides`, the export in :mod:`frontline.rotations.export`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from typing import Any, cast

import numpy as np
from sqlmodel import Session, col, select

from frontline.core import audit, clock
from frontline.core.clock import monday_on_or_after
from frontline.core.errors import PlanningError
from frontline.core.heap import no_cyclic_gc
from frontline.core.policy import Policy
from frontline.rotations.inputs import (
    EMPLOYEE_COLUMNS,
    ROTATION_COLUMNS,
    AbsenceRow,
    PlanningInput,
    RotationRow,
    build_input,
)
from frontline.rotations.lifecycle import must_cancel, withdraw
from frontline.rotations.solver import Person, PlanInput, PlanOutput, solve, week_loads
from frontline.rotations.weeks import holidays_between, rotation_end, week_of, week_start, weeks_late
from models import Absence, Department, Employee, PlanRun, Rotation, utcnow
from models.db import bulk_insert

__all__ = [
    "PlanResult",
    "PlanningError",
    "load_input",
    "plan_rotations",
]


def load_input(session: Session, policy: Policy, horizon: date, weeks: int) -> PlanningInput:
    """Read the roster, absences, preferences and rotations and build the planner's input."""
    from frontline.people.preferences import weeks_by_employee

    return build_input(
        policy,
        horizon,
        weeks,
        session.exec(select(Department)).all(),
        session.exec(
            select(*(getattr(Employee, c) for c in EMPLOYEE_COLUMNS)).order_by(col(Employee.employee_id))
        ).all(),
        cast(
            Sequence[AbsenceRow],
            session.exec(select(col(Absence.employee_id), col(Absence.start), col(Absence.end))).all(),
        ),
        session.exec(
            select(*(getattr(Rotation, c) for c in ROTATION_COLUMNS))
            .where(Rotation.status != "cancelled")
            .order_by(col(Rotation.id))
        ).all(),
        weeks_by_employee(session),
    )


_SUMMARY_OMITS = frozenset({"unplaced", "changes", "week_load", "holidays"})


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
        # Field by field, not ``asdict``: that deep-copies the per-rotation lists (changes, holidays, ...) only
        # to drop them, seconds at 10k employees.
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _SUMMARY_OMITS}
        data["horizon_start"] = self.horizon_start.isoformat()
        data["unplaced_count"] = len(self.unplaced)
        data["holiday_rotations"] = len({h["employee_id"] for h in self.holidays})
        return json.loads(json.dumps(data, default=str))


def plan_rotations(
    session: Session,
    policy: Policy,
    start: date | None = None,
    weeks: int = 52,
    dry_run: bool = False,
    actor: str = "cli",
    today: date | None = None,
) -> PlanResult:
    """Plan the horizon of ``weeks`` weeks from the Monday on or after ``start`` (default: today).

    A dry run writes no rotation, only the ``PlanRun`` row of what applying would change."""
    if weeks < 1 or weeks > 260:
        raise PlanningError(f"weeks must be between 1 and 260, not {weeks}")
    from frontline.mentors.service import support_department
    from models.db import planning_lock

    if not dry_run:  # before reading: a second writer plans from this one's result (a dry run writes no plan)
        planning_lock(session, f"plan-rotations by {actor}")

    support_department(session, policy)  # a typo would plan the support team as rotators
    horizon = monday_on_or_after(start or today or clock.today())
    with no_cyclic_gc():
        planning = load_input(session, policy, horizon, weeks)
        out = solve(planning.inp)
        writer = _PlanWriter(session, planning, horizon, policy.length_weeks, dry_run, actor)
        writer.withdraw_stale()
        writer.apply(out)
        writer.insert_new()
        result = _result(policy, planning, out, writer, horizon, weeks, dry_run)
        _record_run(session, result, out, dry_run, actor)
    return result


# --------------------------------------------------------------------------------------------------
# Writing the plan


def _why_moved(
    inp: PlanInput, person: Person, old: int, new: int, loads: tuple[np.ndarray, dict[str, np.ndarray]]
) -> str:
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


@dataclass
class _PlanWriter:
    """Applies the solver's start weeks to the stored rotations; a dry run only lists what would change.

    ``changes`` lists every created, moved, cancelled or deleted rotation with why (kept ones are counted)."""

    session: Session
    planning: PlanningInput
    horizon: date
    length_weeks: int
    dry_run: bool
    actor: str
    now: datetime = field(default_factory=utcnow)
    changes: list[dict[str, Any]] = field(default_factory=list)
    created: int = 0
    moved: int = 0
    kept: int = 0
    removed: int = 0
    new_rows: list[dict[str, Any]] = field(default_factory=list)
    orm: dict[int, Rotation] = field(default_factory=dict)  # rotation id -> the ORM object of a changed one

    def _change(self, employee_id: str, action: str, old: date | None, new: date | None, why: str) -> None:
        person = self.planning.employees.get(employee_id)
        if person is None:
            person = self.session.exec(select(Employee).where(col(Employee.employee_id) == employee_id)).first()
        self.changes.append(
            {
                "employee_id": employee_id,
                "name": person.name if person is not None else "",
                "action": action,
                "old_start": None if old is None else old.isoformat(),
                "new_start": None if new is None else new.isoformat(),
                "why": why,
            }
        )

    def _load(self, rows: list[RotationRow]) -> None:
        """The ORM objects of the rotations about to change, in a few queries (the input holds plain rows)."""
        ids = [r.id for r in rows if r.id is not None and r.id not in self.orm]
        for lo in range(0, len(ids), 500):
            for rot in self.session.exec(select(Rotation).where(col(Rotation.id).in_(ids[lo : lo + 500]))).all():
                if rot.id is not None:
                    self.orm[rot.id] = rot

    def _rotation(self, row: RotationRow) -> Rotation:
        rot = self.orm.get(row.id) if row.id is not None else None
        if rot is None:
            self._load([row])
            rot = self.orm.get(row.id) if row.id is not None else None
        if rot is None:  # never: the row was read from the database in this transaction
            raise PlanningError(f"rotation {row.id} is no longer stored")
        return rot

    def withdraw_stale(self) -> None:
        """Withdraw the drafts of people who are no longer planned (left, support, exempt, duplicates, ...)."""
        keys: dict[int, str] = {}
        self._load([rot for rot, _why in self.planning.stale_drafts])
        for rot, why in self.planning.stale_drafts:
            if rot.employee_id not in keys:
                owner = self.session.get(Employee, rot.employee_id)
                keys[rot.employee_id] = owner.employee_id if owner is not None else str(rot.employee_id)
            self._remove(rot, why, keys[rot.employee_id])

    def apply(self, out: PlanOutput) -> None:
        """Create, keep or move each planned person's draft (in employee_id order); withdraw the unplaced's."""
        planning = self.planning
        unplaced = {u.key: u for u in out.unplaced}
        loads = week_loads(planning.inp, out.assignments)
        by_key = {p.key: p for p in planning.inp.people}
        self._load(  # the drafts this run changes (moved, re-kinded or withdrawn): not the kept ones
            [
                d
                for k, d in planning.drafts.items()
                if k not in out.assignments
                or d.start != week_start(self.horizon, out.assignments[k])
                or d.kind != planning.kinds[k]
                or d.end != rotation_end(d.start, self.length_weeks)
            ]
        )
        for key in sorted(by_key):
            draft = planning.drafts.get(key)
            if key not in out.assignments:
                if draft is not None:
                    self._remove(draft, f"could not be placed: {unplaced[key].reason}", key)
                continue
            start_day = week_start(self.horizon, out.assignments[key])
            if draft is None:
                self._create(key, start_day)
            elif draft.start == start_day:
                self._keep(key, draft)
            else:
                old_week = week_of(self.horizon, draft.start)
                self._move(
                    key, draft, start_day, _why_moved(planning.inp, by_key[key], old_week, out.assignments[key], loads)
                )

    def _remove(self, row: RotationRow, why: str, employee_id: str) -> None:
        rot = self._rotation(row)
        self.removed += 1
        action = "cancelled" if must_cancel(self.session, rot) else "deleted"
        self._change(employee_id, action, rot.start, None, why)
        if not self.dry_run:
            withdraw(self.session, rot, why, self.actor, employee_id=employee_id)

    def _create(self, key: str, start_day: date) -> None:
        self.created += 1
        due, owner = self.planning.due_dates[key], self.planning.employees[key]
        if self.planning.kinds[key] == "new_hire":
            why = f"new hire (hired {owner.hire_date})"
        elif due < self.horizon:
            why = f"overdue since the week of {due}"
        else:
            why = f"due in the week of {due}"
        self._change(key, "created", None, start_day, why)
        if self.dry_run:
            return
        owner = self.planning.employees[key]
        if owner.id is None:  # never: the row was read from the database
            raise RuntimeError(f"employee {key} has no id")
        self.new_rows.append(
            {
                "employee_id": owner.id,
                "start": start_day,
                "end": rotation_end(start_day, self.length_weeks),
                "kind": self.planning.kinds[key],
                "status": "draft",
                "locked": False,
                "due": self.planning.due_dates[key],
                "sequence": 0,
                "created_at": self.now,
                "updated_at": self.now,
            }
        )

    def insert_new(self) -> None:
        """The new drafts in one DBAPI ``executemany`` (:func:`models.db.bulk_insert`: not one ORM object each,
        nor SQLAlchemy's per-row bind processing: 90k rows at 100k employees). The session is flushed first, so
        the moves and withdrawals it holds are written before."""
        bulk_insert(self.session, Rotation.__table__, self.new_rows)  # type: ignore[attr-defined]
        self.new_rows.clear()

    def _keep(self, key: str, row: RotationRow) -> None:
        self.kept += 1
        kind, end = self.planning.kinds[key], rotation_end(row.start, self.length_weeks)
        if not self.dry_run and (row.kind != kind or row.end != end):
            draft = self._rotation(row)
            draft.kind, draft.end, draft.updated_at = kind, end, self.now
            self.session.add(draft)

    def _move(self, key: str, row: RotationRow, start_day: date, why: str) -> None:
        draft = self._rotation(row)
        self.moved += 1
        reason = f"moved from {draft.start} to {start_day}: {why}"
        self._change(key, "moved", draft.start, start_day, why)
        if self.dry_run:
            return
        audit.record(
            self.session,
            actor=self.actor,
            action="rotation.moved",
            subject_type="rotation",
            subject_id=draft.id,
            reason=reason,
            employee_id=key,
            old_start=draft.start.isoformat(),
            new_start=start_day.isoformat(),
        )
        draft.start, draft.end = start_day, rotation_end(start_day, self.length_weeks)
        draft.kind, draft.due = self.planning.kinds[key], self.planning.due_dates[key]
        draft.change_reason, draft.updated_at = reason, self.now
        self.session.add(draft)


# --------------------------------------------------------------------------------------------------
# Figures and the record of the run


def _late_count(planning: PlanningInput, out: PlanOutput, policy: Policy) -> int:
    """Rotations that start after their due week (new hires: after their onboarding window), by the rule
    the dashboard's Overdue figure uses (:func:`frontline.rotations.weeks.weeks_late` of the due date the
    rotation row records), so the two agree. Asked once per distinct (start, due, kind)."""
    horizon, within = planning.inp.horizon_start, policy.new_hire_within_weeks
    keys = Counter((s, planning.due_dates[k], planning.kinds[k] == "new_hire") for k, s in out.assignments.items())
    return sum(n for (s, due, nh), n in keys.items() if weeks_late(week_start(horizon, s), due, nh, within) > 0)


def _week_load(inp: PlanInput, out: PlanOutput) -> list[dict[str, Any]]:
    """Per week of the horizon: rotations starting (locked ones too), people on rotation, seats."""
    seat, _dept = week_loads(inp, out.assignments)
    starts = Counter(out.assignments.values())
    starts.update(lr.start_week for lr in inp.locked)
    return [
        {
            "week": week_start(inp.horizon_start, w).isoformat(),
            "starts": starts.get(w, 0),
            "on_rotation": int(seat[w]),
            "seats": inp.seats_per_week,
        }
        for w in range(inp.weeks)
    ]


def _rotation_holidays(planning: PlanningInput, out: PlanOutput, policy: Policy) -> list[dict[str, Any]]:
    """The public holidays inside each planned rotation (the employee's country, else the policy's); the
    calendar is asked once per (country, start week), not once per rotation."""
    hols: list[dict[str, Any]] = []
    found: dict[tuple[str | None, int], list[tuple[str, str]]] = {}
    for key, s in sorted(out.assignments.items()):
        e = planning.employees[key]
        country = e.country or policy.holidays_country
        days = found.get((country, s))
        if days is None:
            first = week_start(planning.inp.horizon_start, s)
            end = rotation_end(first, policy.length_weeks)
            days = found[(country, s)] = [(d.isoformat(), n) for d, n in holidays_between(country, first, end)]
        for day, name in days:
            hols.append({"employee_id": key, "country": e.country, "date": day, "name": name})
    return hols


def _unplaced_rows(planning: PlanningInput, out: PlanOutput) -> list[dict[str, Any]]:
    dept_of = {p.key: p.dept for p in planning.inp.people}
    return [
        {
            "employee_id": u.key,
            "email": planning.employees[u.key].email,
            "department": dept_of[u.key],
            "code": u.code,
            "reason": u.reason,
        }
        for u in out.unplaced
    ]


def _result(
    policy: Policy,
    planning: PlanningInput,
    out: PlanOutput,
    writer: _PlanWriter,
    horizon: date,
    weeks: int,
    dry_run: bool,
) -> PlanResult:
    new_hires = {p.key for p in planning.inp.people if p.is_new_hire}
    return PlanResult(
        run_id=None,
        horizon_start=horizon,
        weeks=weeks,
        dry_run=dry_run,
        planned=len(out.assignments),
        new_hires=sum(1 for k in out.assignments if k in new_hires),
        late=_late_count(planning, out, policy),
        unplaced=_unplaced_rows(planning, out),
        objective=out.objective,
        lower_bound=out.lower_bound,
        gap=out.gap,
        solve_seconds=round(out.solve_seconds, 3),
        created=writer.created,
        moved=writer.moved,
        kept=writer.kept,
        removed=writer.removed,
        fixed=len(planning.fixed),
        skipped=planning.skipped,
        changes=writer.changes,
        week_load=_week_load(planning.inp, out),
        holidays=_rotation_holidays(planning, out, policy),
        stats={k: v for k, v in out.stats.items() if isinstance(v, (int, float, str))},
    )


def _record_run(session: Session, result: PlanResult, out: PlanOutput, dry_run: bool, actor: str) -> None:
    """The ``PlanRun`` row (also for a dry run: it records what was previewed) and, when applied, the audit event."""
    run = PlanRun(
        horizon_start=result.horizon_start,
        horizon_weeks=result.weeks,
        dry_run=dry_run,
        planned=result.planned,
        objective=out.objective,
        lower_bound=out.lower_bound,
        solve_seconds=result.solve_seconds,
        summary={**result.summary(), "changes": result.changes[:500]},
        unplaced=result.unplaced,
    )
    session.add(run)
    session.flush()
    result.run_id = run.id
    if dry_run:
        return
    audit.record(
        session,
        actor=actor,
        action="plan.run",
        subject_type="plan_run",
        subject_id=run.id,
        planned=result.planned,
        created=result.created,
        moved=result.moved,
        kept=result.kept,
        removed=result.removed,
        unplaced=len(result.unplaced),
        objective=out.objective,
        lower_bound=out.lower_bound,
    )
