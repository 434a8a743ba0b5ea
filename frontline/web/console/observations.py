"""``/console/observations``: search and filter, themes, acknowledgement state, CSV export.

HR sees every observation; a department head only those addressed to their department(s) (asking for
another department's, by filter or by id, is a 403); a rotator only their own (on ``/console/me``).
"""

from __future__ import annotations

import csv
import io
from collections import Counter

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from sqlalchemy import or_
from sqlmodel import Session, func, select

from frontline.core.clock import aware
from frontline.core.security import spreadsheet_safe
from frontline.web.auth import (
    ConsoleDenied,
    Principal,
    current_user,
    db,
    page,
    redirect,
    require_csrf,
    require_staff,
    with_flash,
)
from frontline.web.console.common import check_department, optional, parse_int, policy, visible_departments
from models import Department, Employee, Observation

router = APIRouter(prefix="/console", dependencies=[Depends(require_csrf)], include_in_schema=False)

PAGE_SIZE = 100
MAX_ROWS = 5000  # newest observations considered by one page view (the export is not limited)
MAX_COMPUTED_THEMES = 2000
ACK_STATES = ["new", "acknowledged", "planned", "fixed", "wont_fix"]


def _filters(
    user: Principal,
    q: str,
    department: int | None,
    area: str,
    category: str,
    state: str,
    urgent: str,
    rotator_id: int | None = None,
) -> list:
    check_department(user, department)
    where = []
    if rotator_id is not None:
        where.append(Observation.rotator_id == rotator_id)
    elif not user.is_hr:
        where.append(Observation.target_department_id.in_(list(user.head_of) or [-1]))
    if department is not None:
        where.append(Observation.target_department_id == department)
    if q:
        needle = f"%{q.lower()}%"
        where.append(
            or_(
                func.lower(Observation.text).like(needle),
                func.lower(Observation.suggestion).like(needle),
                func.lower(Observation.theme).like(needle),
            )
        )
    if area:
        where.append(Observation.product_area == area)
    if category:
        where.append(Observation.category == category)
    if state:
        if state not in ACK_STATES:
            raise ConsoleDenied(f"state: {state!r} is not one of {', '.join(ACK_STATES)}", status_code=400)
        where.append(Observation.ack_state == state)
    if urgent in ("1", "yes", "true", "on"):
        where.append(Observation.urgent.is_(True))
    return where


def themed(rows: list[Observation]) -> dict[int, tuple[str, bool]]:
    """``{observation id: (theme label, computed_now)}``: the stored theme, else one computed now with
    :func:`frontline.digests.themes.find_themes` over the rows that have none (bounded)."""
    labels: dict[int, tuple[str, bool]] = {o.id: (o.theme, False) for o in rows if o.theme}
    missing = [o for o in rows if not o.theme][:MAX_COMPUTED_THEMES]
    themes = optional("frontline.digests.themes")
    if missing and themes is not None:
        found = themes.find_themes(
            themes.ThemeInput(id=o.id, text=o.text, product_area=o.product_area, category=o.category) for o in missing
        )
        for oid, label in themes.theme_of(found).items():
            labels[oid] = (label, True)
    return labels


@router.get("/observations")
def observations_page(
    request: Request,
    q: str = "",
    department: str = "",
    area: str = "",
    category: str = "",
    state: str = "",
    urgent: str = "",
    theme: str = "",
    page_no: str = "1",
    user: Principal = Depends(require_staff),
    session: Session = Depends(db),
) -> Response:
    dept_id = parse_int(department, "department")
    where = _filters(user, q.strip(), dept_id, area, category, state, urgent)
    total = session.exec(select(func.count()).select_from(Observation).where(*where)).one()
    rows = list(
        session.exec(
            select(Observation)
            .where(*where)
            .order_by(Observation.created_at.desc(), Observation.id.desc())
            .limit(MAX_ROWS)
        ).all()
    )
    labels = themed(rows)
    theme_counts = Counter(labels.get(o.id, ("(no theme)", False))[0] for o in rows)
    if theme:
        rows = [o for o in rows if labels.get(o.id, ("(no theme)", False))[0] == theme]
    page_number = max(1, parse_int(page_no, "page") or 1)
    shown = rows[(page_number - 1) * PAGE_SIZE : page_number * PAGE_SIZE]
    departments = {d.id: d for d in session.exec(select(Department)).all()}
    rotators = {}
    ids = {o.rotator_id for o in shown if o.rotator_id}
    if ids:
        rotators = {e.id: e for e in session.exec(select(Employee).where(Employee.id.in_(ids))).all()}
    pol = policy()
    state_counts = Counter(o.ack_state for o in rows)
    return page(
        request,
        "web/console/observations.html",
        rows=shown,
        total=total,
        considered=len(rows),
        labels=labels,
        theme_counts=theme_counts.most_common(15),
        departments=departments,
        visible=visible_departments(session, user),
        rotators=rotators,
        areas=pol.observations.product_areas,
        categories=pol.observations.categories,
        states=ACK_STATES,
        state_counts=state_counts,
        page_number=page_number,
        pages=max(1, -(-len(rows) // PAGE_SIZE)),
        f={
            "q": q,
            "department": department,
            "area": area,
            "category": category,
            "state": state,
            "urgent": urgent,
            "theme": theme,
        },
        aware=aware,
    )


EXPORT_COLUMNS = [
    "id",
    "created_at",
    "department",
    "product_area",
    "category",
    "impact",
    "customer_count",
    "urgent",
    "theme",
    "ack_state",
    "ack_by",
    "ack_at",
    "rotator",
    "text",
    "suggestion",
]


@router.get("/observations.csv")
def observations_csv(
    q: str = "",
    department: str = "",
    area: str = "",
    category: str = "",
    state: str = "",
    urgent: str = "",
    user: Principal = Depends(require_staff),
    session: Session = Depends(db),
) -> Response:
    where = _filters(user, q.strip(), parse_int(department, "department"), area, category, state, urgent)
    departments = {d.id: d.name for d in session.exec(select(Department)).all()}
    rows = session.exec(
        select(Observation, Employee.email)
        .outerjoin(Employee, Employee.id == Observation.rotator_id)
        .where(*where)
        .order_by(Observation.created_at, Observation.id)
    ).all()
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    for o, email in rows:
        record = [
            o.id,
            aware(o.created_at).isoformat(),
            departments.get(o.target_department_id, ""),
            o.product_area,
            o.category,
            o.impact,
            o.customer_count,
            "yes" if o.urgent else "no",
            o.theme or "",
            o.ack_state,
            o.ack_by or "",
            aware(o.ack_at).isoformat() if o.ack_at else "",
            email or "",
            o.text,
            o.suggestion or "",
        ]
        writer.writerow([spreadsheet_safe(v) for v in record])
    return Response(
        buf.getvalue().encode("utf-8-sig"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="observations.csv"', "Cache-Control": "no-store"},
    )


def _visible_observation(session: Session, user: Principal, observation_id: int) -> Observation:
    obs = session.get(Observation, observation_id)
    if obs is None:
        raise ConsoleDenied("No such observation.", status_code=404)
    own = user.employee_id is not None and obs.rotator_id == user.employee_id
    if not (own or user.can_see_department(obs.target_department_id)):
        raise ConsoleDenied("This observation belongs to another department.")
    return obs


def can_acknowledge(user: Principal, obs: Observation) -> bool:
    return user.can_see_department(obs.target_department_id) and optional("frontline.observations.intake") is not None


@router.get("/observations/{observation_id}")
def observation_detail(
    request: Request, observation_id: int, user: Principal = Depends(current_user), session: Session = Depends(db)
) -> Response:
    obs = _visible_observation(session, user, observation_id)
    rotator = session.get(Employee, obs.rotator_id) if obs.rotator_id else None
    department = session.get(Department, obs.target_department_id)
    return page(
        request,
        "web/console/observation.html",
        o=obs,
        rotator=rotator,
        department=department,
        states=ACK_STATES,
        can_ack=can_acknowledge(user, obs),
        aware=aware,
    )


@router.post("/observations/{observation_id}/ack")
def observation_ack(
    request: Request,
    observation_id: int,
    state: str = Form(...),
    note: str = Form(""),
    user: Principal = Depends(current_user),
    session: Session = Depends(db),
) -> Response:
    obs = _visible_observation(session, user, observation_id)
    if not can_acknowledge(user, obs):
        raise ConsoleDenied("Only HR and the head of the department it is addressed to can acknowledge it.")
    if state not in ACK_STATES[1:]:
        raise ConsoleDenied(f"state: {state!r} is not one of {', '.join(ACK_STATES[1:])}", status_code=400)
    module = optional("frontline.observations.intake")
    module.set_ack_state(session, [obs.id], state, by=user.email, note=note)
    session.commit()
    return redirect(request, with_flash(f"/console/observations/{obs.id}", f"Marked as {state}"))
