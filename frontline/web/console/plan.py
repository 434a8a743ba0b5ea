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
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlmodel import Session

from frontline.core import clock
from frontline.core.clock import iso_week, monday
from frontline.core.policy import Policy
from frontline.people.directory import employees_by_external_id
from frontline.rotations import timeline
from frontline.rotations.queries import latest_applied_run
from frontline.rotations.solver import department_cap  # the solver's cap rule, so the plan draws what it used
from frontline.rotations.weeks import holidays_between, week_of, week_start
from frontline.web.auth import Principal, db, page, require_csrf, require_staff
from frontline.web.console.common import check_department, parse_date, parse_int, policy, visible_departments
from models import Absence, Department, Employee, Rotation

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
    department: Department
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


def _shown(rots: list[Rotation], status: str) -> bool:
    """The status filter: does a person with these rotations (in the window) get a row?"""
    if status in ("draft", "invited"):
        return any(r.status == status for r in rots)
    if status == "locked":
        return any(r.locked for r in rots)
    if status in ("new_hire", "cycle"):
        return any(r.kind == status for r in rots)
    if status == "unplanned":
        return not rots
    return True


def _rotation_bar(e: Employee, r: Rotation, start: date, days: int) -> Bar | None:
    span = _span(r.start, r.end, start, days)
    if span is None:
        return None
    kind = "new hire" if r.kind == "new_hire" else "cycle"
    state = r.status + (", locked" if r.locked else "")
    late = (r.start - r.due).days // 7
    title = f"{e.name}: {kind} rotation {r.start} – {r.end} ({state}); due {r.due}" + (
        f", {late} week(s) late" if late > 0 else ""
    )
    label = r.start.strftime("%d %b") + (" · locked" if r.locked else "")
    return Bar(span[0], span[1], rotation_css(r), title, f"/console/plan/rotations/{r.id}", label=label)


def _row(
    e: Employee, rots: list[Rotation], absences: list[Absence], start: date, days: int, counts: dict[str, int]
) -> Row:
    """One person's row: a bar per rotation (counted by status in ``counts``), hatching per absence."""
    row = Row(employee=e, exempt=e.exempt_until is not None and e.exempt_until >= start)
    for r in rots:
        bar = _rotation_bar(e, r, start, days)
        if bar is not None:
            row.bars.append(bar)
            counts[r.status] += 1
    for a in absences:
        span = _span(a.start, a.end, start, days)
        if span is not None:
            row.absences.append(Bar(span[0], span[1], "abs", f"away {a.start} – {a.end} {a.reason}".strip()))
    return row


def _groups(
    departments: list[Department], headcount: dict[int | None, int], loads: timeline.WeekLoads, pol: Policy, weeks: int
) -> dict[int | None, Group]:
    """A group per department shown, with its headcount, cap and people away per week."""
    groups: dict[int | None, Group] = {}
    for d in departments:
        fraction = d.max_away_fraction if d.max_away_fraction is not None else pol.max_department_away_fraction
        n = headcount.get(d.id, 0)
        groups[d.id] = Group(
            department=d, headcount=n, cap=department_cap(fraction, n), away=list(loads.away.get(d.id, [0] * weeks))
        )
    return groups


def _week_heads(pol: Policy, start: date, weeks: int) -> list[dict[str, Any]]:
    """A column head per week: ISO week, public holidays of the policy's country, whether a blackout touches it."""
    end = start + timedelta(days=weeks * 7 - 1)
    holidays_by_week: dict[int, list[str]] = defaultdict(list)
    for day, name in holidays_between(pol.holidays_country, start, end):
        holidays_by_week[week_of(start, day)].append(f"{day:%a %d %b}: {name}")
    heads = []
    for i in range(weeks):
        ws = week_start(start, i)
        heads.append(
            {
                "start": ws,
                "label": iso_week(ws),
                "holidays": holidays_by_week.get(i, []),
                "blackout": any(b.start <= ws + timedelta(days=6) and b.end >= ws for b in pol.blackouts),
            }
        )
    return heads


def _blackouts(pol: Policy, start: date, days: int) -> list[dict[str, Any]]:
    """The policy's blackouts as shaded bands (left and width in % of the plan)."""
    bands = []
    for b in pol.blackouts:
        span = _span(b.start, b.end, start, days)
        if span is not None:
            bands.append(
                {
                    "left": 100 * (span[0] - 1) / days,
                    "width": 100 * (span[1] - span[0]) / days,
                    "title": f"blackout {b.start} – {b.end} {b.reason}".strip(),
                }
            )
    return bands


def build_plan(
    session: Session, user: Principal, pol: Policy, *, start: date, weeks: int, department_id: int | None, status: str
) -> dict[str, Any]:
    """Everything the timeline draws. The seat load and the department load count every rotation in the
    horizon, whatever the filters show."""
    days = weeks * 7
    end = start + timedelta(days=days - 1)
    departments = [d for d in visible_departments(session, user) if d.name != pol.support_department]
    shown_depts = [d for d in departments if department_id is None or d.id == department_id]
    window = timeline.plan_window(session, [d.id for d in departments], start, end)
    shown_ids = {d.id for d in shown_depts}
    shown_employees = [e for e in window.employees if e.department_id in shown_ids]
    absences = timeline.absences_between(session, start, end) if shown_employees else {}
    by_employee = window.rotations_by_employee()
    loads = timeline.week_loads(window, weeks)
    groups = _groups(shown_depts, window.headcount(), loads, pol, weeks)
    counts: dict[str, int] = defaultdict(int)
    for e in shown_employees:
        rots = sorted(by_employee.get(e.id, []), key=lambda r: r.start)
        if _shown(rots, status):
            groups[e.department_id].rows.append(_row(e, rots, absences.get(e.id, []), start, days, counts))
    seats = pol.seats_per_week
    return {
        "start": start,
        "end": end,
        "weeks": weeks,
        "days": days,
        "week_heads": _week_heads(pol, start, weeks),
        "seat_load": [{"n": n, "pct": min(100, round(100 * n / seats)), "over": n > seats} for n in loads.seats],
        "seats": seats,
        "groups": [g for g in groups.values() if g.rows or status == "all"],
        "blackouts": _blackouts(pol, start, days),
        "departments": departments,
        "dept_by_id": {d.id: d for d in departments},
        "people": sum(len(g.rows) for g in groups.values()),
        "counts": dict(counts),
    }


def latest_unplaced(session: Session, user: Principal, departments: dict) -> dict | None:
    """The unplaced people of the latest applied plan run that ``user`` may see."""
    run = latest_applied_run(session)
    if run is None:
        return None
    keys = [str(u.get("employee_id") or u.get("key") or "") for u in run.unplaced]
    people = employees_by_external_id(session, keys)
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
    first = monday(parse_date(start, "start") or clock.today())
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
