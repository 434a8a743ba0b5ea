"""``/console/mentors``: load per mentor per week against their capacity
(:func:`frontline.mentors.service.mentor_load`), the pairings in view (each links to its rotation, where HR
can re-pair the rotator) and the rotations in view that have no mentor yet
(:func:`frontline.mentors.service.pairings_in_view`) with the reason and the relaxation that would help,
and the proposals waiting for HR's review (policy ``mentoring.review``), each approved or rejected here
(:mod:`frontline.mentors.review`). HR only."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from sqlmodel import Session

from frontline.core.clock import iso_week, monday, today
from frontline.core.errors import PlanningError
from frontline.mentors import review
from frontline.mentors import service as mentoring
from frontline.web.auth import ConsoleDenied, Principal, db, page, redirect, require_csrf, require_hr, with_flash
from frontline.web.console.common import DbId, parse_date, parse_int, policy

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
    gaps = mentoring.gaps_for(session, [r.id for r, _e in unpaired if r.id is not None])
    held = mentoring.proposed_rotation_ids(session, [r.id for r, _e in unpaired if r.id is not None])
    answers = mentoring.mentor_answers(session, [r.id for r, _e, _m in paired if r.id is not None])
    return page(
        request,
        "web/console/mentors.html",
        load=load,
        week_labels=week_labels,
        week_keys=week_keys,
        paired=paired,
        unpaired=unpaired,
        gaps=gaps,
        held=held,
        answers=answers,
        proposals=review.proposals(session),
        review_on=pol.mentoring.review,
        annual_cap=pol.mentoring.annual_cap,
        f={"start": first.isoformat(), "weeks": n_weeks},
    )


MAX_REASON = 1000


@router.post("/mentors/proposals/{pairing_id}/{decision}")
def review_proposal(
    request: Request,
    pairing_id: DbId,
    decision: str,
    reason: str = Form(""),
    user: Principal = Depends(require_hr),
    session: Session = Depends(db),
) -> Response:
    """Approve (the pairing becomes active; the next invites run tells both sides) or reject (with a
    reason; the rotation alone is paired again) one proposal."""
    if decision not in ("approve", "reject"):
        raise ConsoleDenied(f"Unknown decision {decision!r}.", status_code=404)
    reason = reason.strip()[:MAX_REASON]
    try:
        if decision == "approve":
            p = review.approve_proposal(session, pairing_id, user.email, reason or None)
            done = f"Pairing {p.id} approved; the next invites run tells both sides."
        else:
            result = review.reject_proposal(session, policy(), pairing_id, reason, user.email)
            done = f"Pairing {pairing_id} rejected."
            if result.created:
                done += f" New proposal: {result.created[0]['mentor']}."
            elif result.unmatched:
                done += f" No other mentor fits: {result.unmatched[0]['reason']}."
    except PlanningError as exc:
        session.rollback()
        raise ConsoleDenied(f"Cannot {decision} pairing {pairing_id}: {exc}", status_code=400) from None
    session.commit()
    return redirect(request, with_flash("/console/mentors", done))
