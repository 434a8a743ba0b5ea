"""The planner's input, built from plain rows (pure: no session, no clock).

:func:`build_input` turns the roster (departments, employees, absences), the policy and the stored
rotations into the solver's :class:`~frontline.rotations.solver.PlanInput`, and keeps the rows behind it
so that the planning service can write the plan back. Rules (README, *Planning*):

* Planned: active employees outside the support department who are not exempt for the whole horizon
  and have not left. New hires (never rotated, hired less than ``new_hire_within_weeks`` before the
  horizon, or hired later) start at or after their hire week; everyone else is due ``cycle_months``
  after their last rotation (never rotated: due now).
* Fixed, never moved: rotations that are locked, or announced (status ``invited``/``done``) unless HR
  unlocked them; rotations that started before the horizon are history (they count as the last rotation
  and, while they run, use seats).
* Drafts of people who are no longer planned (left, support, exempt, already fixed, duplicates) are
  *stale*: the service withdraws them, each with the reason recorded here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Protocol, TypeVar

from frontline.core.clock import add_months, monday, monday_on_or_after
from frontline.core.policy import Policy
from frontline.rotations.lifecycle import is_fixed
from frontline.rotations.solver import LockedRotation, Person, PlanInput, Weights, department_cap
from frontline.rotations.weeks import blocked_starts_for, first_week_on_or_after, week_of
from models import Department

WHY_STALE = {
    "left": "employee left",
    "support": "employee is in the support department",
    "fixed": "employee already has a fixed rotation",
}


@dataclass
class PlanningInput:
    """The solver's input and the rows behind it (what the planning service writes back)."""

    inp: PlanInput
    employees: dict[str, EmployeeRow]  # employee_id -> row (people planned)
    drafts: dict[str, RotationRow]  # employee_id -> movable draft rotation
    stale_drafts: list[tuple[RotationRow, str]]  # drafts of people no longer planned, with why
    kinds: dict[str, str]  # employee_id -> new_hire | cycle
    due_dates: dict[str, date]  # employee_id -> Monday of the week the rotation is due
    fixed: list[RotationRow]  # rotations that hold seats and never move
    skipped: dict[str, int]  # why not planned -> how many people
    dept_caps: dict[str, int]  # department name -> at most this many away at once


class EmployeeRow(Protocol):
    """What planning reads of an employee: a :class:`models.Employee`, or a row of just these columns
    (:func:`frontline.rotations.service.load_input` selects them: no ORM object per employee)."""

    @property
    def id(self) -> int | None: ...
    @property
    def employee_id(self) -> str: ...
    @property
    def email(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def department_id(self) -> int: ...
    @property
    def hire_date(self) -> date: ...
    @property
    def country(self) -> str: ...
    @property
    def last_rotation(self) -> date | None: ...
    @property
    def active(self) -> bool: ...
    @property
    def left_on(self) -> date | None: ...
    @property
    def exempt_until(self) -> date | None: ...


class RotationRow(Protocol):
    """What planning reads of a stored rotation: a :class:`models.Rotation` or a row of
    :data:`ROTATION_COLUMNS` (the service reads rows; it loads the ORM object only of a rotation it changes)."""

    @property
    def id(self) -> int | None: ...
    @property
    def employee_id(self) -> int: ...
    @property
    def start(self) -> date: ...
    @property
    def end(self) -> date: ...
    @property
    def kind(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def locked(self) -> bool: ...
    @property
    def announced_start(self) -> date | None: ...


ROTATION_COLUMNS = ("id", "employee_id", "start", "end", "kind", "status", "locked", "announced_start")


class AbsenceRow(Protocol):
    """What planning reads of an absence: a :class:`models.Absence` or a row of these columns."""

    @property
    def employee_id(self) -> int: ...
    @property
    def start(self) -> date: ...
    @property
    def end(self) -> date: ...


EMPLOYEE_COLUMNS = (
    "id",
    "employee_id",
    "email",
    "name",
    "department_id",
    "hire_date",
    "country",
    "last_rotation",
    "active",
    "left_on",
    "exempt_until",
)


class _HasEmployee(Protocol):
    @property
    def employee_id(self) -> int: ...


_Row = TypeVar("_Row", bound=_HasEmployee)


def _by_employee(rows: Iterable[_Row]) -> dict[int | None, list[_Row]]:
    grouped: dict[int | None, list[_Row]] = defaultdict(list)
    for row in rows:
        grouped[row.employee_id].append(row)
    return grouped


def department_caps(
    policy: Policy, horizon: date, departments: Sequence[Department], employees: Sequence[EmployeeRow]
) -> dict[str, int]:
    """Department name -> at most this many away at once, from the headcount on the horizon's first day."""
    headcount: dict[int | None, int] = defaultdict(int)
    for e in employees:
        if e.active and (e.left_on is None or e.left_on > horizon):
            headcount[e.department_id] += 1
    caps: dict[str, int] = {}
    for dept in departments:
        fraction = dept.max_away_fraction if dept.max_away_fraction is not None else policy.max_department_away_fraction
        caps[dept.name] = department_cap(fraction, headcount.get(dept.id, 0))
    return caps


def blackout_starts(policy: Policy, horizon: date) -> frozenset[int]:
    """Start weeks whose rotation would overlap one of the policy's blackouts."""
    blocked: set[int] = set()
    for b in policy.blackouts:
        blocked.update(blocked_starts_for(horizon, policy.length_weeks, b.start, b.end))
    return frozenset(blocked)


@dataclass
class _Rotations:
    """One employee's rotations (oldest first) seen from the horizon."""

    history: list[RotationRow]  # started before the horizon
    running: list[RotationRow]  # ... and still running on its first day
    fixed: list[RotationRow]  # start in the horizon or later and never move
    drafts: list[RotationRow]  # movable, start inside the horizon
    beyond: list[RotationRow]  # movable, start after the horizon ends: outside this run's scope

    @classmethod
    def split(cls, rots: list[RotationRow], horizon: date, horizon_end: date) -> _Rotations:
        if not rots:  # most people on a first plan: nothing to split (the lists are never changed)
            return _NO_ROTATIONS
        out = cls([], [], [], [], [])
        for r in rots:  # one pass, in order
            if r.start < horizon:
                out.history.append(r)
                if r.end >= horizon:
                    out.running.append(r)
            elif is_fixed(r):
                out.fixed.append(r)
            elif r.start < horizon_end:
                out.drafts.append(r)
            else:
                out.beyond.append(r)
        return out


_NO_ROTATIONS = _Rotations([], [], [], [], [])
_NONE: frozenset[int] = frozenset()


@dataclass
class _Due:
    """When one person is due and the weeks they may start in (indices from the horizon start)."""

    new_hire: bool
    hire_week: int
    release_week: int  # not before the hire week or the end of an exemption
    deadline_week: int | None  # last start that ends before the person leaves
    due_date: date
    due_week: int


@dataclass
class _InputBuilder:
    """Goes through the employees one by one (in employee_id order) and collects the solver's input."""

    policy: Policy
    horizon: date
    weeks: int
    absences: dict[int | None, list[AbsenceRow]]
    preferences: Mapping[int, tuple[frozenset[date], frozenset[date]]] = field(default_factory=dict)
    people: list[Person] = field(default_factory=list)
    locked: list[LockedRotation] = field(default_factory=list)
    employees: dict[str, EmployeeRow] = field(default_factory=dict)
    drafts: dict[str, RotationRow] = field(default_factory=dict)
    stale: list[tuple[RotationRow, str]] = field(default_factory=list)
    kinds: dict[str, str] = field(default_factory=dict)
    dues: dict[str, date] = field(default_factory=dict)
    fixed: list[RotationRow] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    _due_after: dict[date, date] = field(default_factory=dict)
    _week_on_or_after: dict[date, int] = field(default_factory=dict)
    _due_monday: dict[date, date] = field(default_factory=dict)
    horizon_end: date = field(init=False)
    _new_hire_after: date = field(init=False)  # hired after this day and never rotated: a new hire

    def __post_init__(self) -> None:
        self.horizon_end = self.horizon + timedelta(weeks=self.weeks)
        self._new_hire_after = self.horizon - timedelta(weeks=self.policy.new_hire_within_weeks)

    def _first_week(self, day: date) -> int:
        """:func:`first_week_on_or_after` the horizon start, asked once per distinct day (hire dates repeat)."""
        week = self._week_on_or_after.get(day)
        if week is None:
            week = self._week_on_or_after[day] = first_week_on_or_after(self.horizon, day)
        return week

    def add(self, e: EmployeeRow, dept: str, rots: _Rotations) -> None:
        """Hold the seats of ``e``'s fixed rotations, then plan ``e`` or say why not."""
        for r in rots.running + rots.fixed:  # they use seats whatever happens to their owner
            # its seats in every week it touches: a stored rotation need not run Monday to Sunday
            first, last = week_of(self.horizon, r.start), week_of(self.horizon, r.end)
            self.locked.append(LockedRotation(e.employee_id, dept, first, last))
            self.fixed.append(r)
        why_not = self._why_not_planned(e, dept, rots)
        if why_not:
            self._skip(why_not, self._stale_reasons(why_not, e, rots))
            return
        if rots.beyond and not rots.drafts:
            self._skip("planned_after_horizon", [(r, "duplicate draft rotation") for r in rots.beyond[1:]])
            return
        self.stale.extend((r, "duplicate draft rotation") for r in rots.drafts[1:] + rots.beyond)
        due = self._due(e, rots.history)
        if due.new_hire and due.hire_week >= self.weeks:
            self._skip(
                "hired_after_horizon", [(r, f"hired after the horizon ends ({e.hire_date})") for r in rots.drafts]
            )
            return
        if not due.new_hire and due.due_week >= self.weeks:
            why = f"not due before {self.horizon_end} (due {due.due_date})"
            self._skip("not_due", [(r, why) for r in rots.drafts])
            return
        self._plan(e, dept, rots, due)

    def _skip(self, why_not: str, stale: list[tuple[RotationRow, str]]) -> None:
        self.skipped[why_not] += 1
        self.stale.extend(stale)

    def _why_not_planned(self, e: EmployeeRow, dept: str, rots: _Rotations) -> str | None:
        if not e.active or (e.left_on is not None and e.left_on <= self.horizon):
            return "left"
        if dept == self.policy.support_department:
            return "support"
        if e.exempt_until is not None and e.exempt_until >= self.horizon_end:
            return "exempt"
        if rots.running or rots.fixed:
            return "fixed"
        return None

    @staticmethod
    def _stale_reasons(why_not: str, e: EmployeeRow, rots: _Rotations) -> list[tuple[RotationRow, str]]:
        """The drafts of someone not planned, each with the reason it is withdrawn."""
        if why_not == "exempt" and e.exempt_until is not None:
            inside = rots.drafts + [b for b in rots.beyond if b.start <= e.exempt_until]
            return [(r, f"employee exempt until {e.exempt_until}") for r in inside]
        return [(r, WHY_STALE[why_not]) for r in rots.drafts + rots.beyond]

    def _due(self, e: EmployeeRow, history: list[RotationRow]) -> _Due:
        horizon, policy = self.horizon, self.policy
        last_rot = e.last_rotation
        if history:
            last_rot = max([d for d in [last_rot, *(r.start for r in history)] if d is not None], default=None)
        hire_week = self._first_week(e.hire_date)
        release = hire_week
        if e.exempt_until is not None and e.exempt_until >= horizon:
            release = max(release, first_week_on_or_after(horizon, e.exempt_until + timedelta(days=1)))
        deadline = None
        if e.left_on is not None:
            deadline = ((e.left_on - horizon).days - 7 * policy.length_weeks) // 7
        new_hire = last_rot is None and e.hire_date > self._new_hire_after
        if new_hire:
            return _Due(True, hire_week, release, deadline, horizon + timedelta(weeks=hire_week), hire_week)
        due_date = horizon if last_rot is None else self._cycle_due(last_rot)
        due_week = max(self._first_week(due_date), -52)
        return _Due(False, hire_week, release, deadline, due_date, due_week)

    def _cycle_due(self, last_rotation: date) -> date:
        """``cycle_months`` after ``last_rotation`` (asked once per distinct date)."""
        due = self._due_after.get(last_rotation)
        if due is None:
            due = self._due_after[last_rotation] = add_months(last_rotation, self.policy.cycle_months)
        return due

    def _preference_weeks(self, e: EmployeeRow) -> tuple[frozenset[int], frozenset[int]]:
        if e.id is None or e.id not in self.preferences:
            return _NONE, _NONE
        preferred, unavailable = self.preferences[e.id]
        L = self.policy.length_weeks
        return (
            _weeks_in_range(self.horizon, self.weeks, L, preferred),
            _weeks_in_range(self.horizon, self.weeks, L, unavailable),
        )

    def _plan(self, e: EmployeeRow, dept: str, rots: _Rotations, due: _Due) -> None:
        L, horizon = self.policy.length_weeks, self.horizon
        blocked: set[int] = set()
        for a in self.absences.get(e.id, ()):
            blocked.update(blocked_starts_for(horizon, L, a.start, a.end))
        cur = rots.drafts[0] if rots.drafts else None
        preferred, unavailable = self._preference_weeks(e)
        self.people.append(
            Person(
                key=e.employee_id,
                dept=dept,
                release_week=due.release_week,
                due_week=due.due_week,
                deadline_week=due.deadline_week,
                is_new_hire=due.new_hire,
                blocked_starts=frozenset(b for b in blocked if -L <= b <= self.weeks) if blocked else _NONE,
                current_start=None if cur is None else week_of(horizon, cur.start),
                preferred=preferred,
                unavailable=unavailable,
            )
        )
        self.employees[e.employee_id] = e
        self.kinds[e.employee_id] = "new_hire" if due.new_hire else "cycle"
        due_monday = self._due_monday.get(due.due_date)
        if due_monday is None:
            day = due.due_date
            due_monday = self._due_monday[day] = monday_on_or_after(day) if day >= horizon else monday(day)
        self.dues[e.employee_id] = due_monday
        if cur is not None:
            self.drafts[e.employee_id] = cur


def _weeks_in_range(horizon: date, weeks: int, length: int, days: frozenset[date]) -> frozenset[int]:
    """Mondays as week indices from the horizon start, only those a rotation of the horizon can touch."""
    return frozenset(w for w in (week_of(horizon, d) for d in days) if 0 <= w < weeks + length)


def build_input(
    policy: Policy,
    horizon: date,
    weeks: int,
    departments: Sequence[Department],
    employees: Sequence[EmployeeRow],
    absence_rows: Sequence[AbsenceRow],
    rotations: Sequence[RotationRow],
    preferences: Mapping[int, tuple[frozenset[date], frozenset[date]]] | None = None,
) -> PlanningInput:
    """The planner's input from plain rows (no session needed: the benchmark builds rows in memory).
    ``preferences``: employee id -> (preferred Mondays, unavailable Mondays), soft terms of the plan."""
    caps = department_caps(policy, horizon, departments, employees)
    dept_names: dict[int | None, str] = {d.id: d.name for d in departments}
    by_emp = _by_employee(r for r in rotations if r.status != "cancelled")
    builder = _InputBuilder(policy, horizon, weeks, _by_employee(absence_rows), preferences or {})
    for e in sorted(employees, key=lambda e: e.employee_id):
        rots = by_emp.get(e.id)
        rots = sorted(rots, key=lambda r: (r.start, r.id or 0)) if rots else []
        builder.add(e, dept_names[e.department_id], _Rotations.split(rots, horizon, builder.horizon_end))
    inp = PlanInput(
        horizon_start=horizon,
        weeks=weeks,
        length_weeks=policy.length_weeks,
        seats_per_week=policy.seats_per_week,
        people=builder.people,
        dept_caps=caps,
        locked=builder.locked,
        blocked_starts=blackout_starts(policy, horizon),
        new_hire_within_weeks=policy.new_hire_within_weeks,
        weights=Weights(balance=policy.balance_weight),
    )
    return PlanningInput(
        inp,
        builder.employees,
        builder.drafts,
        builder.stale,
        builder.kinds,
        builder.dues,
        builder.fixed,
        dict(builder.skipped),
        caps,
    )
