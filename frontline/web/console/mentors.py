"""``/console/mentors``: load per mentor per week against their capacity, the annual count against the
policy's cap, and the rotations in view that have no mentor yet. HR only."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlmodel import Session, select

from frontline.web.auth import Principal, db, page, require_csrf, require_hr
from frontline.web.console.common import iso_week, monday, parse_date, parse_int, policy, today
from models import Department, Employee, MentorPairing, Rotation

router = APIRouter(prefix="/console", dependencies=[Depends(require_csrf)], include_in_schema=False)


def mentor_load(session: Session, pol, start: date, weeks: int) -> dict:
    end = start + timedelta(weeks=weeks) - timedelta(days=1)
    support = session.exec(select(Department).where(Department.name == pol.support_department)).first()
    mentors = session.exec(
        select(Employee).where(Employee.is_mentor.is_(True), Employee.active.is_(True),
                               Employee.department_id == (support.id if support else -1))
        .order_by(Employee.name)
    ).all()
    pairs = session.exec(
        select(MentorPairing, Rotation).join(Rotation, Rotation.id == MentorPairing.rotation_id)
        .where(MentorPairing.status == "active", Rotation.status != "cancelled")
    ).all()
    load: dict[int, list[int]] = defaultdict(lambda: [0] * weeks)
    year_count: dict[int, int] = defaultdict(int)
    paired_rotations = set()
    for pairing, rotation in pairs:
        paired_rotations.add(rotation.id)
        if rotation.start.year == start.year:
            year_count[pairing.mentor_id] += 1
        if rotation.start > end or rotation.end < start:
            continue
        first = max(0, (rotation.start - start).days // 7)
        last = min(weeks - 1, (rotation.end - start).days // 7)
        for w in range(first, last + 1):
            load[pairing.mentor_id][w] += 1
    unpaired = session.exec(
        select(Rotation, Employee).join(Employee, Employee.id == Rotation.employee_id)
        .where(Rotation.status != "cancelled", Rotation.start <= end, Rotation.end >= start)
        .order_by(Rotation.start, Employee.name)
    ).all()
    unpaired = [(r, e) for r, e in unpaired if r.id not in paired_rotations]
    return {
        "weeks": [iso_week(start + timedelta(weeks=w)) for w in range(weeks)],
        "rows": [{"mentor": m, "load": load.get(m.id, [0] * weeks), "year": year_count.get(m.id, 0)} for m in mentors],
        "unpaired": unpaired,
        "annual_cap": pol.mentoring.annual_cap,
        "year": start.year,
    }


@router.get("/mentors")
def mentors_page(request: Request, start: str = "", weeks: str = "", user: Principal = Depends(require_hr),
                 session: Session = Depends(db)) -> Response:
    pol = policy()
    first = monday(parse_date(start, "start") or today())
    n_weeks = max(1, min(52, parse_int(weeks, "weeks") or 12))
    data = mentor_load(session, pol, first, n_weeks)
    return page(request, "web/console/mentors.html", data=data, f={"start": first.isoformat(), "weeks": n_weeks})
