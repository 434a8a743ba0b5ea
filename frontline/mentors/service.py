"""Mentor pairing over the database: who mentors whom, and the reads the console and CLI show.

:func:`pair_mentors` pairs every planned rotation (status ``draft`` or ``invited``, not yet over,
starting within the 52-week horizon) that has no active pairing, using the whole-horizon optimiser in
:mod:`frontline.mentors.solver`. It is stable and minimal:

* an active pairing is kept unless it *must* change: the mentor left (``Employee.active`` false or
  ``left_on`` before the rotation ends), is no longer a mentor, or has an absence overlapping the
  rotation. Then the old pairing becomes ``status='replaced'`` with the reason, a new active pairing
  is created with ``sequence`` = the number of earlier pairings of that rotation (0 for the first),
  and both are audited. The invites job notices the
  change of mentor (``Rotation.announced_mentor_id``) and tells both sides;
* pairings of cancelled rotations become ``status='cancelled'``;
* history: every earlier pairing of the same person (any status) excludes that mentor for good.

Mentors are active members of ``policy.support_department`` with ``is_mentor`` and a positive
``mentor_capacity`` (rotators at once in any week). ``policy.mentoring.annual_cap`` limits new plus
ongoing pairings per mentor over the horizon. The average of the rotators' pairing ratings
(:class:`models.PairingFeedback`, role ``rotator``) feeds ``weight_feedback``.

Time zones: a rotator's offset is taken at the rotation's start, a mentor's at the horizon start.

Phases, each callable alone: :func:`cancel_pairings_of_cancelled_rotations`, :func:`load_state`,
:func:`triage` (keep / re-pair / nothing to do, with reasons; pure), :func:`solver_input` (pure: plain
records to solver rotators and mentors), the solve, :func:`write_pairings` (with the check-in slot of
each new pairing, :func:`frontline.mentors.checkins.choose_checkin`).

Check-ins live in :mod:`frontline.mentors.checkins`, the wrap-up surveys in :mod:`frontline.mentors.surveys`.
"""

from __future__ import annotations

import dataclasses
import json
import time as _time
from collections.abc import Callable, Collection, Hashable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any, Protocol, cast

from sqlalchemy import Text, and_, or_, type_coerce
from sqlmodel import Session, col, func, select

from frontline.core import audit, clock
from frontline.core.errors import PairingError
from frontline.core.heap import no_cyclic_gc
from frontline.core.policy import Mentoring, Policy
from frontline.mentors.checkins import choose_checkin, slot_key, slot_start_utc, zone, zone_key
from frontline.mentors.pairings import active_pairings_overlapping
from frontline.mentors.surveys import mentor_feedback
from models import Absence, Department, Employee, MentorPairing, PairingGap, Rotation, utcnow
from models.db import bulk_insert

if TYPE_CHECKING:  # the solver imports SciPy (~1 s): only pairing itself loads it
    from frontline.mentors import solver

HORIZON_WEEKS = 52
PLANNED = ("draft", "invited")
HOLDING = ("active", "proposed")  # pairings that hold a mentor's seat (a proposal waits for HR's review)
Slot = tuple[date, date, tuple[int, str]]  # a rotation's first and last day, and its check-in slot


@dataclass
class PairingResult:
    as_of: date
    horizon_start: date
    dry_run: bool
    kept: int = 0
    created: list[dict[str, Any]] = field(
        default_factory=list
    )  # rotation_id, rotator, mentor, pairing_id, cost, checkin
    replaced: list[dict[str, Any]] = field(default_factory=list)  # pairing_id, rotation_id, old mentor, reason
    cancelled: int = 0
    unmatched: list[dict[str, Any]] = field(default_factory=list)  # rotation_id, rotator, reason, relaxation
    objective: float | None = None
    bound: float | None = None
    gap: float | None = None
    seconds: float = 0.0
    method: str = ""
    moved_to_make_room: int = 0  # kept pairings moved to seat someone left without a mentor (:func:`make_room`)

    def summary(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "dry_run": self.dry_run,
            "kept": self.kept,
            "created": len(self.created),
            "replaced": len(self.replaced),
            "cancelled": self.cancelled,
            "unmatched": len(self.unmatched),
            "moved_to_make_room": self.moved_to_make_room,
            "objective": None if self.objective is None else round(self.objective, 3),
            "bound": None if self.bound is None else round(self.bound, 3),
            "gap": self.gap,
            "method": self.method,
            "seconds": round(self.seconds, 3),
        }


@lru_cache(maxsize=100_000)  # a company has few zones and few start days: 100k rotators, ~2k distinct pairs
def offset_hours(tzname: str, day: date) -> float:
    """UTC offset of ``tzname`` at noon of ``day``, in hours."""
    offset = datetime.combine(day, time(12), tzinfo=zone(tzname)).utcoffset()
    return 0.0 if offset is None else offset.total_seconds() / 3600


def _department_named(session: Session, name: str) -> Department | None:
    return session.exec(select(Department).where(Department.name == name)).first()


def support_department(session: Session, policy: Policy) -> Department | None:
    """The policy's support department; None for an empty roster. Raises :class:`PairingError` when the
    roster has departments but none of that name (a typo would otherwise unpair every rotation)."""
    support = _department_named(session, policy.support_department)
    if support is None:
        known = session.exec(select(Department.name).order_by(col(Department.name))).all()
        if known:
            raise PairingError(
                f"policy support_department {policy.support_department!r} is not a department of the roster "
                f"(known: {', '.join(known)}); fix frontline.toml (nothing was changed)"
            )
    return support


# --------------------------------------------------------------------------------------------------
# Pairing, phase 0: pairings of cancelled rotations


def cancel_pairings_of_cancelled_rotations(session: Session, *, dry_run: bool) -> int:
    """Active pairings of cancelled rotations (anywhere in time) become ``cancelled``; returns how many.
    Runs before :func:`load_state`: a cancelled pairing no longer makes its mentor "ever mentored"."""
    rows = session.exec(
        select(MentorPairing)
        .join(Rotation, col(Rotation.id) == MentorPairing.rotation_id)
        .where(col(MentorPairing.status).in_(HOLDING), Rotation.status == "cancelled")
    ).all()
    if not dry_run:
        for p in rows:
            p.status, p.reason, p.updated_at = "cancelled", "the rotation was cancelled", utcnow()
            session.add(p)
    return len(rows)


# --------------------------------------------------------------------------------------------------
# Pairing, phase 1: what the database says


class PersonFacts(Protocol):
    """What pairing reads of a person: an :class:`models.Employee`, or a :class:`Person` read by columns."""

    @property
    def id(self) -> int | None: ...
    @property
    def name(self) -> str: ...
    @property
    def email(self) -> str: ...
    @property
    def department_id(self) -> int: ...
    @property
    def timezone(self) -> str: ...
    @property
    def languages(self) -> list[str]: ...
    @property
    def skills(self) -> list[str]: ...
    @property
    def mentor_capacity(self) -> int: ...
    @property
    def active(self) -> bool: ...
    @property
    def left_on(self) -> date | None: ...


class RotationFacts(Protocol):
    """What pairing reads of a rotation: a :class:`models.Rotation`, or a :class:`PlannedRotation`."""

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


@dataclass(frozen=True, slots=True)
class Person:
    """An employee's columns pairing reads (a plain record: no ORM entity per rotator)."""

    id: int
    name: str
    email: str
    department_id: int
    timezone: str
    languages: list[str]
    skills: list[str]
    mentor_capacity: int
    active: bool
    left_on: date | None


@dataclass(frozen=True, slots=True)
class PlannedRotation:
    """A rotation's columns pairing reads."""

    id: int
    employee_id: int
    start: date
    end: date
    kind: str
    status: str


PERSON_COLUMNS = (
    Employee.id,
    Employee.name,
    Employee.email,
    Employee.department_id,
    Employee.timezone,
    type_coerce(Employee.languages, Text),  # the JSON text: :func:`_decoder` decodes each distinct one once
    type_coerce(Employee.skills, Text),
    Employee.mentor_capacity,
    Employee.active,
    Employee.left_on,
)
ROTATION_COLUMNS = (Rotation.id, Rotation.employee_id, Rotation.start, Rotation.end, Rotation.kind, Rotation.status)


@dataclass
class PairingState:
    """Everything pairing reads, as plain records (no session needed after :func:`load_state`)."""

    as_of: date
    horizon_start: date  # the Monday of ``as_of``'s week: week 0 of the solver
    mentors: dict[int, PersonFacts]  # who may mentor now, by id
    absences: dict[int, list[Absence]]  # the mentors' (those who may mentor), ending in the horizon or later
    rotations: list[RotationFacts]  # not over, starting in the horizon, by start
    active: list[MentorPairing]  # the active and proposed pairings of those rotations
    employees: dict[int, PersonFacts]  # the rotators of those rotations and the mentors of those pairings
    history: dict[int, set[int]] = field(default_factory=dict)  # employee -> every mentor they ever had
    earlier: dict[int, int] = field(default_factory=dict)  # rotation -> pairings it had (any status)
    feedback: dict[int, float] = field(default_factory=dict)  # mentor -> average rotator rating
    ever: set[int] = field(default_factory=set)  # mentors who have mentored someone (started, not cancelled)
    departments: dict[int, str] = field(default_factory=dict)

    def week_of(self, day: date) -> int:
        return (day - self.horizon_start).days // 7

    @cached_property
    def rotation_by_id(self) -> dict[int, RotationFacts]:
        return {r.id: r for r in self.rotations if r.id is not None}

    def rotation(self, rotation_id: int) -> RotationFacts:
        return self.rotation_by_id[rotation_id]


def _decoder() -> Callable[[Any], list[str]]:
    """A JSON list column's value as read by :data:`PERSON_COLUMNS` (its text, or already a list when the driver
    decodes JSON itself) to a list, each distinct text decoded once (a company has few distinct language and
    skill lists; 100k employees decoded one by one took 1-3 s). People with the same text share the list."""
    seen: dict[str, list[str]] = {}

    def decode(value: Any) -> list[str]:
        if not isinstance(value, str):
            return list(value or [])
        out = seen.get(value)
        if out is None:
            out = seen[value] = list(json.loads(value) or [])
        return out

    return decode


def _people(session: Session, where: Any) -> list[Person]:
    """The people ``where`` selects, read by columns (:class:`Person`), by id."""
    decode = _decoder()
    rows = session.exec(select(*PERSON_COLUMNS).where(where).order_by(col(Employee.id))).all()  # type: ignore[call-overload]
    return [
        Person(pid, name, email, dept, tz, decode(langs), decode(skills), cap, active, left)
        for pid, name, email, dept, tz, langs, skills, cap, active, left in rows
    ]


def _is_mentor(support: Department) -> Any:
    """Who may mentor (those who left before the day aside): active members of ``support`` with
    ``is_mentor`` and a positive capacity."""
    return and_(
        col(Employee.department_id) == support.id,
        col(Employee.is_mentor) == True,  # noqa: E712
        col(Employee.active) == True,  # noqa: E712
        col(Employee.mentor_capacity) > 0,
    )


def _mentor_ids(support: Department) -> Any:
    return select(Employee.id).where(_is_mentor(support))


def _eligible_mentors(session: Session, support: Department | None, as_of: date) -> dict[int, PersonFacts]:
    if support is None:
        return {}
    people = _people(session, _is_mentor(support))
    return {e.id: e for e in people if e.left_on is None or e.left_on > as_of}


def _employee_entities(session: Session, ids: set[int]) -> dict[int, Employee]:
    rows = session.exec(select(Employee).where(col(Employee.id).in_(sorted(ids)))).all() if ids else []
    return {e.id: e for e in rows if e.id is not None}


def load_state(session: Session, support: Department | None, as_of: date) -> PairingState:
    """Read what pairing needs: the mentors (of ``support``, see :func:`support_department`), absences,
    the rotations of the horizon and their active pairings, the people involved, pairing history,
    earlier pairings per rotation, ratings, who has mentored before, and department names.

    By a few set queries: the rotations of the horizon (and the planned ones among them) are subqueries of
    the others, never lists of ids (100k employees: 90k ids bound one by one cost more than the reads)."""
    h0 = clock.monday(as_of)
    h_end = h0 + timedelta(weeks=HORIZON_WEEKS)
    mentors = _eligible_mentors(session, support, as_of)
    absences: dict[int, list[Absence]] = {}
    if support is not None:  # a mentor's absences are all that count (:func:`triage`, :func:`solver_mentors`)
        for a in session.exec(
            select(Absence).where(Absence.end >= h0, col(Absence.employee_id).in_(_mentor_ids(support)))
        ).all():
            absences.setdefault(a.employee_id, []).append(a)
    in_horizon = and_(col(Rotation.end) >= as_of, col(Rotation.start) < h_end)
    rotations: list[RotationFacts] = [
        PlannedRotation(*row)
        for row in session.exec(
            select(*ROTATION_COLUMNS)  # type: ignore[call-overload]
            .where(in_horizon)
            .order_by(col(Rotation.start), col(Rotation.id))
        ).all()
    ]
    horizon_ids = select(Rotation.id).where(in_horizon)
    planned = and_(in_horizon, col(Rotation.status).in_(PLANNED))
    active = list(
        session.exec(
            select(MentorPairing).where(
                col(MentorPairing.status).in_(HOLDING), col(MentorPairing.rotation_id).in_(horizon_ids)
            )
        ).all()
    )
    ever = session.exec(
        select(MentorPairing.mentor_id)
        .join(Rotation, col(Rotation.id) == MentorPairing.rotation_id)
        .where(MentorPairing.status != "cancelled", Rotation.start <= as_of)
        .distinct()
    ).all()
    rotators = select(Rotation.employee_id).where(in_horizon)
    their_mentors = select(MentorPairing.mentor_id).where(
        col(MentorPairing.status).in_(HOLDING), col(MentorPairing.rotation_id).in_(horizon_ids)
    )
    people = _people(session, or_(col(Employee.id).in_(rotators), col(Employee.id).in_(their_mentors)))
    history: dict[int, set[int]] = {}
    for eid, mid in session.exec(
        select(Rotation.employee_id, MentorPairing.mentor_id)
        .join(MentorPairing, col(MentorPairing.rotation_id) == Rotation.id)
        .where(col(Rotation.employee_id).in_(select(Rotation.employee_id).where(planned)))
    ).all():
        history.setdefault(eid, set()).add(mid)
    earlier = session.exec(
        select(MentorPairing.rotation_id, func.count(col(MentorPairing.id)))
        .where(col(MentorPairing.rotation_id).in_(select(Rotation.id).where(planned)))
        .group_by(col(MentorPairing.rotation_id))
    ).all()
    return PairingState(
        as_of=as_of,
        horizon_start=h0,
        mentors=mentors,
        absences=absences,
        rotations=rotations,
        active=active,
        employees={e.id: e for e in people},
        history=history,
        earlier=dict(earlier),
        feedback=mentor_feedback(session),
        ever=set(ever),
        departments={d.id: d.name for d in session.exec(select(Department)).all() if d.id is not None},
    )


# --------------------------------------------------------------------------------------------------
# Pairing, phase 2: which pairings stay (pure)


@dataclass
class Triage:
    kept: list[MentorPairing]
    to_replace: dict[int, tuple[MentorPairing, str]]  # rotation id -> (old pairing, why it must change)
    need: list[RotationFacts]  # planned rotations without a pairing that stays, by start

    def only(self, rotation_ids: Collection[int]) -> Triage:
        """The same triage, changing nothing but ``rotation_ids`` (a re-pair of those rotations alone)."""
        return Triage(
            self.kept,
            {k: v for k, v in self.to_replace.items() if k in rotation_ids},
            [r for r in self.need if r.id in rotation_ids],
        )


def mentor_problem(
    rot: RotationFacts, mentor: PersonFacts, absences: list[Absence], mentors: Mapping[int, PersonFacts]
) -> str | None:
    """Why an active pairing cannot stay (None when it can)."""
    if not mentor.active or (mentor.left_on is not None and mentor.left_on <= rot.end):
        return f"mentor {mentor.name} left"
    if mentor.id not in mentors:
        return f"{mentor.name} is no longer a mentor"
    for a in absences:
        if a.start <= rot.end and a.end >= rot.start:
            return f"mentor {mentor.name} is absent {a.start.isoformat()} to {a.end.isoformat()}"
    return None


def triage(state: PairingState) -> Triage:
    """Keep each planned rotation's active pairing unless its mentor left, stopped mentoring or is absent
    (or it is a second active pairing of the same rotation); the rotations left need a mentor."""
    by_id = {r.id: r for r in state.rotations}
    kept: list[MentorPairing] = []
    to_replace: dict[int, tuple[MentorPairing, str]] = {}
    paired: set[int] = set()
    for p in state.active:
        rot = by_id[p.rotation_id]
        if rot.status not in PLANNED or rot.id is None:
            continue
        mentor = state.employees.get(p.mentor_id)
        absent = state.absences.get(p.mentor_id, [])
        problem = mentor_problem(rot, mentor, absent, state.mentors) if mentor else "mentor not found"
        if problem is None and rot.id not in paired:
            kept.append(p)
            paired.add(rot.id)
        else:
            to_replace[rot.id] = (p, problem or "duplicate active pairing")
    need = [r for r in state.rotations if r.status in PLANNED and r.id not in paired]
    return Triage(kept, to_replace, need)


# --------------------------------------------------------------------------------------------------
# Pairing, phase 3: the solver's input (pure)


def _kept_load(state: PairingState, kept: list[MentorPairing]) -> tuple[dict[int, dict[int, int]], dict[int, int]]:
    """Seats the kept pairings take per mentor and week, and their number per mentor."""
    busy: dict[int, dict[int, int]] = {mid: {} for mid in state.mentors}
    load: dict[int, int] = dict.fromkeys(state.mentors, 0)
    for p in kept:
        if p.mentor_id not in state.mentors:
            continue
        rot = state.rotation(p.rotation_id)
        load[p.mentor_id] += 1
        for w in range(max(0, state.week_of(rot.start)), state.week_of(rot.end) + 1):
            busy[p.mentor_id][w] = busy[p.mentor_id].get(w, 0) + 1
    return busy, load


def _unavailable_weeks(state: PairingState, e: PersonFacts) -> frozenset[int]:
    """Weeks of the horizon (and a little beyond) a mentor is absent or gone."""
    weeks: set[int] = set()
    for a in state.absences.get(cast(int, e.id), []):
        weeks.update(range(max(0, state.week_of(a.start)), min(HORIZON_WEEKS + 60, state.week_of(a.end)) + 1))
    if e.left_on is not None:
        weeks.update(range(max(0, state.week_of(e.left_on)), HORIZON_WEEKS + 60))
    return frozenset(weeks)


def solver_mentors(state: PairingState, kept: list[MentorPairing], annual_cap: int) -> list[solver.Mentor]:
    from frontline.mentors import solver

    busy, load = _kept_load(state, kept)
    return [
        solver.Mentor(
            key=mid,
            dept=state.departments.get(e.department_id, ""),
            languages=frozenset(e.languages),
            skills=frozenset(e.skills),
            tz_hours=offset_hours(e.timezone, state.horizon_start),
            capacity=e.mentor_capacity,
            annual_cap=annual_cap - load[mid],
            unavailable_weeks=_unavailable_weeks(state, e),
            ever_mentored=mid in state.ever,
            feedback=state.feedback.get(mid),
            load_so_far=load[mid],
            busy_weeks=busy[mid],
            name=e.name,
        )
        for mid, e in state.mentors.items()
    ]


def solver_rotators(state: PairingState, plan: Triage) -> list[solver.Rotator]:
    out = []
    for r in plan.need:
        prev = set(state.history.get(r.employee_id, set()))
        if r.id in plan.to_replace:
            prev.add(plan.to_replace[r.id][0].mentor_id)
        out.append(_solver_rotator(state, r, prev))
    return out


def _solver_rotator(state: PairingState, r: RotationFacts, previous: set[int]) -> solver.Rotator:
    """The rotation ``r`` as the solver sees it, ``previous`` the mentors it may not have."""
    from frontline.mentors import solver

    e = state.employees[r.employee_id]
    start_week = max(0, state.week_of(r.start))
    return solver.Rotator(
        key=r.id,
        dept=state.departments.get(e.department_id, ""),
        languages=frozenset(e.languages),
        skills=frozenset(e.skills),
        tz_hours=offset_hours(e.timezone, r.start),
        start_week=start_week,
        end_week=max(start_week + 1, state.week_of(r.end) + 1),
        previous_mentors=frozenset(previous),
        is_new_hire=r.kind == "new_hire",
        name=e.name,
    )


MOVE_COST = 100.0  # what moving a kept pairing costs in :func:`make_room` (above any difference of pairing
# costs, below the unmatched penalty: someone moves only to seat someone else)


def make_room(
    state: PairingState, plan: Triage, sol: solver.Solution, annual_cap: int, weights: solver.Weights
) -> tuple[Triage, solver.Solution, int]:
    """After a re-run's solve left rotations without a mentor: seat them by moving kept pairings where that
    is the only way (:func:`frontline.mentors.solver.make_room`; every kept pairing of a rotation not yet
    under way at :data:`MOVE_COST`, and its rotator keeps a mentor; this run's new ones free, and one may
    lose its mentor when that seats more). Returns the triage and solution to write (each moved pairing
    replaced, with the reason, and paired again; the unmatched explained as things are after the moves) and
    how many kept pairings moved; unchanged when no more can be seated so."""
    from frontline.mentors import solver

    # a rotation under way keeps its mentor; the others may move
    kept = [p for p in plan.kept if state.rotation(p.rotation_id).start >= state.horizon_start]
    under_way = [p for p in plan.kept if state.rotation(p.rotation_id).start < state.horizon_start]
    rotators = solver_rotators(state, plan) + [
        _solver_rotator(
            state,
            state.rotation(p.rotation_id),
            set(state.history.get(state.rotation(p.rotation_id).employee_id, set())) - {p.mentor_id},
        )
        for p in kept
    ]
    current: dict[Hashable, Hashable] = {p.rotation_id: p.mentor_id for p in kept}
    after, costs, unmatched, stats = solver.make_room(
        rotators,
        solver_mentors(state, under_way, annual_cap),
        weights,
        current | dict(sol.assignments),
        dict.fromkeys(current, MOVE_COST),
    )
    moved = {p.rotation_id: p for p in kept if after.get(p.rotation_id) != p.mentor_id}
    if len(unmatched) >= len(sol.unmatched) or any(rid not in after for rid in moved):
        return plan, sol, 0  # nobody more seated, or someone told would lose a mentor (the MIP keeps them)
    seated = len(sol.unmatched) - len(unmatched)
    why = f"moved to make room: {seated} more rotation(s) without a mentor could then be paired"
    need = plan.need + [state.rotation(rid) for rid in moved]
    new_plan = Triage(
        [p for p in plan.kept if p.rotation_id not in moved],
        plan.to_replace | {rid: (p, why) for rid, p in moved.items()},
        sorted(need, key=lambda r: (r.start, cast(int, r.id))),
    )
    keys = {r.id for r in need}
    assignments: dict[Hashable, Hashable] = {k: m for k, m in after.items() if k in keys}
    # the figures describe what is written: this run's pairings, the moved ones among them, priced as
    # the solver prices them; the first solve's bound held with the moved pairings fixed, so none holds now
    objective = solver.objective(*solver_input(state, new_plan, annual_cap), weights, assignments)
    new_sol = dataclasses.replace(
        sol,
        assignments=assignments,
        costs={k: c for k, c in costs.items() if k in keys},
        unmatched=unmatched,  # explained as things are after the moves
        objective=objective,
        bound=None,
        gap=None,
        method=f"{sol.method}+make-room",
        stats=sol.stats
        | {
            "make_room": stats.get("mip_around_unmatched", []),
            "before_make_room": {"objective": sol.objective, "bound": sol.bound, "gap": sol.gap},
        },
    )
    return new_plan, new_sol, len(moved)


def solver_input(
    state: PairingState, plan: Triage, annual_cap: int
) -> tuple[list[solver.Rotator], list[solver.Mentor]]:
    """The rotations that need a mentor and the mentors, as the solver sees them (weeks counted from
    the horizon's Monday; seats and load of the kept pairings taken out)."""
    return solver_rotators(state, plan), solver_mentors(state, plan.kept, annual_cap)


# --------------------------------------------------------------------------------------------------
# Pairing, phase 5: write


def kept_slots(state: PairingState, kept: list[MentorPairing]) -> dict[int, list[Slot]]:
    """The check-in slots the kept pairings hold, per mentor (a new pairing avoids them when it can)."""
    taken: dict[int, list[Slot]] = {mid: [] for mid in state.mentors}
    for p in kept:
        mid = p.mentor_id
        mentor = state.mentors.get(mid)
        if mentor is None:
            continue
        rot = state.rotation(p.rotation_id)
        key = _kept_checkin(rot.start, p.checkin_weekday, p.checkin_time_utc, mentor.timezone)
        if key is not None:
            taken[mid].append((rot.start, rot.end, key))
    return taken


@lru_cache(maxsize=100_000)
def _kept_checkin(start: date, weekday: int | None, time_utc: str | None, mentor_tz: str) -> tuple[int, str] | None:
    """A kept pairing's first check-in as its mentor-local key (:func:`~frontline.mentors.checkins.slot_key`),
    None without a slot; the same for every pairing of that start, slot and zone (a re-run keeps thousands)."""
    if weekday is None or not time_utc:
        return None
    return slot_key(slot_start_utc(start, (weekday, time_utc)).astimezone(zone(mentor_tz)))


@lru_cache(maxsize=100_000)
def _first_checkin(start: date, slot: tuple[int, str], mentor_tz: str) -> tuple[tuple[int, str], str]:
    """A new pairing's first check-in, mentor-local: its key (:func:`~frontline.mentors.checkins.slot_key`)
    and how the result shows it ("Wed 13:00 Europe/Berlin"); the same for every pairing of that start, slot
    and zone."""
    first = slot_start_utc(start, slot).astimezone(zone(mentor_tz))
    return slot_key(first), f"{first:%a %H:%M} {zone_key(first)}"


@dataclass
class PairingWriter:
    """Phase 5 for one run: replaced and new pairings with their audit events, rotation by rotation."""

    session: Session
    state: PairingState
    mentoring: Mentoring
    result: PairingResult
    taken: dict[int, list[Slot]]
    actor: str
    dry_run: bool
    status: str = "active"  # "proposed" when policy mentoring.review holds new pairings for HR
    # the new pairings' column values, their result row and the pairing they replace (see :meth:`flush`)
    new: list[tuple[dict[str, Any], dict[str, Any], tuple[MentorPairing, str] | None]] = field(default_factory=list)
    now: datetime = field(default_factory=utcnow)  # created_at and updated_at of every new pairing of the run

    def audit(self, action: str, pairing_id: int | None, reason: str | None, **details: Any) -> None:
        audit.record(
            self.session,
            actor=self.actor,
            action=action,
            subject_type="pairing",
            subject_id=pairing_id,
            reason=reason,
            **details,
        )

    def replace(self, r: RotationFacts, old: tuple[MentorPairing, str], mid: int | None) -> None:
        old_p, reason = old
        old_mentor = self.state.employees.get(old_p.mentor_id)
        self.result.replaced.append(
            {
                "pairing_id": old_p.id,
                "rotation_id": r.id,
                "rotator": self.state.employees[r.employee_id].name,
                "old_mentor": old_mentor.name if old_mentor else old_p.mentor_id,
                "reason": reason,
                "new_mentor": self.state.mentors[mid].name if mid is not None else None,
            }
        )
        if self.dry_run:
            return
        old_p.status, old_p.reason, old_p.updated_at = "replaced", reason, utcnow()
        self.session.add(old_p)
        self.audit("pairing.replaced", old_p.id, reason, rotation_id=r.id, mentor_id=old_p.mentor_id, new_mentor_id=mid)

    def checkin(self, r: RotationFacts, rotator: PersonFacts, mentor: PersonFacts) -> tuple[int, str] | None:
        """The new pairing's check-in slot, avoiding the mentor's slots in overlapping rotations."""
        mid = cast(int, mentor.id)
        taken = {s for (a, b, s) in self.taken[mid] if a <= r.end and b >= r.start}
        hours = (self.mentoring.working_hours[0], self.mentoring.working_hours[1])
        slot = choose_checkin(
            r.start,
            r.end,
            mentor.timezone,
            rotator.timezone,
            minutes=self.mentoring.checkin_minutes,
            hours=hours,
            taken=taken,
        )
        return slot

    def create(self, r: RotationFacts, mid: int, cost: float | None, old: tuple[MentorPairing, str] | None) -> None:
        rotator, mentor = self.state.employees[r.employee_id], self.state.mentors[mid]
        slot = self.checkin(r, rotator, mentor)
        row: dict[str, Any] = {
            "rotation_id": r.id,
            "rotator": rotator.name,
            "rotator_email": rotator.email,
            "mentor": mentor.name,
            "mentor_email": mentor.email,
            "start": r.start.isoformat(),
            "cost": cost,
            "checkin": None,
            "pairing_id": None,
        }
        if slot is not None:
            key, row["checkin"] = _first_checkin(r.start, slot, mentor.timezone)
            self.taken[mid].append((r.start, r.end, key))
        if not self.dry_run:
            values = {
                "rotation_id": cast(int, r.id),
                "mentor_id": mid,
                "status": self.status,
                "score": cost,
                "checkin_weekday": slot[0] if slot else None,
                "checkin_time_utc": slot[1] if slot else None,
                "sequence": self.state.earlier.get(
                    cast(int, r.id), 0
                ),  # 0 for a rotation's first pairing, then 1, 2, ...
                "reason": (f"replaces pairing {old[0].id}: {old[1]}" if old else None),
                "response": None,
                "responded_at": None,
                "created_at": self.now,
                "updated_at": self.now,
            }
            self.new.append((values, row, old))
        row["status"] = self.status
        self.result.created.append(row)

    def flush(self) -> None:
        """Insert the new pairings in one DBAPI ``executemany`` (:func:`models.db.bulk_insert`: no ORM object
        nor SQLAlchemy's bind processing per pairing), read their ids back by this run's own ``now`` (every new
        pairing of the run has it as ``created_at``; no other writer runs meanwhile: the planning lock), then
        record the audit events of the replacements and proposals."""
        if not self.new:
            return
        table = MentorPairing.__table__  # type: ignore[attr-defined]
        bulk_insert(self.session, table, [values for values, _row, _old in self.new])
        mine = {values["rotation_id"] for values, _row, _old in self.new}
        ids: dict[int, int] = {}
        for rotation_id, pid in self.session.exec(
            select(MentorPairing.rotation_id, MentorPairing.id).where(
                MentorPairing.created_at == self.now, MentorPairing.status == self.status
            )
        ).all():
            if rotation_id in mine:
                ids[rotation_id] = cast(int, pid)
        if len(ids) != len(self.new):  # pragma: no cover - one new pairing per rotation (triage's ``need``)
            raise RuntimeError("the new pairings could not be read back (two for one rotation?)")
        for values, row, old in self.new:
            pid = ids[values["rotation_id"]]
            row["pairing_id"] = pid
            rid, mid, reason = values["rotation_id"], values["mentor_id"], values["reason"]
            if old:
                self.audit("pairing.created", pid, reason, rotation_id=rid, mentor_id=mid, replaces=old[0].id)
            if self.status == "proposed":
                self.audit("pairing.proposed", pid, None, rotation_id=rid, mentor_id=mid)
        self.new.clear()

    def unmatched(self, sol: solver.Solution) -> None:
        for u in sol.unmatched:
            r = self.state.rotation(cast(int, u.key))
            self.result.unmatched.append(
                {
                    "rotation_id": r.id,
                    "rotator": self.state.employees[r.employee_id].name,
                    "start": r.start.isoformat(),
                    "reason": u.reason,
                    "relaxation": u.relaxation,
                }
            )


def write_pairings(
    session: Session,
    state: PairingState,
    plan: Triage,
    sol: solver.Solution | None,
    result: PairingResult,
    mentoring: Mentoring,
    *,
    actor: str,
    dry_run: bool,
) -> None:
    """Replace the pairings that must change, create the new ones (with a check-in slot each; held as
    proposals when ``mentoring.review``) and list the unmatched; with ``dry_run`` only ``result`` says
    what would happen."""
    status = "proposed" if mentoring.review else "active"
    writer = PairingWriter(session, state, mentoring, result, kept_slots(state, plan.kept), actor, dry_run, status)
    assigned = cast("dict[Hashable, int]", sol.assignments if sol else {})  # rotation id -> mentor id
    for r in plan.need:
        old = plan.to_replace.get(cast(int, r.id))
        mid = assigned.get(r.id)
        if old is not None:
            writer.replace(r, old, mid)
        if mid is not None and sol is not None:
            writer.create(r, mid, sol.costs.get(r.id), old)
    writer.flush()
    if sol is not None:
        writer.unmatched(sol)
    if not dry_run:
        record_gaps(session, [cast(int, r.id) for r in plan.need], result.unmatched)


def record_gaps(session: Session, tried: list[int], unmatched: list[dict[str, Any]]) -> None:
    """Remember why each rotation of ``tried`` that is still unmatched has no mentor (reason and the
    relaxation that would help: :class:`models.PairingGap`); forget the gaps of the others."""
    if not tried:
        return
    tried_set = set(tried)
    # every recorded gap (one per rotation still without a mentor: few), not 100k ids bound one by one
    for gap in session.exec(select(PairingGap)).all():
        if gap.rotation_id in tried_set:
            session.delete(gap)
    session.flush()
    for u in unmatched:
        session.add(
            PairingGap(rotation_id=u["rotation_id"], reason=u["reason"] or "no mentor fits", relaxation=u["relaxation"])
        )


def forget_gap(session: Session, rotation_id: int) -> None:
    """The rotation has a mentor now (set by HR): drop its recorded gap."""
    for gap in session.exec(select(PairingGap).where(PairingGap.rotation_id == rotation_id)).all():
        session.delete(gap)


# --------------------------------------------------------------------------------------------------
# Pairing: the phases in order


def pair_mentors(
    session: Session,
    policy: Policy,
    as_of: date | None = None,
    actor: str = "cli",
    *,
    dry_run: bool = False,
    time_limit: float = 60.0,
    only: Collection[int] | None = None,
) -> PairingResult:
    """Pair every planned rotation without an active pairing (see the module docstring).

    With ``dry_run`` nothing is written; the result says what would happen. With ``only`` (rotation ids)
    just those rotations are (re-)paired and every other pairing and gap is left as it is (a mentor's
    decline or HR's rejection re-pairs that rotation alone)."""
    from models.db import planning_lock

    if not dry_run:  # before reading: a second writer pairs from this one's result
        planning_lock(session, f"pair-mentors by {actor}")
    with no_cyclic_gc():  # a run frees nothing in cycles; at 100k the collections cost 1-2 s of CPU
        return _pair_mentors(session, policy, as_of, actor, dry_run=dry_run, time_limit=time_limit, only=only)


def _pair_mentors(
    session: Session,
    policy: Policy,
    as_of: date | None,
    actor: str,
    *,
    dry_run: bool,
    time_limit: float,
    only: Collection[int] | None,
) -> PairingResult:
    """:func:`pair_mentors` after the planning lock."""
    t0 = _time.perf_counter()
    as_of = as_of or clock.today()
    result = PairingResult(as_of=as_of, horizon_start=clock.monday(as_of), dry_run=dry_run)
    support = support_department(session, policy)  # refuses a misconfigured policy before any change
    result.cancelled = cancel_pairings_of_cancelled_rotations(session, dry_run=dry_run)
    state = load_state(session, support, as_of)
    plan = triage(state)
    if only is not None:
        plan = plan.only(set(only))
    result.kept = len(plan.kept)
    rotators, mentors = solver_input(state, plan, policy.mentoring.annual_cap)
    from frontline.mentors import solver

    weights = solver.Weights.from_policy(policy.mentoring)
    sol = solver.solve(rotators, mentors, weights, time_limit=time_limit) if rotators else None
    if sol is not None:
        if sol.unmatched and plan.kept and only is None and not policy.mentoring.review:
            plan, sol, result.moved_to_make_room = make_room(state, plan, sol, policy.mentoring.annual_cap, weights)
            result.kept = len(plan.kept)
        result.objective, result.bound, result.gap, result.method = sol.objective, sol.bound, sol.gap, sol.method
    write_pairings(session, state, plan, sol, result, policy.mentoring, actor=actor, dry_run=dry_run)
    result.seconds = _time.perf_counter() - t0
    if not dry_run:
        audit.record(
            session,
            actor=actor,
            action="pairing.run",
            subject_type="horizon",
            subject_id=state.horizon_start.isoformat(),
            only=sorted(only) if only is not None else None,
            **result.summary(),
        )
    return result


# --------------------------------------------------------------------------------------------------
# Reads for the console and the CLI


def mentor_load(session: Session, policy: Policy, start: date, weeks: int) -> list[dict[str, Any]]:
    """Active pairings per mentor per week from Monday ``start``: one row per mentor with ``capacity``,
    ``total`` (pairings overlapping the period) and a count per week (``w<ISO week>`` keys, in order)."""
    start = clock.monday(start)
    end = start + timedelta(weeks=weeks) - timedelta(days=1)
    support = _department_named(session, policy.support_department)
    mentors = session.exec(
        select(Employee)
        .where(Employee.department_id == (support.id if support else -1), Employee.is_mentor == True)  # noqa: E712
        .order_by(col(Employee.name))
    ).all()
    per: dict[int, dict[int, int]] = {}
    total: dict[int, int] = {}
    mondays = [start + timedelta(weeks=k) for k in range(weeks)]
    for p, r in active_pairings_overlapping(session, start, end):
        total[p.mentor_id] = total.get(p.mentor_id, 0) + 1
        weekly = per.setdefault(p.mentor_id, {})
        for k, wk0 in enumerate(mondays):
            if r.start <= wk0 + timedelta(days=6) and r.end >= wk0:
                weekly[k] = weekly.get(k, 0) + 1
    out = []
    for m in mentors:
        row: dict[str, Any] = {
            "mentor": m.name,
            "email": m.email,
            "capacity": m.mentor_capacity,
            "active": m.active,
            "total": total.get(cast(int, m.id), 0),
        }
        for k, wk0 in enumerate(mondays):
            row[f"w{wk0.isocalendar().week:02d}"] = per.get(cast(int, m.id), {}).get(k, 0)
        out.append(row)
    return out


def pairings_in_view(
    session: Session, start: date, end: date
) -> tuple[list[tuple[Rotation, Employee, Employee | None]], list[tuple[Rotation, Employee]]]:
    """The rotations (not cancelled) overlapping [``start``, ``end``], by start and name, split into those
    with an active pairing (rotation, rotator, mentor) and those without (rotation, rotator)."""
    rows = session.exec(
        select(Rotation, Employee)
        .join(Employee, col(Employee.id) == Rotation.employee_id)
        .where(Rotation.status != "cancelled", Rotation.start <= end, Rotation.end >= start)
        .order_by(col(Rotation.start), col(Employee.name))
    ).all()
    rotation_ids = [r.id for r, _e in rows if r.id is not None]
    active = {
        p.rotation_id: p
        for p in session.exec(
            select(MentorPairing).where(
                MentorPairing.status == "active", col(MentorPairing.rotation_id).in_(rotation_ids or [-1])
            )
        ).all()
    }
    mentors = _employee_entities(session, {p.mentor_id for p in active.values()})
    paired = [(r, e, mentors.get(active[r.id].mentor_id)) for r, e in rows if r.id in active]
    unpaired = [(r, e) for r, e in rows if r.id not in active]
    return paired, unpaired


def gaps_for(session: Session, rotation_ids: list[int]) -> dict[int, PairingGap]:
    """Why each of these rotations has no mentor (the last pairing run that tried it), by rotation id."""
    if not rotation_ids:
        return {}
    rows = session.exec(select(PairingGap).where(col(PairingGap.rotation_id).in_(rotation_ids))).all()
    return {g.rotation_id: g for g in rows}


def mentor_answers(session: Session, rotation_ids: list[int]) -> dict[int, str]:
    """The active mentor's answer to the signed pairing link (``accepted``), by rotation id (absent: none yet)."""
    if not rotation_ids:
        return {}
    rows = session.exec(
        select(MentorPairing.rotation_id, MentorPairing.response).where(
            MentorPairing.status == "active", col(MentorPairing.rotation_id).in_(rotation_ids)
        )
    ).all()
    return {rid: response for rid, response in rows if response}


def proposed_rotation_ids(session: Session, rotation_ids: list[int]) -> set[int]:
    """Those of these rotations whose pairing waits for HR's review."""
    if not rotation_ids:
        return set()
    rows = session.exec(
        select(MentorPairing.rotation_id).where(
            MentorPairing.status == "proposed", col(MentorPairing.rotation_id).in_(rotation_ids)
        )
    ).all()
    return set(rows)


def mentor_columns(session: Session, rotation_ids: list[int]) -> dict[int, dict[str, str]]:
    """``{rotation id: {"mentor_employee_id": ..., "mentor_email": ...}}`` from the active pairings
    (the HR system's ``Employee.employee_id``); rotations without a mentor are absent."""
    if not rotation_ids:
        return {}
    rows = session.exec(
        select(MentorPairing.rotation_id, Employee.employee_id, Employee.email)
        .join(Employee, col(Employee.id) == MentorPairing.mentor_id)
        .where(MentorPairing.status == "active", col(MentorPairing.rotation_id).in_(list(rotation_ids)))
    ).all()
    return {rid: {"mentor_employee_id": eid, "mentor_email": email} for rid, eid, email in rows}
