"""``/console/mentors``: load per mentor per week against their capacity
(:func:`frontline.mentors.service.mentor_load`), the pairings in view (each links to its rotation, where HR
can re-pair the rotator) and the rotations in view that have no mentor yet
(:func:`frontline.mentors.service.pairings_in_view`). HR only."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlmodel import Session

from frontline.core.clock import iso_week, monday, today
from frontline.mentors import service as mentoring
from frontline.web.auth import Principal, db, page, require_csrf, require_hr
from frontline.web.console.common import parse_date, parse_int, policy

router = APIRouter(prefix="/console", dependencies=[Depends(require_csrf)], include_in_schema=False)

MAX_WEEKS = 26  # mentor_load keys weeks by ISO week number, unique within half a year


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
    last = first + timedelta(weeks=n_weeks) - timedelta(days=1)
    paired, unpaired = mentoring.pairings_in_view(session, first, last)
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
