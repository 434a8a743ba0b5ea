"""``/console``: participation this cycle, overdue people, observations per week, acknowledged share,
and the rotators' and mentors' wrap-up feedback."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, date, datetime, time, timedelta

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlmodel import Session, select

from frontline.core.clock import iso_week, monday, today
from frontline.mentors.service import feedback_summary
from frontline.rotations.service import add_months
from frontline.web.auth import Principal, current_user, db, page, redirect, require_csrf
from frontline.web.console.common import policy, visible_departments
from models import Employee, Observation, Rotation

router = APIRouter(prefix="/console", dependencies=[Depends(require_csrf)], include_in_schema=False)

OBSERVATION_WEEKS = 12


def participation(session: Session, department_ids: list[int], pol, now: date) -> dict:
    """Who has rotated this cycle, who is scheduled, who is overdue, per department.

    *Rotated this cycle*: a rotation started within the last ``cycle_months`` (or the roster's
    ``last_rotation`` is that recent). *Overdue*: not rotated this cycle, not exempt, and either the
    planned rotation starts later than the week it was due, or nothing is planned although the person
    is past due (``last_rotation`` older than a cycle or never rotated, outside the new-hire window).
    """
    cycle_start = add_months(now, -pol.cycle_months)
    this_monday = monday(now)
    employees = session.exec(
        select(Employee).where(Employee.active.is_(True), Employee.department_id.in_(department_ids or [-1]))
    ).all()
    by_employee: dict[int, list[Rotation]] = defaultdict(list)
    rows = session.exec(
        select(Rotation)
        .join(Employee, Employee.id == Rotation.employee_id)
        .where(
            Rotation.status != "cancelled",
            Employee.active.is_(True),
            Employee.department_id.in_(department_ids or [-1]),
        )
    ).all()
    for r in rows:
        by_employee[r.employee_id].append(r)
    per_dept: dict[int, Counter] = defaultdict(Counter)
    overdue: list[dict] = []
    on_rotation: list[dict] = []
    rotated_people: list[dict] = []
    for e in employees:
        rots = by_employee.get(e.id, [])
        started = [r for r in rots if r.start <= now]
        rotated = any(r.start > cycle_start for r in started) or (
            e.last_rotation is not None and e.last_rotation > cycle_start
        )
        upcoming = sorted((r for r in rots if r.start > now), key=lambda r: r.start)
        current = next((r for r in rots if r.start <= now <= r.end), None)
        exempt = e.exempt_until is not None and e.exempt_until >= now
        c = per_dept[e.department_id]
        c["people"] += 1
        if current is not None:
            on_rotation.append({"employee": e, "rotation": current})
        if rotated:
            c["rotated"] += 1
            last = max([r.start for r in started] + ([e.last_rotation] if e.last_rotation else []))
            rotated_people.append({"employee": e, "when": last})
            continue
        if exempt:
            c["exempt"] += 1
            continue
        if upcoming:
            c["scheduled"] += 1
            nxt = upcoming[0]
            if nxt.due < this_monday:
                c["overdue"] += 1
                overdue.append(
                    {
                        "employee": e,
                        "due": nxt.due,
                        "planned": nxt.start,
                        "weeks_late": (this_monday - nxt.due).days // 7,
                    }
                )
            continue
        in_new_hire_window = e.hire_date + timedelta(weeks=pol.new_hire_within_weeks) > now
        past_due = e.last_rotation is None or e.last_rotation <= cycle_start
        if past_due and not in_new_hire_window:
            c["overdue"] += 1
            c["unplanned"] += 1
            due = add_months(e.last_rotation, pol.cycle_months) if e.last_rotation else None
            overdue.append(
                {
                    "employee": e,
                    "due": due,
                    "planned": None,
                    "weeks_late": ((this_monday - monday(due)).days // 7) if due else None,
                }
            )
        else:
            c["not_due"] += 1
    overdue.sort(key=lambda o: (o["planned"] is not None, -(o["weeks_late"] or 10**6), o["employee"].name))
    total = Counter()
    for c in per_dept.values():
        total.update(c)
    rotated_people.sort(key=lambda p: (p["employee"].department_id, p["employee"].name))
    return {
        "per_department": per_dept,
        "total": total,
        "overdue": overdue,
        "on_rotation": on_rotation,
        "rotated": rotated_people,
        "cycle_start": cycle_start,
    }


def observation_weeks(session: Session, department_ids: list[int] | None, now: date) -> dict:
    first = monday(now) - timedelta(weeks=OBSERVATION_WEEKS - 1)
    from frontline.core.settings import get_settings

    tz = get_settings().tz
    since = datetime.combine(first, time.min, tzinfo=tz)
    query = select(Observation.created_at, Observation.ack_state, Observation.urgent).where(
        Observation.created_at >= since
    )
    if department_ids is not None:
        query = query.where(Observation.target_department_id.in_(department_ids or [-1]))
    weeks = [iso_week(first + timedelta(weeks=i)) for i in range(OBSERVATION_WEEKS)]
    counts: Counter = Counter()
    acked: Counter = Counter()
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


@router.get("")
def dashboard(request: Request, user: Principal = Depends(current_user), session: Session = Depends(db)) -> Response:
    if not (user.is_hr or user.is_head):
        return redirect(request, "/console/me")
    pol = policy()
    now = today()
    departments = [d for d in visible_departments(session, user) if d.name != pol.support_department]
    part = participation(session, [d.id for d in departments], pol, now)
    obs = observation_weeks(session, None if user.is_hr else list(user.head_of), now)
    feedback = feedback_summary(session, None if user.is_hr else list(user.head_of))
    return page(
        request,
        "web/console/dashboard.html",
        departments=departments,
        part=part,
        obs=obs,
        feedback=feedback,
        today=now,
        policy=pol,
    )
