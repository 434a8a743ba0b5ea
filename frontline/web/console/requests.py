"""Change requests in the console (:mod:`frontline.rotations.requests`):

* ``/console/requests``: HR's queue (pending first, then the latest decisions); approve (optionally with
  another week) or decline (with a note the requester reads).
* ``/console/me/rotations/<id>/request``: a rotator asks from ``/console/me`` (another week, or they
  cannot do it).
* ``/console/plan/rotations/<id>/request``: a department head asks to move one of their people.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from sqlmodel import Session

from frontline.core import clock
from frontline.core.errors import PlanningError
from frontline.rotations import requests as change_requests
from frontline.web.auth import (
    ConsoleDenied,
    Principal,
    current_user,
    db,
    page,
    redirect,
    require_csrf,
    require_hr,
    require_staff,
    with_flash,
)
from frontline.web.console.common import DbId, parse_date, policy

router = APIRouter(prefix="/console", dependencies=[Depends(require_csrf)], include_in_schema=False)

MAX_NOTE = 1000


@router.get("/requests")
def requests_page(request: Request, user: Principal = Depends(require_hr), session: Session = Depends(db)) -> Response:
    return page(
        request,
        "web/console/requests.html",
        pending=change_requests.list_requests(session, "pending"),
        decided=[r for r in change_requests.list_requests(session, None, limit=50) if r.request.status != "pending"],
        kinds=change_requests.KINDS,
        auto=policy().requests.auto_approve,
    )


@router.post("/requests/{request_id}/{decision}")
def decide(
    request: Request,
    request_id: DbId,
    decision: str,
    week: str = Form(""),
    note: str = Form(""),
    user: Principal = Depends(require_hr),
    session: Session = Depends(db),
) -> Response:
    if decision not in ("approve", "decline"):
        raise ConsoleDenied(f"Unknown decision {decision!r}.", status_code=404)
    note = note.strip()[:MAX_NOTE]
    try:
        if decision == "approve":
            day = parse_date(week, "week")
            req = change_requests.approve(session, policy(), request_id, user.email, week=day, note=note)
            done = f"Request {req.id} approved: {req.outcome} The requester is told by mail; the next invites run sends the update."
        else:
            req = change_requests.decline(session, request_id, user.email, note)
            done = f"Request {req.id} declined; the requester is told by mail."
    except PlanningError as exc:
        session.rollback()
        return redirect(request, with_flash("/console/requests", f"Request {request_id} not {decision}d: {exc}"))
    session.commit()
    return redirect(request, with_flash("/console/requests", done))


def _ask(
    request: Request,
    session: Session,
    user: Principal,
    rotation_id: int,
    role: str,
    kind: str,
    reason: str,
    weeks: list[str],
    back: str,
) -> Response:
    if not change_requests.may_request(session, rotation_id, user.email, role):
        raise ConsoleDenied("You can only ask about your own rotation or one of your department's.")
    try:
        req = change_requests.submit(
            session,
            policy(),
            rotation_id,
            kind=kind,
            requester_email=user.email,
            requester_role=role,
            reason=reason,
            preferred_weeks=change_requests.parse_weeks(weeks[:3], clock.today()),
        )
    except PlanningError as exc:
        session.rollback()
        return redirect(request, with_flash(back, f"Request not sent: {exc}"))
    session.commit()
    told = "approved at once (it fits every rule)" if req.status == "approved" else "sent to HR"
    return redirect(request, with_flash(back, f"Request {req.id} {told}; the answer comes by mail."))


@router.post("/me/rotations/{rotation_id}/request")
def rotator_request(
    request: Request,
    rotation_id: DbId,
    kind: str = Form(""),
    reason: str = Form(""),
    week: list[str] = Form(default_factory=list),
    user: Principal = Depends(current_user),
    session: Session = Depends(db),
) -> Response:
    if kind not in ("another_week", "cannot_do"):
        raise ConsoleDenied("Choose another week or that you cannot do the rotation.", status_code=400)
    return _ask(request, session, user, rotation_id, "rotator", kind, reason, week, "/console/me")


@router.post("/plan/rotations/{rotation_id}/request")
def head_request(
    request: Request,
    rotation_id: DbId,
    reason: str = Form(""),
    week: list[str] = Form(default_factory=list),
    user: Principal = Depends(require_staff),
    session: Session = Depends(db),
) -> Response:
    return _ask(
        request, session, user, rotation_id, "head", "move", reason, week, f"/console/plan/rotations/{rotation_id}"
    )
