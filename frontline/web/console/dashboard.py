"""``/console``: participation this cycle, overdue people, observations per week, acknowledged share,
and the rotators' and mentors' wrap-up feedback (the figures are :func:`frontline.rotations.dashboard.dashboard_figures`)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlmodel import Session

from frontline.core import clock
from frontline.rotations.dashboard import dashboard_figures
from frontline.web.auth import Principal, current_user, db, page, redirect, require_csrf
from frontline.web.console.common import policy, visible_departments

router = APIRouter(prefix="/console", dependencies=[Depends(require_csrf)], include_in_schema=False)


@router.get("")
def dashboard(request: Request, user: Principal = Depends(current_user), session: Session = Depends(db)) -> Response:
    if not (user.is_hr or user.is_head):
        return redirect(request, "/console/me")
    pol = policy()
    now = clock.today()
    departments = [d for d in visible_departments(session, user) if d.name != pol.support_department]
    figures = dashboard_figures(session, pol, [d.id for d in departments], None if user.is_hr else user.head_of, now)
    return page(
        request,
        "web/console/dashboard.html",
        departments=departments,
        part=figures.participation,
        obs=figures.observations,
        feedback=figures.feedback,
        today=now,
        policy=pol,
    )
