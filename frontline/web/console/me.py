"""``/console/me``: a rotator's own rotations, mentor and observations (nobody else's)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlmodel import Session

from frontline.core.clock import aware, today
from frontline.core.links import observe_url
from frontline.observations.drafts import open_drafts
from frontline.observations.rotators import rotator_overview
from frontline.rotations.requests import KINDS, requests_for_rotations
from frontline.web.auth import ConsoleDenied, Principal, current_user, db, page, require_csrf

router = APIRouter(prefix="/console", dependencies=[Depends(require_csrf)], include_in_schema=False)


@router.get("/me")
def my_rotation(request: Request, user: Principal = Depends(current_user), session: Session = Depends(db)) -> Response:
    overview = rotator_overview(session, user.employee_id) if user.employee_id is not None else None
    if overview is None or user.employee_id is None:
        raise ConsoleDenied("Only employees have a rotation page.")
    return page(
        request,
        "web/console/me.html",
        me=overview.employee,
        rotations=overview.rotations,
        mentors=overview.mentors,
        observations=overview.observations,
        departments=overview.departments,
        aware=aware,
        requests=requests_for_rotations(session, [r.id for r in overview.rotations if r.id is not None]),
        askable_ids=[r.id for r in overview.rotations if r.status in ("draft", "invited") and r.start > today()],
        request_kinds=[(k, KINDS[k]) for k in ("another_week", "cannot_do")],
        drafts=open_drafts(session, user.employee_id),
        observe_link=observe_url(user.employee_id),
    )
