"""``/console/mentors``: load per mentor per week against their capacity
(:func:`frontline.mentors.service.mentor_load`), the pairings in view (each links to its rotation, where HR
can re-pair the rotator) and the rotations in view that have no mentor yet. HR only."""

from __future__ import annotations

from datetime import date, timedelta

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlmodel import Session, select

from frontline.core.clock import iso_week, monday, today
from frontline.mentors import service as mentoring
from frontline.web.auth import Principal, db, page, require_csrf, require_hr
from frontline.web.console.common import parse_date, parse_int, policy
from models import Employee, MentorPairing, Rotation

router = APIRouter(prefix="/console", dependencies=[Depends(require_csrf)], include_in_schema=False)

MAX_WEEKS = 26  # mentor_load keys weeks by ISO week number, unique within half a year


def pairings_in_view(session: Session, start: date, end: date) -> tuple[list, list]:
    rows = session.exec(
        select(Rotation, Employee)
        .join(Employee, Employee.id == Rotation.employee_id)
        .where(Rotation.status != "cancelled", Rotation.start <= end, Rotation.end >= start)
        .order_by(Rotation.start, Employee.name)
    ).all()
    active = {
        p.rotation_id: p
        for p in session.exec(
            select(MentorPairing).where(
                MentorPairing.status == "active", MentorPairing.rotation_id.in_([r.id for r, _e in rows] or [-1])
            )
        ).all()
    }
    mentors = {
        e.id: e
        for e in session.exec(
            select(Employee).where(Employee.id.in_([p.mentor_id for p in active.values()] or [-1]))
        ).all()
    }
    paired = [(r, e, mentors.get(active[r.id].mentor_id)) for r, e in rows if r.id in active]
    unpaired = [(r, e) for r, e in rows if r.id not in active]
    return paired, unpaired


@router.get("/mentors")
def mentors_page(
    request: Request,
    start: str = "",
    weeks: str = "",
    user: Principal = Depends(require_hr),
    session: Session = Depends(db),
) -> Response:
    pol = policy()
    first = monday(parse_date(start, "start") or today())
    n_weeks = max(1, min(MAX_WEEKS, parse_int(weeks, "weeks") or 12))
    load = mentoring.mentor_load(session, pol, first, n_weeks)
    week_labels = [iso_week(first + timedelta(weeks=w)) for w in range(n_weeks)]
    week_keys = [f"w{(first + timedelta(weeks=w)).isocalendar().week:02d}" for w in range(n_weeks)]
    paired, unpaired = pairings_in_view(session, first, first + timedelta(weeks=n_weeks) - timedelta(days=1))
    return page(
        request,
        "web/console/mentors.html",
        load=load,
        week_labels=week_labels,
        week_keys=week_keys,
        paired=paired,
        unpaired=unpaired,
        annual_cap=pol.mentoring.annual_cap,
        f={"start": first.isoformat(), "weeks": n_weeks},
    )
