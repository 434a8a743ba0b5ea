"""``/console/plan``: the rotation plan as a timeline.

Weeks are columns (each week is seven day-columns, so absences show to the day), people are rows
grouped by department. Rotation bars are coloured by kind (new hire / cycle) and state (draft,
invited, locked); absences are hatched on the person's row, blackouts and public holidays shaded over
the whole plan. Above the people: the seat load per week against ``seats_per_week``, and per
department the number away against the department cap (``frontline.rotations.solver.department_cap``). Filters
(department, week range, status) are GET parameters. Below: the unplaced people of the latest plan run.

HR sees every department; a department head sees their own (read-only).
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

import holidays
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlmodel import Session, select

from frontline.core.clock import iso_week, monday, today
from frontline.rotations.solver import department_cap  # the solver's cap rule, so the plan draws what it used
from frontline.web.auth import Principal, db, page, require_csrf, require_staff
from frontline.web.console.common import check_department, parse_date, parse_int, policy, visible_departments
from models import Absence, Employee, PlanRun, Rotation

router = APIRouter(prefix="/console", dependencies=[Depends(require_csrf)], include_in_schema=False)

DEFAULT_WEEKS = 12
MAX_WEEKS = 52
STATUSES = ["all", "draft", "invited", "locked", "new_hire", "cycle", "unplanned"]


@dataclass
class Bar:
    col: int  # first day-column (1-based, grid-column start)
    span_end: int  # grid-column end (exclusive)
    css: str
    title: str
    href: str | None = None
    label: str = ""


@dataclass
class Row:
    employee: Employee
    bars: list[Bar] = field(default_factory=list)
    absences: list[Bar] = field(default_factory=list)
    exempt: bool = False


@dataclass
class Group:
    department: object
    headcount: int
    cap: int
    away: list[int]
    rows: list[Row] = field(default_factory=list)


def _span(start: date, end: date, horizon_start: date, days: int) -> tuple[int, int] | None:
    """Grid columns [a, b) of the days ``start..end`` (inclusive) clipped to the horizon; None if outside."""
    a = (start - horizon_start).days
    b = (end - horizon_start).days + 1
    a, b = max(a, 0), min(b, days)
    if a >= b:
        return None
    return a + 1, b + 1


def rotation_css(r: Rotation) -> str:
    css = ["rot", "new-hire" if r.kind == "new_hire" else "cycle", f"st-{r.status}"]
    if r.locked:
        css.append("locked")
    return " ".join(css)


def build_plan(
    session: Session, user: Principal, pol, *, start: date, weeks: int, department_id: int | None, status: str
) -> dict:
    days = weeks * 7
    end = start + timedelta(days=days - 1)
    departments = [d for d in visible_departments(session, user) if d.name != pol.support_department]
    dept_by_id = {d.id: d for d in departments}
    shown_depts = [d for d in departments if department_id is None or d.id == department_id]

    # Headcount of every department (caps depend on it) and everyone's rotations in the horizon:
    # the seat load and the department load count all of them, whatever the filter.
    employees = session.exec(
        select(Employee)
        .where(Employee.active.is_(True), Employee.department_id.in_([d.id for d in departments] or [-1]))
        .order_by(Employee.name, Employee.id)
    ).all()
    headcount: dict[int, int] = defaultdict(int)
    for e in employees:
        headcount[e.department_id] += 1
    all_rotations = session.exec(
        select(Rotation).where(Rotation.status != "cancelled", Rotation.start <= end, Rotation.end >= start)
    ).all()
    seat_load = [0] * weeks
    emp_dept = {e.id: e.department_id for e in employees}
    dept_away: dict[int, list[int]] = defaultdict(lambda: [0] * weeks)
    by_employee: dict[int, list[Rotation]] = defaultdict(list)
    for r in all_rotations:
        first = max(0, (r.start - start).days // 7)
        last = min(weeks - 1, (r.end - start).days // 7)
        for w in range(first, last + 1):
            seat_load[w] += 1
            if r.employee_id in emp_dept:
                dept_away[emp_dept[r.employee_id]][w] += 1
        by_employee[r.employee_id].append(r)

    shown_ids = {d.id for d in shown_depts}
    shown_employees = [e for e in employees if e.department_id in shown_ids]
    absences: dict[int, list[Absence]] = defaultdict(list)
    if shown_employees:
        for a in session.exec(select(Absence).where(Absence.start <= end, Absence.end >= start)).all():
            absences[a.employee_id].append(a)

    groups: dict[int, Group] = {}
    for d in shown_depts:
        fraction = d.max_away_fraction if d.max_away_fraction is not None else pol.max_department_away_fraction
        groups[d.id] = Group(
            department=d,
            headcount=headcount[d.id],
            cap=department_cap(fraction, headcount[d.id]),
            away=dept_away[d.id][:] if d.id in dept_away else [0] * weeks,
        )
    counts = defaultdict(int)
    for e in shown_employees:
        rots = sorted(by_employee.get(e.id, []), key=lambda r: r.start)
        if status in ("draft", "invited") and not any(r.status == status for r in rots):
            continue
        if status == "locked" and not any(r.locked for r in rots):
            continue
        if status in ("new_hire", "cycle") and not any(r.kind == status for r in rots):
            continue
        if status == "unplanned" and rots:
            continue
        row = Row(employee=e, exempt=e.exempt_until is not None and e.exempt_until >= start)
        for r in rots:
            span = _span(r.start, r.end, start, days)
            if span is None:
                continue
            kind = "new hire" if r.kind == "new_hire" else "cycle"
            state = r.status + (", locked" if r.locked else "")
            late = (r.start - r.due).days // 7
            title = f"{e.name}: {kind} rotation {r.start} – {r.end} ({state}); due {r.due}" + (
                f", {late} week(s) late" if late > 0 else ""
            )
            row.bars.append(
                Bar(
                    span[0],
                    span[1],
                    rotation_css(r),
                    title,
                    f"/console/plan/rotations/{r.id}",
                    label=r.start.strftime("%d %b") + (" · locked" if r.locked else ""),
                )
            )
            counts[r.status] += 1
        for a in absences.get(e.id, []):
            span = _span(a.start, a.end, start, days)
            if span is not None:
                row.absences.append(Bar(span[0], span[1], "abs", f"away {a.start} – {a.end} {a.reason}".strip()))
        groups[e.department_id].rows.append(row)

    week_starts = [start + timedelta(weeks=w) for w in range(weeks)]
    blackouts = []
    for b in pol.blackouts:
        span = _span(b.start, b.end, start, days)
        if span is not None:
            blackouts.append(
                {
                    "left": 100 * (span[0] - 1) / days,
                    "width": 100 * (span[1] - span[0]) / days,
                    "title": f"blackout {b.start} – {b.end} {b.reason}".strip(),
                }
            )
    holidays_by_week: dict[int, list[str]] = defaultdict(list)
    if pol.holidays_country:
        for day, name in sorted(
            holidays.country_holidays(pol.holidays_country, years=range(start.year, end.year + 1)).items()
        ):
            if start <= day <= end:
                holidays_by_week[(day - start).days // 7].append(f"{day:%a %d %b}: {name}")
    seats = pol.seats_per_week
    return {
        "start": start,
        "end": end,
        "weeks": weeks,
        "days": days,
        "week_heads": [
            {
                "start": ws,
                "label": iso_week(ws),
                "holidays": holidays_by_week.get(i, []),
                "blackout": any(b.start <= ws + timedelta(days=6) and b.end >= ws for b in pol.blackouts),
            }
            for i, ws in enumerate(week_starts)
        ],
        "seat_load": [{"n": n, "pct": min(100, round(100 * n / seats)), "over": n > seats} for n in seat_load],
        "seats": seats,
        "groups": [g for g in groups.values() if g.rows or status == "all"],
        "blackouts": blackouts,
        "departments": departments,
        "dept_by_id": dept_by_id,
        "people": sum(len(g.rows) for g in groups.values()),
        "counts": dict(counts),
    }


def latest_unplaced(session: Session, user: Principal, departments: dict) -> dict | None:
    run = session.exec(
        select(PlanRun).where(PlanRun.dry_run.is_(False)).order_by(PlanRun.started_at.desc(), PlanRun.id.desc())
    ).first()
    if run is None:
        return None
    keys = [str(u.get("employee_id") or u.get("key") or "") for u in run.unplaced]
    people = {}
    if keys:
        people = {e.employee_id: e for e in session.exec(select(Employee).where(Employee.employee_id.in_(keys))).all()}
    items = []
    for u, key in zip(run.unplaced, keys, strict=True):
        e = people.get(key)
        if e is not None and not user.can_see_department(e.department_id):
            continue
        if e is None and not user.is_hr:
            continue
        items.append(
            {
                "key": key,
                "employee": e,
                "department": departments.get(e.department_id) if e else None,
                "code": u.get("code", ""),
                "reason": u.get("reason", ""),
            }
        )
    return {"run": run, "items": items}


@router.get("/plan")
def plan_page(
    request: Request,
    department: str = "",
    start: str = "",
    weeks: str = "",
    status: str = "all",
    user: Principal = Depends(require_staff),
    session: Session = Depends(db),
) -> Response:
    t0 = time.perf_counter()
    pol = policy()
    dept_id = parse_int(department, "department")
    if dept_id is None and not user.is_hr:
        dept_id = min(user.head_of)  # a head sees their own department
    check_department(user, dept_id)
    first = monday(parse_date(start, "start") or today())
    n_weeks = max(1, min(MAX_WEEKS, parse_int(weeks, "weeks") or DEFAULT_WEEKS))
    if status not in STATUSES:
        status = "all"
    plan = build_plan(session, user, pol, start=first, weeks=n_weeks, department_id=dept_id, status=status)
    unplaced = latest_unplaced(session, user, plan["dept_by_id"])
    query_seconds = time.perf_counter() - t0
    response = page(
        request,
        "web/console/plan.html",
        plan=plan,
        unplaced=unplaced,
        statuses=STATUSES,
        f={
            "department": "" if dept_id is None else str(dept_id),
            "start": first.isoformat(),
            "weeks": n_weeks,
            "status": status,
        },
        prev_start=(first - timedelta(weeks=n_weeks)).isoformat(),
        next_start=(first + timedelta(weeks=n_weeks)).isoformat(),
        query_ms=round(1000 * query_seconds),
        can_act=user.is_hr,
    )
    total = time.perf_counter() - t0
    response.headers["Server-Timing"] = f"query;dur={1000 * query_seconds:.1f}, total;dur={1000 * total:.1f}"
    return response
