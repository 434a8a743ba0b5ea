"""The console dashboard's figures: participation this cycle (who rotated, who is scheduled, who is
overdue, per department), observations per week and their acknowledged share, and the wrap-up feedback
(:func:`frontline.mentors.service.feedback_summary`).

:func:`dashboard_figures` is the one call the dashboard makes. The observation counts read the
observations table directly; they belong with the observations concept and can move there as they are.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlmodel import Session, col, select

from frontline.core.clock import add_months, iso_week, monday, org_tz
from frontline.core.policy import Policy
from frontline.rotations.weeks import weeks_late as late_by
from models import Employee, Observation, Rotation

OBSERVATION_WEEKS = 12


@dataclass
class DashboardFigures:
    participation: dict[str, Any]  # see participation()
    observations: dict[str, Any]  # see observation_weeks()
    feedback: dict[str, Any]  # see frontline.mentors.service.feedback_summary()


def dashboard_figures(
    session: Session,
    policy: Policy,
    department_ids: Collection[int | None],
    head_of: Collection[int] | None,
    today: date,
) -> DashboardFigures:
    """The figures for ``department_ids`` (participation) and, for a department head, the observations and
    feedback of ``head_of`` (None: HR, every department)."""
    from frontline.mentors.surveys import feedback_summary

    scope = None if head_of is None else list(head_of)
    return DashboardFigures(
        participation=participation(session, department_ids, policy, today),
        observations=observation_weeks(session, scope, today),
        feedback=feedback_summary(session, scope),
    )


# --------------------------------------------------------------------------------------------------
# Participation


def weeks_late(rotation: Rotation, policy: Policy) -> int:
    """Whole weeks a rotation starts after it was due (:func:`frontline.rotations.weeks.weeks_late`, the
    plan summary's rule). Measured to the planned start, so it does not grow by itself."""
    return late_by(rotation.start, rotation.due, rotation.kind == "new_hire", policy.new_hire_within_weeks)


@dataclass
class _Participation:
    """Sorts people into rotated / on rotation / exempt / scheduled / overdue / not due, per department."""

    today: date
    policy: Policy
    per_department: dict[int, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    overdue: list[dict[str, Any]] = field(default_factory=list)
    on_rotation: list[dict[str, Any]] = field(default_factory=list)
    rotated: list[dict[str, Any]] = field(default_factory=list)

    @property
    def cycle_start(self) -> date:
        return add_months(self.today, -self.policy.cycle_months)

    def add(self, e: Employee, rots: list[Rotation]) -> None:
        today, cycle_start = self.today, self.cycle_start
        started = [r for r in rots if r.start <= today]
        c = self.per_department[e.department_id]
        c["people"] += 1
        current = next((r for r in rots if r.start <= today <= r.end), None)
        upcoming = sorted((r for r in rots if r.start > today), key=lambda r: r.start)
        if current is not None:
            self.on_rotation.append({"employee": e, "rotation": current})
        if any(r.start > cycle_start for r in started) or (
            e.last_rotation is not None and e.last_rotation > cycle_start
        ):
            c["rotated"] += 1
            last = max([r.start for r in started] + ([e.last_rotation] if e.last_rotation else []))
            self.rotated.append({"employee": e, "when": last})
        elif e.exempt_until is not None and e.exempt_until >= today:
            c["exempt"] += 1
        elif upcoming:
            c["scheduled"] += 1
        else:
            self._unscheduled(e, c)
        if upcoming:  # whoever the plan starts after their due week is overdue, as the plan says
            self._scheduled(e, upcoming[0], c)

    def _scheduled(self, e: Employee, nxt: Rotation, c: Counter[str]) -> None:
        """Overdue when the planned rotation starts after the week it was due (a new hire: after the
        onboarding window), by the weeks from there to the planned start (not to today)."""
        late = weeks_late(nxt, self.policy)
        if late > 0:
            c["overdue"] += 1
            self.overdue.append({"employee": e, "due": nxt.due, "planned": nxt.start, "weeks_late": late})

    def _unscheduled(self, e: Employee, c: Counter[str]) -> None:
        """Overdue when past due (never rotated, or not for a cycle) and outside the new-hire window."""
        in_new_hire_window = e.hire_date + timedelta(weeks=self.policy.new_hire_within_weeks) > self.today
        past_due = e.last_rotation is None or e.last_rotation <= self.cycle_start
        if not past_due or in_new_hire_window:
            c["not_due"] += 1
            return
        c["overdue"] += 1
        c["unplanned"] += 1
        due = add_months(e.last_rotation, self.policy.cycle_months) if e.last_rotation else None
        weeks_late = ((monday(self.today) - monday(due)).days // 7) if due else None
        self.overdue.append({"employee": e, "due": due, "planned": None, "weeks_late": weeks_late})

    def figures(self) -> dict[str, Any]:
        self.overdue.sort(key=lambda o: (o["planned"] is not None, -(o["weeks_late"] or 10**6), o["employee"].name))
        self.rotated.sort(key=lambda p: (p["employee"].department_id, p["employee"].name))
        total: Counter[str] = Counter()
        for c in self.per_department.values():
            total.update(c)
        return {
            "per_department": self.per_department,
            "total": total,
            "overdue": self.overdue,
            "on_rotation": self.on_rotation,
            "rotated": self.rotated,
            "cycle_start": self.cycle_start,
        }


def participation(
    session: Session, department_ids: Collection[int | None], policy: Policy, today: date
) -> dict[str, Any]:
    """Who has rotated this cycle, who is scheduled, who is overdue, per department.

    *Rotated this cycle*: a rotation started within the last ``cycle_months`` (or the roster's
    ``last_rotation`` is that recent). *Overdue*, as the plan has it: the next planned rotation starts
    after the week it was due (a new hire: after the onboarding window; see :func:`weeks_late`, measured
    to the planned start), or nothing is planned although the person is past due (not rotated this
    cycle, not exempt, ``last_rotation`` older than a cycle or never rotated, outside the new-hire window).
    """
    ids = list(department_ids) or [-1]
    employees = session.exec(
        select(Employee).where(col(Employee.active).is_(True), col(Employee.department_id).in_(ids))
    ).all()
    by_employee: dict[int | None, list[Rotation]] = defaultdict(list)
    for r in session.exec(
        select(Rotation)
        .join(Employee, col(Employee.id) == col(Rotation.employee_id))
        .where(Rotation.status != "cancelled", col(Employee.active).is_(True), col(Employee.department_id).in_(ids))
    ).all():
        by_employee[r.employee_id].append(r)
    tally = _Participation(today, policy)
    for e in employees:
        tally.add(e, by_employee.get(e.id, []))
    return tally.figures()


# --------------------------------------------------------------------------------------------------
# Observations


def observation_weeks(session: Session, department_ids: list[int] | None, today: date) -> dict[str, Any]:
    """Observations per ISO week over the last ``OBSERVATION_WEEKS`` weeks (of ``department_ids``; None:
    all), how many were acknowledged, and the share of urgent ones acknowledged."""
    first = monday(today) - timedelta(weeks=OBSERVATION_WEEKS - 1)
    tz = org_tz()
    query = select(Observation.created_at, Observation.ack_state, Observation.urgent).where(
        col(Observation.created_at) >= datetime.combine(first, time.min, tzinfo=tz)
    )
    if department_ids is not None:
        query = query.where(col(Observation.target_department_id).in_(department_ids or [-1]))
    weeks = [iso_week(first + timedelta(weeks=i)) for i in range(OBSERVATION_WEEKS)]
    counts: Counter[str] = Counter()
    acked: Counter[str] = Counter()
    urgent = urgent_acked = 0
    for created_at, state, is_urgent in session.exec(query).all():
        if created_at.tzinfo is None:  # SQLite hands back naive UTC
            created_at = created_at.replace(tzinfo=UTC)
        week = iso_week(created_at.astimezone(tz).date())
        counts[week] += 1
        if state != "new":
            acked[week] += 1
        if is_urgent:
            urgent += 1
            urgent_acked += state != "new"
    total = sum(counts.values())
    peak = max(counts.values(), default=0)
    return {
        "weeks": [
            {"week": w, "count": counts[w], "acked": acked[w], "width": round(100 * counts[w] / peak) if peak else 0}
            for w in weeks
        ],
        "total": total,
        "acked_share": (sum(acked.values()) / total) if total else None,
        "urgent": urgent,
        "urgent_acked_share": (urgent_acked / urgent) if urgent else None,
    }
