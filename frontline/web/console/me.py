"""``/console/me``: a rotator's own rotations, mentor and observations (nobody else's)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlmodel import Session, select

from frontline.core.clock import aware
from frontline.web.auth import ConsoleDenied, Principal, current_user, db, page, require_csrf
from models import Department, Employee, MentorPairing, Observation, Rotation

router = APIRouter(prefix="/console", dependencies=[Depends(require_csrf)], include_in_schema=False)


@router.get("/me")
def my_rotation(request: Request, user: Principal = Depends(current_user), session: Session = Depends(db)) -> Response:
    if user.employee_id is None:
        raise ConsoleDenied("Only employees have a rotation page.")
    me = session.get(Employee, user.employee_id)
    rotations = session.exec(
        select(Rotation).where(Rotation.employee_id == me.id, Rotation.status != "cancelled").order_by(Rotation.start)
    ).all()
    mentors = {}
    for r in rotations:
        pairing = session.exec(
            select(MentorPairing).where(MentorPairing.rotation_id == r.id, MentorPairing.status == "active")
        ).first()
        if pairing:
            mentors[r.id] = session.get(Employee, pairing.mentor_id)
    observations = session.exec(
        select(Observation).where(Observation.rotator_id == me.id).order_by(Observation.created_at.desc()).limit(200)
    ).all()
    departments = {d.id: d.name for d in session.exec(select(Department)).all()}
    return page(
        request,
        "web/console/me.html",
        me=me,
        rotations=rotations,
        mentors=mentors,
        observations=observations,
        departments=departments,
        aware=aware,
    )
