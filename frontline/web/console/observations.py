"""``/console/observations``: search and filter, themes, acknowledgement state, CSV export.

HR sees every observation; a department head only those addressed to their department(s) (asking for
another department's, by filter or by id, is a 403); a rotator only their own (on ``/console/me``).
The page and its CSV export read the query into one :class:`~frontline.observations.search.ObservationFilter`
(:func:`observation_filter`) and hand it to the same service.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from sqlmodel import Session

from frontline.core.clock import aware
from frontline.core.security import spreadsheet_safe
from frontline.observations import search
from frontline.observations.acknowledgement import ack_target, set_ack_state
from frontline.observations.intake import department_names
from frontline.observations.routing import RerouteError, reroute
from frontline.observations.vocabulary import ACK_STATES, STATES
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
from frontline.web.console.common import DbId, check_department, parse_int, policy, visible_departments
from models import Observation

router = APIRouter(prefix="/console", dependencies=[Depends(require_csrf)], include_in_schema=False)

PAGE_SIZE = 100
MAX_ROWS = 5000  # newest observations considered by one page view (the export is not limited)


@dataclass(frozen=True)
class FilterQuery:
    """The filter as the query string gave it (shown again in the page's form and links) and as the
    service applies it."""

    values: dict[str, str]
    filter: search.ObservationFilter


def observation_filter(
    q: str = "",
    department: str = "",
    area: str = "",
    category: str = "",
    state: str = "",
    urgent: str = "",
    user: Principal = Depends(require_staff),
) -> FilterQuery:
    """Parse the query into the filter, scoped to what ``user`` may see (a dependency of the page and
    of its CSV export). 403 for another department's, 400 for a bad value."""
    department_id = parse_int(department, "department")
    check_department(user, department_id)
    try:
        f = search.ObservationFilter(
            q=q.strip(),
            department_id=department_id,
            product_area=area,
            category=category,
            state=state,
            urgent=urgent in ("1", "yes", "true", "on"),
            visible_departments=None if user.is_hr else frozenset(user.head_of),
        )
    except ValueError as exc:
        raise ConsoleDenied(str(exc), status_code=400) from None
    values = {"q": q, "department": department, "area": area, "category": category, "state": state, "urgent": urgent}
    return FilterQuery(values, f)


@router.get("/observations")
def observations_page(
    request: Request,
    theme: str = "",
    page_no: str = "1",
    query: FilterQuery = Depends(observation_filter),
    user: Principal = Depends(require_staff),
    session: Session = Depends(db),
) -> Response:
    total = search.count_matching(session, query.filter)
    rows = search.newest_matching(session, query.filter, MAX_ROWS)
    labels = search.theme_labels(session, rows)

    def label(o: Observation) -> str:
        return labels.get(o.id, ("(no theme)", False))[0] if o.id is not None else "(no theme)"

    theme_counts = Counter(label(o) for o in rows)
    if theme:
        rows = [o for o in rows if label(o) == theme]
    page_number = max(1, parse_int(page_no, "page") or 1)
    shown = rows[(page_number - 1) * PAGE_SIZE : page_number * PAGE_SIZE]
    pol = policy()
    return page(
        request,
        "web/console/observations.html",
        rows=shown,
        total=total,
        considered=len(rows),
        labels=labels,
        theme_counts=theme_counts.most_common(15),
        departments=search.departments_by_id(session),
        visible=visible_departments(session, user),
        rotators=search.employees_by_id(session, (o.rotator_id for o in shown if o.rotator_id)),
        areas=pol.observations.product_areas,
        categories=pol.observations.categories,
        states=STATES,
        state_counts=Counter(o.ack_state for o in rows),
        page_number=page_number,
        pages=max(1, -(-len(rows) // PAGE_SIZE)),
        f={**query.values, "theme": theme},
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
def observations_csv(query: FilterQuery = Depends(observation_filter), session: Session = Depends(db)) -> Response:
    departments = {i: d.name for i, d in search.departments_by_id(session).items()}
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    for o, email in search.export_rows(session, query.filter):
        created = aware(o.created_at)
        acked = aware(o.ack_at)
        record = [
            o.id,
            created.isoformat() if created else "",
            departments.get(o.target_department_id, ""),
            o.product_area,
            o.category,
            o.impact,
            o.customer_count,
            "yes" if o.urgent else "no",
            o.theme or "",
            o.ack_state,
            o.ack_by or "",
            acked.isoformat() if acked else "",
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
    obs = search.find_observation(session, observation_id)
    if obs is None:
        raise ConsoleDenied("No such observation.", status_code=404)
    own = user.employee_id is not None and obs.rotator_id == user.employee_id
    if not (own or user.can_see_department(obs.target_department_id)):
        raise ConsoleDenied("This observation belongs to another department.")
    return obs


def can_acknowledge(user: Principal, obs: Observation) -> bool:
    return user.can_see_department(obs.target_department_id)


@router.get("/observations/{observation_id}")
def observation_detail(
    request: Request, observation_id: DbId, user: Principal = Depends(current_user), session: Session = Depends(db)
) -> Response:
    target = ack_target(session, _visible_observation(session, user, observation_id))
    return page(
        request,
        "web/console/observation.html",
        o=target.observation,
        rotator=target.rotator,
        department=target.department,
        states=STATES,
        can_ack=can_acknowledge(user, target.observation),
        departments=department_names(session),
        aware=aware,
    )


@router.post("/observations/{observation_id}/ack")
def observation_ack(
    request: Request,
    observation_id: DbId,
    state: str = Form(...),
    note: str = Form(""),
    user: Principal = Depends(current_user),
    session: Session = Depends(db),
) -> Response:
    obs = _visible_observation(session, user, observation_id)
    if not can_acknowledge(user, obs):
        raise ConsoleDenied("Only HR and the head of the department it is addressed to can acknowledge it.")
    if state not in ACK_STATES:
        raise ConsoleDenied(f"state: {state!r} is not one of {', '.join(ACK_STATES)}", status_code=400)
    set_ack_state(session, [observation_id], state, by=user.email, note=note)
    session.commit()
    return redirect(request, with_flash(f"/console/observations/{observation_id}", f"Marked as {state}"))


@router.post("/observations/{observation_id}/reroute")
def observation_reroute(
    request: Request,
    observation_id: DbId,
    department: str = Form(...),
    reason: str = Form(""),
    user: Principal = Depends(current_user),
    session: Session = Depends(db),
) -> Response:
    """ "Not ours -> Finance": HR or the head of the department it is addressed to sends it on; audited,
    and the router learns from it."""
    obs = _visible_observation(session, user, observation_id)
    if not can_acknowledge(user, obs):
        raise ConsoleDenied("Only HR and the head of the department it is addressed to can re-route it.")
    try:
        old = reroute(session, observation_id, department, actor=user.email, reason=reason.strip()[:500] or None)
    except RerouteError as exc:
        raise ConsoleDenied(str(exc), status_code=400) from None
    session.commit()
    return redirect(
        request, with_flash("/console/observations", f"Observation #{observation_id}: {old} → {department}")
    )
