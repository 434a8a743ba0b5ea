"""Mentor pairing over the database: who mentors whom, when they meet, and what they thought of it.

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

Check-ins (:func:`choose_checkin`, :func:`checkin_events`): a 30-minute slot (``checkin_minutes``) on
a Tuesday-Friday, inside both people's working hours (``working_hours``, local) in *every* week of the
rotation, avoiding the mentor's other check-ins. It is stored like the invites job reads it: the
weekday and HH:MM **in UTC of the first week's occurrence** (``checkin_weekday``,
``checkin_time_utc``); the series then keeps the *mentor's local* time across daylight-saving changes.
"""

from __future__ import annotations

import time as _time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func
from sqlalchemy.orm import aliased
from sqlmodel import Session, select

from frontline.core import audit, clock
from frontline.core.clock import monday
from frontline.core.errors import PairingError
from frontline.core.policy import Policy
from frontline.mentors import solver
from models import Absence, Department, Employee, MentorPairing, PairingFeedback, Rotation, utcnow

HORIZON_WEEKS = 52
PLANNED = ("draft", "invited")
SLOT_WEEKDAYS = (1, 2, 3, 4)  # Tuesday..Friday in the mentor's zone (Monday is the kickoff)


@dataclass
class PairingResult:
    as_of: date
    horizon_start: date
    dry_run: bool
    kept: int = 0
    created: list[dict] = field(default_factory=list)  # rotation_id, rotator, mentor, pairing_id, cost, checkin
    replaced: list[dict] = field(default_factory=list)  # pairing_id, rotation_id, old mentor, reason
    cancelled: int = 0
    unmatched: list[dict] = field(default_factory=list)  # rotation_id, rotator, reason, relaxation
    objective: float | None = None
    bound: float | None = None
    gap: float | None = None
    seconds: float = 0.0
    method: str = ""

    def summary(self) -> dict:
        return {
            "as_of": self.as_of.isoformat(),
            "dry_run": self.dry_run,
            "kept": self.kept,
            "created": len(self.created),
            "replaced": len(self.replaced),
            "cancelled": self.cancelled,
            "unmatched": len(self.unmatched),
            "objective": None if self.objective is None else round(self.objective, 3),
            "bound": None if self.bound is None else round(self.bound, 3),
            "gap": self.gap,
            "method": self.method,
            "seconds": round(self.seconds, 3),
        }


def zone(name: str | None, fallback: ZoneInfo | None = None) -> ZoneInfo:
    try:
        return ZoneInfo(name) if name else (fallback or ZoneInfo("UTC"))
    except (ZoneInfoNotFoundError, ValueError):
        return fallback or ZoneInfo("UTC")


def offset_hours(tzname: str, day: date) -> float:
    """UTC offset of ``tzname`` at noon of ``day``, in hours."""
    return datetime.combine(day, time(12), tzinfo=zone(tzname)).utcoffset().total_seconds() / 3600


def _weeks(rot: Rotation) -> int:
    return max(1, ((rot.end - rot.start).days + 7) // 7)


# --------------------------------------------------------------------------------------------------
# Check-in slots


def _valid_at(local: datetime, minutes: int, rotator_zone: ZoneInfo, hours: tuple[int, int]) -> bool:
    """``local`` (aware, mentor zone) is a real time inside both people's working hours on a weekday."""
    utc = local.astimezone(UTC)
    if utc.astimezone(local.tzinfo).replace(tzinfo=None) != local.replace(tzinfo=None):
        return False  # does not exist (skipped by a DST change)
    h0, h1 = hours
    for t in (local, utc.astimezone(rotator_zone)):
        end = t + timedelta(minutes=minutes)
        if t.weekday() > 4 or end.date() != t.date():
            return False
        if t.time() < time(h0) or (end.hour, end.minute) > (h1, 0):
            return False
    return True


def choose_checkin(
    start: date,
    end: date,
    mentor_tz: str,
    rotator_tz: str,
    *,
    minutes: int = 30,
    hours: tuple[int, int] = (9, 17),
    taken: set[tuple[int, str]] = frozenset(),
) -> tuple[int, str] | None:
    """A weekly slot for a rotation ``[start, end]``: ``(weekday, "HH:MM")`` of the first occurrence
    in UTC, or None when no Tuesday-Friday time is inside both working hours in every week.

    Candidates are mentor-local Tuesday-Friday times on the half hour; each must be valid in every
    week (the local time is kept, so DST changes are checked week by week), and on the first Monday
    at the same time (the kickoff). ``taken`` holds the mentor's other slots (mentor-local weekday,
    "HH:MM"), avoided when possible. Preference: both people's local times close to 13:00, then the
    earlier weekday."""
    mz, rz = zone(mentor_tz), zone(rotator_tz)
    weeks = max(1, ((end - start).days + 7) // 7)
    first_monday = start - timedelta(days=start.weekday())
    best = None
    for weekday in SLOT_WEEKDAYS:
        for half in range(hours[0] * 2, hours[1] * 2):
            local_t = time(half // 2, 30 * (half % 2))
            occurrences = [
                datetime.combine(first_monday + timedelta(weeks=k, days=weekday), local_t, tzinfo=mz)
                for k in range(weeks)
            ]
            occurrences = [o for o in occurrences if start <= o.date() <= end]
            if not occurrences or not all(_valid_at(o, minutes, rz, hours) for o in occurrences):
                continue
            first = occurrences[0]
            r_local = first.astimezone(rz)
            closeness = abs(first.hour + first.minute / 60 - 13) + abs(r_local.hour + r_local.minute / 60 - 13)
            kickoff_ok = _valid_at(datetime.combine(start, local_t, tzinfo=mz), minutes, rz, hours)
            score = ((weekday, f"{local_t:%H:%M}") in taken, not kickoff_ok, closeness, weekday)
            if best is None or score < best[0]:
                best = (score, first)
    if best is None:
        return None
    utc = best[1].astimezone(UTC)
    return utc.weekday(), f"{utc:%H:%M}"


@dataclass(frozen=True)
class CheckInEvent:
    kind: str  # kickoff | checkin | wrapup
    start: datetime  # aware, in ``tzid``
    end: datetime
    tzid: str  # the mentor's IANA zone: the series keeps this local time across DST changes


def slot_local(rotation: Rotation, pairing: MentorPairing, mentor_tz: str) -> datetime | None:
    """The first week's check-in as an aware datetime in the mentor's zone (None without a slot)."""
    if pairing.checkin_weekday is None or not pairing.checkin_time_utc:
        return None
    hh, _, mm = pairing.checkin_time_utc.partition(":")
    day = rotation.start + timedelta(days=(pairing.checkin_weekday - rotation.start.weekday()) % 7)
    return datetime.combine(day, time(int(hh), int(mm or 0)), tzinfo=UTC).astimezone(zone(mentor_tz))


def checkin_events(
    session: Session, pairing: MentorPairing, minutes: int | None = None, hours: tuple[int, int] | None = None
) -> list[CheckInEvent]:
    """The meetings of a pairing, for calendar invites to both people (mentor and rotator).

    * ``kickoff``: on the rotation's first day (its Monday) at the slot's mentor-local time when that is
      inside both working hours, else the first half hour that is (falls back to the slot time);
    * ``checkin``: weekly at the slot, in weeks 2 .. n-1 of an n-week rotation (week 1 has the kickoff);
    * ``wrapup``: at the slot in the last week (the survey goes out that week).

    Every event keeps the same *local* time in the mentor's zone (``tzid``) across daylight-saving
    changes: ``start``/``end`` are aware datetimes in that zone (an iCalendar writer should emit
    ``DTSTART;TZID=<tzid>`` with a VTIMEZONE, or convert each to UTC itself). The slot is stored on the
    pairing as weekday + HH:MM in UTC of the first week's occurrence (see :func:`choose_checkin`).
    Empty when the pairing has no slot. ``minutes``/``hours`` default to ``policy.mentoring``.
    """
    rotation = session.get(Rotation, pairing.rotation_id)
    mentor = session.get(Employee, pairing.mentor_id)
    rotator = session.get(Employee, rotation.employee_id) if rotation else None
    if rotation is None or mentor is None or rotator is None:
        return []
    if minutes is None or hours is None:
        from frontline.core.policy import load_policy

        m = load_policy().mentoring
        minutes = m.checkin_minutes if minutes is None else minutes
        hours = tuple(m.working_hours) if hours is None else hours
    return events_for(rotation.start, rotation.end, pairing, mentor.timezone, rotator.timezone, minutes, hours)


def events_for(
    start: date,
    end: date,
    pairing: MentorPairing,
    mentor_tz: str,
    rotator_tz: str,
    minutes: int,
    hours: tuple[int, int],
) -> list[CheckInEvent]:
    """:func:`checkin_events` without the database."""
    mz, rz = zone(mentor_tz), zone(rotator_tz)
    fake = Rotation(employee_id=0, start=start, end=end, kind="cycle", due=start)
    first = slot_local(fake, pairing, mentor_tz)
    if first is None:
        return []
    tzid = mz.key
    local_t = first.time()
    dur = timedelta(minutes=minutes)

    def at(day: date, t: time) -> datetime:
        return datetime.combine(day, t, tzinfo=mz)

    kickoff = at(start, local_t)
    if not _valid_at(kickoff, minutes, rz, hours):
        for half in range(hours[0] * 2, hours[1] * 2):
            cand = at(start, time(half // 2, 30 * (half % 2)))
            if _valid_at(cand, minutes, rz, hours):
                kickoff = cand
                break
    events = [CheckInEvent("kickoff", kickoff, kickoff + dur, tzid)]
    weeks = max(1, ((end - start).days + 7) // 7)
    slots = [at(first.date() + timedelta(weeks=k), local_t) for k in range(weeks)]
    slots = [s for s in slots if s.date() <= end]
    for k, s in enumerate(slots):
        if k == len(slots) - 1:
            events.append(CheckInEvent("wrapup", s, s + dur, tzid))
        elif k >= 1:
            events.append(CheckInEvent("checkin", s, s + dur, tzid))
    return events


# --------------------------------------------------------------------------------------------------
# Pairing


def _mentor_problem(
    rot: Rotation, mentor: Employee, absences: list[Absence], mentors: dict[int, Employee]
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


def mentor_feedback(session: Session) -> dict[int, float]:
    """Average rotator rating of the pairing (1-5) per mentor ``Employee.id``."""
    rows = session.exec(
        select(MentorPairing.mentor_id, func.avg(PairingFeedback.usefulness))
        .join(PairingFeedback, PairingFeedback.pairing_id == MentorPairing.id)
        .where(PairingFeedback.role == "rotator")
        .group_by(MentorPairing.mentor_id)
    ).all()
    return {mid: float(avg) for mid, avg in rows if avg is not None}


def feedback_summary(session: Session, department_ids: list[int] | None = None) -> dict:
    """Wrap-up survey results for the HR dashboard: answers per side, average usefulness of the
    rotation and of the pairing (1-5), and per mentor the rotators' average pairing rating.

    ``department_ids`` limits it to rotators from those departments (a head's view)."""
    rotator = aliased(Employee)
    mentor = aliased(Employee)
    query = (
        select(
            PairingFeedback.role,
            PairingFeedback.rotation_usefulness,
            PairingFeedback.usefulness,
            mentor.id,
            mentor.name,
        )
        .join(MentorPairing, MentorPairing.id == PairingFeedback.pairing_id)
        .join(Rotation, Rotation.id == MentorPairing.rotation_id)
        .join(rotator, rotator.id == Rotation.employee_id)
        .join(mentor, mentor.id == MentorPairing.mentor_id)
    )
    if department_ids is not None:
        query = query.where(rotator.department_id.in_(department_ids or [-1]))
    answers = {"rotator": 0, "mentor": 0}
    rotation_scores: list[int] = []
    pairing_scores: dict[str, list[int]] = {"rotator": [], "mentor": []}
    per_mentor: dict[int, dict] = {}
    for role, rotation_usefulness, usefulness, mentor_id, mentor_name in session.exec(query).all():
        answers[role] += 1
        rotation_scores.append(rotation_usefulness)
        pairing_scores[role].append(usefulness)
        if role == "rotator":
            entry = per_mentor.setdefault(mentor_id, {"mentor": mentor_name, "ratings": []})
            entry["ratings"].append(usefulness)

    def mean(values: list[int]) -> float | None:
        return sum(values) / len(values) if values else None

    mentors = sorted(
        (
            {"mentor": m["mentor"], "answers": len(m["ratings"]), "average": mean(m["ratings"])}
            for m in per_mentor.values()
        ),
        key=lambda m: (-m["average"], -m["answers"], m["mentor"]),
    )
    return {
        "answers": answers,
        "rotation_usefulness": mean(rotation_scores),
        "pairing_by_rotators": mean(pairing_scores["rotator"]),
        "pairing_by_mentors": mean(pairing_scores["mentor"]),
        "mentors": mentors,
    }


def support_department(session: Session, policy: Policy) -> Department | None:
    """The policy's support department; None for an empty roster. Raises :class:`PairingError` when the
    roster has departments but none of that name (a typo would otherwise unpair every rotation)."""
    support = session.exec(select(Department).where(Department.name == policy.support_department)).first()
    if support is None:
        known = session.exec(select(Department.name).order_by(Department.name)).all()
        if known:
            raise PairingError(
                f"policy support_department {policy.support_department!r} is not a department of the roster "
                f"(known: {', '.join(known)}); fix frontline.toml (nothing was changed)"
            )
    return support


def pair_mentors(
    session: Session,
    policy: Policy,
    as_of: date | None = None,
    actor: str = "cli",
    *,
    dry_run: bool = False,
    time_limit: float = 60.0,
) -> PairingResult:
    """Pair every planned rotation without an active pairing (see the module docstring).

    With ``dry_run`` nothing is written; the result says what would happen."""
    t0 = _time.perf_counter()
    as_of = as_of or clock.today()
    h0 = monday(as_of)
    h_end = h0 + timedelta(weeks=HORIZON_WEEKS)
    result = PairingResult(as_of=as_of, horizon_start=h0, dry_run=dry_run)
    mcfg = policy.mentoring
    weights = solver.Weights.from_policy(mcfg)

    support = support_department(session, policy)
    mentor_rows = []
    if support is not None:
        mentor_rows = session.exec(
            select(Employee)
            .where(
                Employee.department_id == support.id,
                Employee.is_mentor == True,  # noqa: E712
                Employee.active == True,  # noqa: E712
                Employee.mentor_capacity > 0,
            )
            .order_by(Employee.id)
        ).all()
    mentors = {e.id: e for e in mentor_rows if e.left_on is None or e.left_on > as_of}
    absences: dict[int, list[Absence]] = {}
    for a in session.exec(select(Absence).where(Absence.end >= h0)).all():
        absences.setdefault(a.employee_id, []).append(a)

    rotations = session.exec(
        select(Rotation).where(Rotation.end >= as_of, Rotation.start < h_end).order_by(Rotation.start, Rotation.id)
    ).all()
    rot_by_id = {r.id: r for r in rotations}
    active = session.exec(
        select(MentorPairing).where(
            MentorPairing.status == "active", MentorPairing.rotation_id.in_(list(rot_by_id) or [-1])
        )
    ).all()
    # pairings of cancelled rotations (anywhere in time) are cancelled too
    for p, _rotation in session.exec(
        select(MentorPairing, Rotation)
        .join(Rotation, Rotation.id == MentorPairing.rotation_id)
        .where(MentorPairing.status == "active", Rotation.status == "cancelled")
    ).all():
        result.cancelled += 1
        if not dry_run:
            p.status, p.reason, p.updated_at = "cancelled", "the rotation was cancelled", utcnow()
            session.add(p)

    employees: dict[int, Employee] = {}

    def emp(eid: int) -> Employee | None:
        if eid not in employees:
            employees[eid] = session.get(Employee, eid)
        return employees[eid]

    kept: list[MentorPairing] = []
    to_replace: dict[int, tuple[MentorPairing, str]] = {}  # rotation id -> (old pairing, reason)
    paired = set()
    for p in active:
        rot = rot_by_id[p.rotation_id]
        if rot.status not in PLANNED:
            continue
        mentor = emp(p.mentor_id)
        problem = _mentor_problem(rot, mentor, absences.get(mentor.id, []), mentors) if mentor else "mentor not found"
        if problem is None and rot.id not in paired:
            kept.append(p)
            paired.add(rot.id)
        else:
            to_replace[rot.id] = (p, problem or "duplicate active pairing")
    result.kept = len(kept)
    need = [r for r in rotations if r.status in PLANNED and r.id not in paired]

    # ---- solver input ----
    def week_of(day: date) -> int:
        return (day - h0).days // 7

    busy: dict[int, dict[int, int]] = {mid: {} for mid in mentors}
    load: dict[int, int] = dict.fromkeys(mentors, 0)
    taken_slots: dict[int, list[tuple[date, date, tuple[int, str]]]] = {mid: [] for mid in mentors}
    for p in kept:
        rot = rot_by_id[p.rotation_id]
        if p.mentor_id not in mentors:
            continue
        load[p.mentor_id] += 1
        for w in range(max(0, week_of(rot.start)), week_of(rot.end) + 1):
            busy[p.mentor_id][w] = busy[p.mentor_id].get(w, 0) + 1
        first = slot_local(rot, p, mentors[p.mentor_id].timezone)
        if first is not None:
            taken_slots[p.mentor_id].append((rot.start, rot.end, (first.weekday(), f"{first:%H:%M}")))

    need_emp_ids = {r.employee_id for r in need}
    history: dict[int, set[int]] = {}
    if need_emp_ids:
        for eid, mid in session.exec(
            select(Rotation.employee_id, MentorPairing.mentor_id)
            .join(MentorPairing, MentorPairing.rotation_id == Rotation.id)
            .where(Rotation.employee_id.in_(list(need_emp_ids)))
        ).all():
            history.setdefault(eid, set()).add(mid)
    feedback = mentor_feedback(session)
    ever = set(
        session.exec(
            select(MentorPairing.mentor_id)
            .join(Rotation, Rotation.id == MentorPairing.rotation_id)
            .where(MentorPairing.status != "cancelled", Rotation.start <= as_of)
            .distinct()
        ).all()
    )
    depts = {d.id: d.name for d in session.exec(select(Department)).all()}
    s_mentors = []
    for mid, e in mentors.items():
        unavailable = set()
        for a in absences.get(mid, []):
            for w in range(max(0, week_of(a.start)), min(HORIZON_WEEKS + 60, week_of(a.end)) + 1):
                unavailable.add(w)
        if e.left_on is not None:
            unavailable.update(range(max(0, week_of(e.left_on)), HORIZON_WEEKS + 60))
        s_mentors.append(
            solver.Mentor(
                key=mid,
                dept=depts.get(e.department_id, ""),
                languages=frozenset(e.languages),
                skills=frozenset(e.skills),
                tz_hours=offset_hours(e.timezone, h0),
                capacity=e.mentor_capacity,
                annual_cap=mcfg.annual_cap - load[mid],
                unavailable_weeks=frozenset(unavailable),
                ever_mentored=mid in ever,
                feedback=feedback.get(mid),
                load_so_far=load[mid],
                busy_weeks=busy[mid],
                name=e.name,
            )
        )
    s_rotators = []
    for r in need:
        e = emp(r.employee_id)
        prev = set(history.get(r.employee_id, set()))
        if r.id in to_replace:
            prev.add(to_replace[r.id][0].mentor_id)
        s_rotators.append(
            solver.Rotator(
                key=r.id,
                dept=depts.get(e.department_id, ""),
                languages=frozenset(e.languages),
                skills=frozenset(e.skills),
                tz_hours=offset_hours(e.timezone, r.start),
                start_week=max(0, week_of(r.start)),
                end_week=max(max(0, week_of(r.start)) + 1, week_of(r.end) + 1),
                previous_mentors=frozenset(prev),
                is_new_hire=r.kind == "new_hire",
                name=e.name,
            )
        )
    sol = solver.solve(s_rotators, s_mentors, weights, time_limit=time_limit) if s_rotators else None
    if sol is not None:
        result.objective, result.bound, result.gap, result.method = sol.objective, sol.bound, sol.gap, sol.method

    # ---- write ----
    earlier: dict[int, int] = {}
    if need:
        for rid, n in session.exec(
            select(MentorPairing.rotation_id, func.count(MentorPairing.id))
            .where(MentorPairing.rotation_id.in_([r.id for r in need]))
            .group_by(MentorPairing.rotation_id)
        ).all():
            earlier[rid] = n
    for r in need:
        e = emp(r.employee_id)
        old = to_replace.get(r.id)
        mid = sol.assignments.get(r.id) if sol else None
        if old is not None:
            old_p, reason = old
            result.replaced.append(
                {
                    "pairing_id": old_p.id,
                    "rotation_id": r.id,
                    "rotator": e.name,
                    "old_mentor": emp(old_p.mentor_id).name if emp(old_p.mentor_id) else old_p.mentor_id,
                    "reason": reason,
                    "new_mentor": mentors[mid].name if mid is not None else None,
                }
            )
            if not dry_run:
                old_p.status, old_p.reason, old_p.updated_at = "replaced", reason, utcnow()
                session.add(old_p)
                audit.record(
                    session,
                    actor=actor,
                    action="pairing.replaced",
                    subject_type="pairing",
                    subject_id=old_p.id,
                    reason=reason,
                    rotation_id=r.id,
                    mentor_id=old_p.mentor_id,
                    new_mentor_id=mid,
                )
        if mid is None:
            continue
        mentor = mentors[mid]
        taken = {s for (a, b, s) in taken_slots[mid] if a <= r.end and b >= r.start}
        slot = choose_checkin(
            r.start,
            r.end,
            mentor.timezone,
            e.timezone,
            minutes=mcfg.checkin_minutes,
            hours=tuple(mcfg.working_hours),
            taken=taken,
        )
        row = {
            "rotation_id": r.id,
            "rotator": e.name,
            "rotator_email": e.email,
            "mentor": mentor.name,
            "mentor_email": mentor.email,
            "start": r.start.isoformat(),
            "cost": sol.costs.get(r.id),
            "checkin": None,
            "pairing_id": None,
        }
        if slot is not None:
            p_tmp = MentorPairing(rotation_id=r.id, mentor_id=mid, checkin_weekday=slot[0], checkin_time_utc=slot[1])
            first = slot_local(r, p_tmp, mentor.timezone)
            taken_slots[mid].append((r.start, r.end, (first.weekday(), f"{first:%H:%M}")))
            row["checkin"] = f"{first:%a %H:%M} {first.tzinfo.key}"
        if not dry_run:
            sequence = earlier.get(r.id, 0)  # 0 for the first pairing of a rotation, then 1, 2, ...
            p = MentorPairing(
                rotation_id=r.id,
                mentor_id=mid,
                status="active",
                score=sol.costs.get(r.id),
                checkin_weekday=slot[0] if slot else None,
                checkin_time_utc=slot[1] if slot else None,
                sequence=sequence,
                reason=(f"replaces pairing {old[0].id}: {old[1]}" if old else None),
            )
            session.add(p)
            session.flush()
            row["pairing_id"] = p.id
            if old:
                audit.record(
                    session,
                    actor=actor,
                    action="pairing.created",
                    subject_type="pairing",
                    subject_id=p.id,
                    reason=p.reason,
                    rotation_id=r.id,
                    mentor_id=mid,
                    replaces=old[0].id,
                )
        result.created.append(row)
    if sol is not None:
        for u in sol.unmatched:
            r = rot_by_id[u.key]
            result.unmatched.append(
                {
                    "rotation_id": r.id,
                    "rotator": emp(r.employee_id).name,
                    "start": r.start.isoformat(),
                    "reason": u.reason,
                    "relaxation": u.relaxation,
                }
            )
    result.seconds = _time.perf_counter() - t0
    if not dry_run:
        audit.record(
            session,
            actor=actor,
            action="pairing.run",
            subject_type="horizon",
            subject_id=h0.isoformat(),
            **result.summary(),
        )
    return result


# --------------------------------------------------------------------------------------------------
# Load per mentor per week


def mentor_load(session: Session, policy: Policy, start: date, weeks: int) -> list[dict]:
    """Active pairings per mentor per week from Monday ``start``: one row per mentor with ``capacity``,
    ``total`` (pairings overlapping the period) and a count per week (``w<ISO week>`` keys, in order)."""
    start = monday(start)
    end = start + timedelta(weeks=weeks) - timedelta(days=1)
    support = session.exec(select(Department).where(Department.name == policy.support_department)).first()
    mentors = session.exec(
        select(Employee)
        .where(Employee.department_id == (support.id if support else -1), Employee.is_mentor == True)  # noqa: E712
        .order_by(Employee.name)
    ).all()
    rows = session.exec(
        select(MentorPairing, Rotation)
        .join(Rotation, Rotation.id == MentorPairing.rotation_id)
        .where(
            MentorPairing.status == "active",
            Rotation.status != "cancelled",
            Rotation.end >= start,
            Rotation.start <= end,
        )
    ).all()
    per: dict[int, dict[int, int]] = {}
    total: dict[int, int] = {}
    for p, r in rows:
        total[p.mentor_id] = total.get(p.mentor_id, 0) + 1
        for k in range(weeks):
            wk0 = start + timedelta(weeks=k)
            if r.start <= wk0 + timedelta(days=6) and r.end >= wk0:
                per.setdefault(p.mentor_id, {})[k] = per.setdefault(p.mentor_id, {}).get(k, 0) + 1
    out = []
    for m in mentors:
        row = {
            "mentor": m.name,
            "email": m.email,
            "capacity": m.mentor_capacity,
            "active": m.active,
            "total": total.get(m.id, 0),
        }
        for k in range(weeks):
            wk0 = start + timedelta(weeks=k)
            row[f"w{wk0.isocalendar().week:02d}"] = per.get(m.id, {}).get(k, 0)
        out.append(row)
    return out


# --------------------------------------------------------------------------------------------------
# Wrap-up surveys


def survey_due(session: Session, as_of: date) -> list[tuple[MentorPairing, Rotation]]:
    """Active pairings whose rotation is in its last week on ``as_of`` (or ended in the last 14 days)."""
    rows = session.exec(
        select(MentorPairing, Rotation)
        .join(Rotation, Rotation.id == MentorPairing.rotation_id)
        .where(
            MentorPairing.status == "active",
            Rotation.status != "cancelled",
            Rotation.end >= as_of - timedelta(days=14),
            Rotation.start <= as_of,
        )
        .order_by(MentorPairing.id)
    ).all()
    return [(p, r) for p, r in rows if as_of >= monday(r.end)]


def queue_surveys(session: Session, as_of: date | None = None, actor: str = "cli") -> dict[str, int]:
    """Queue the wrap-up survey for both sides of every pairing in its last week (idempotency key
    ``survey:<pairing>:<role>``, so re-running queues nothing twice)."""
    from frontline.core.links import survey_url
    from frontline.core.templating import render_html, render_text
    from frontline.mail import compose, enqueue

    as_of = as_of or clock.today()
    counts = {"due": 0, "queued": 0, "already": 0}
    for p, r in survey_due(session, as_of):
        rotator = session.get(Employee, r.employee_id)
        mentor = session.get(Employee, p.mentor_id)
        if rotator is None or mentor is None:
            continue
        for role, person, other in (("rotator", rotator, mentor), ("mentor", mentor, rotator)):
            if not person.active or (person.left_on is not None and person.left_on <= as_of):
                continue  # left the company: no mail to a departed address
            counts["due"] += 1
            ctx = {
                "person": person.name,
                "other": other.name,
                "role": role,
                "url": survey_url(p.id, role),
                "start": r.start,
                "end": r.end,
            }
            msg = compose(
                to=person.email,
                subject="How was your support rotation?" if role == "rotator" else f"How was mentoring {rotator.name}?",
                text=render_text("email/survey.txt", **ctx),
                html=render_html("email/survey.html", **ctx),
            )
            if enqueue(session, msg, kind="survey", idempotency_key=f"survey:{p.id}:{role}") is None:
                counts["already"] += 1
            else:
                counts["queued"] += 1
    if counts["queued"]:
        audit.record(
            session, actor=actor, action="survey.queued", subject_type="day", subject_id=as_of.isoformat(), **counts
        )
    return counts


def save_feedback(
    session: Session, pairing_id: int, role: str, rotation_usefulness: int, usefulness: int, comment: str | None
) -> PairingFeedback:
    """Store (or replace: the latest answer counts) one side's survey answer."""
    if role not in ("rotator", "mentor"):
        raise ValueError("role must be rotator or mentor")
    for name, value in (("rotation_usefulness", rotation_usefulness), ("usefulness", usefulness)):
        if not (isinstance(value, int) and 1 <= value <= 5):
            raise ValueError(f"{name} must be a whole number from 1 to 5")
    comment = (comment or "").strip()[:5000] or None
    row = session.exec(
        select(PairingFeedback).where(PairingFeedback.pairing_id == pairing_id, PairingFeedback.role == role)
    ).first()
    if row is None:
        row = PairingFeedback(
            pairing_id=pairing_id,
            role=role,
            rotation_usefulness=rotation_usefulness,
            usefulness=usefulness,
            comment=comment,
        )
    else:
        row.rotation_usefulness, row.usefulness, row.comment, row.updated_at = (
            rotation_usefulness,
            usefulness,
            comment,
            utcnow(),
        )
    session.add(row)
    session.flush()
    return row


# --------------------------------------------------------------------------------------------------
# For the plan export


def mentor_columns(session: Session, rotation_ids: list[int]) -> dict[int, dict[str, str]]:
    """``{rotation id: {"mentor_employee_id": ..., "mentor_email": ...}}`` from the active pairings
    (the HR system's ``Employee.employee_id``); rotations without a mentor are absent."""
    if not rotation_ids:
        return {}
    rows = session.exec(
        select(MentorPairing.rotation_id, Employee.employee_id, Employee.email)
        .join(Employee, Employee.id == MentorPairing.mentor_id)
        .where(MentorPairing.status == "active", MentorPairing.rotation_id.in_(list(rotation_ids)))
    ).all()
    return {rid: {"mentor_employee_id": eid, "mentor_email": email} for rid, eid, email in rows}
