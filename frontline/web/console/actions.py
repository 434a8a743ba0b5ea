"""HR actions on the plan, each a POST with a confirmation page and a required reason, all audited:
move, swap, defer, exempt, lock, unlock (the planner's overrides in :mod:`frontline.rotations.service`), and
re-running the planner as a dry run that shows the changes before they are applied.

A first POST validates the change by performing it inside the request's transaction and rolling it
back, then shows what will happen; the confirmation POST (``confirm=yes``) performs it, commits, and
asks :func:`frontline.calendar.invites.process_invites` to queue the calendar update or cancellation for the
rotations it touched (nothing is queued for a draft nobody was told about yet).
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from sqlmodel import Session, select

from frontline.core import audit
from frontline.core.clock import monday, today
from frontline.web.auth import (
    ConsoleDenied,
    Principal,
    db,
    page,
    redirect,
    require_csrf,
    require_hr,
    require_staff,
    with_flash,
)
from frontline.web.console.common import check_department, optional, parse_date, parse_int, policy
from models import AuditEvent, Department, Employee, MentorPairing, PlanRun, Rotation, utcnow

router = APIRouter(prefix="/console", dependencies=[Depends(require_csrf)], include_in_schema=False)

ACTIONS = {
    "move": "Move",
    "swap": "Swap with another rotator",
    "defer": "Defer",
    "exempt": "Exempt the person",
    "lock": "Lock",
    "unlock": "Unlock",
    "repair": "Re-pair with another mentor",
}
MAX_REASON = 1000


def _planning():
    module = optional("frontline.rotations.service")
    if module is None:
        raise ConsoleDenied("The planner is not installed.", status_code=501)
    return module


def _rotation_context(session: Session, user: Principal, rotation_id: int) -> dict:
    rotation = session.get(Rotation, rotation_id)
    if rotation is None:
        raise ConsoleDenied("No such rotation.", status_code=404)
    employee = session.get(Employee, rotation.employee_id)
    check_department(user, employee.department_id)
    pairing = session.exec(
        select(MentorPairing).where(MentorPairing.rotation_id == rotation.id, MentorPairing.status == "active")
    ).first()
    history = session.exec(
        select(AuditEvent)
        .where(AuditEvent.subject_type == "rotation", AuditEvent.subject_id == str(rotation.id))
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .limit(50)
    ).all()
    return {
        "r": rotation,
        "employee": employee,
        "department": session.get(Department, employee.department_id),
        "mentor": session.get(Employee, pairing.mentor_id) if pairing else None,
        "history": history,
    }


def _detail(
    request: Request,
    session: Session,
    user: Principal,
    rotation_id: int,
    *,
    error: str | None = None,
    values: dict | None = None,
    status_code: int = 200,
) -> Response:
    ctx = _rotation_context(session, user, rotation_id)
    r = ctx["r"]
    return page(
        request,
        "web/console/rotation.html",
        status_code=status_code,
        error=error,
        v=values or {},
        actions=ACTIONS,
        can_act=user.is_hr and r.status not in ("cancelled", "done"),
        suggested_start=(r.start + timedelta(weeks=1)).isoformat(),
        **ctx,
    )


@router.get("/plan/rotations/{rotation_id}")
def rotation_page(
    request: Request, rotation_id: int, user: Principal = Depends(require_staff), session: Session = Depends(db)
) -> Response:
    return _detail(request, session, user, rotation_id)


def _perform(
    session: Session, pol, planning, action: str, rotation: Rotation, employee: Employee, values: dict, actor: str
) -> tuple[str, list[int]]:
    """Apply one override in the session; returns (what happened, rotation ids whose invites may change)."""
    reason = values["reason"]
    rid = rotation.id
    if action == "move":
        new_start = parse_date(values.get("new_start"), "new start")
        if new_start is None:
            raise planning.PlanningError("choose the new start date (a Monday)")
        old = rotation.start
        planning.move(session, pol, rid, new_start, reason, actor=actor)
        return f"{employee.name}: rotation moved from {old} to {new_start} and locked", [rid]
    if action == "swap":
        other_key = (values.get("other") or "").strip()
        if not other_key:
            raise planning.PlanningError("give the employee id or email of the rotator to swap with")
        other_emp = session.exec(
            select(Employee).where((Employee.employee_id == other_key) | (Employee.email == other_key.lower()))
        ).first()
        if other_emp is None:
            raise planning.PlanningError(f"no employee {other_key!r}")
        other = planning.upcoming_rotation(session, other_emp.employee_id)
        a_start, b_start = rotation.start, other.start
        planning.swap(session, pol, rid, other.id, reason, actor=actor)
        return (
            f"{employee.name} now starts {b_start}, {other_emp.name} now starts {a_start} (both locked)",
            [rid, other.id],
        )
    if action == "defer":
        weeks = parse_int(values.get("weeks"), "weeks")
        until = parse_date(values.get("until"), "until")
        old = rotation.start
        rot = planning.defer(session, pol, rid, weeks=weeks, until=until, reason=reason, actor=actor)
        return f"{employee.name}: rotation deferred from {old} to {rot.start} and locked", [rid]
    if action == "exempt":
        until = parse_date(values.get("until"), "until")
        if until is None:
            raise planning.PlanningError("choose the date the exemption ends")
        affected = list(
            session.exec(
                select(Rotation.id).where(
                    Rotation.employee_id == employee.id, Rotation.status.in_(["draft", "invited"])
                )
            ).all()
        )
        planning.exempt(session, employee.employee_id, until, reason, actor=actor, today=today())
        session.flush()
        remaining = set(session.exec(select(Rotation.id).where(Rotation.id.in_(affected or [-1]))).all())
        return f"{employee.name} is exempt until {until}; rotations inside it withdrawn", sorted(remaining)
    if action == "repair":
        return _repair(session, pol, planning, rotation, employee, reason, actor)
    if action in ("lock", "unlock"):
        getattr(planning, action)(session, rid, reason, actor=actor)
        return f"{employee.name}: rotation {action}ed", [rid]
    raise ConsoleDenied(f"Unknown action {action!r}.", status_code=404)


def _repair(
    session: Session, pol, planning, rotation: Rotation, employee: Employee, reason: str, actor: str
) -> tuple[str, list[int]]:
    """HR replaces the rotator's mentor: the active pairing is marked ``replaced`` (so that mentor is never
    proposed again for this person) and :func:`frontline.mentors.service.pair_mentors` picks the new one. Like
    the nightly job, that run also pairs any other rotation that still has no mentor."""
    from frontline.mentors import service as mentoring

    pairing = session.exec(
        select(MentorPairing).where(MentorPairing.rotation_id == rotation.id, MentorPairing.status == "active")
    ).first()
    if pairing is None:
        raise planning.PlanningError(f"{employee.name} has no mentor yet; the pairing job will pair them")
    old = session.get(Employee, pairing.mentor_id)
    pairing.status, pairing.reason, pairing.updated_at = "replaced", f"re-paired by HR: {reason}", utcnow()
    session.add(pairing)
    audit.record(
        session,
        actor=actor,
        action="pairing.replaced",
        subject_type="pairing",
        subject_id=pairing.id,
        reason=reason,
        rotation_id=rotation.id,
        mentor_id=pairing.mentor_id,
    )
    session.flush()
    result = mentoring.pair_mentors(session, pol, actor=actor)
    new = next((c for c in result.created if c["rotation_id"] == rotation.id), None)
    if new is None:
        why = next((u.get("reason") for u in result.unmatched if u.get("rotation_id") == rotation.id), None)
        raise planning.PlanningError(f"no other mentor fits {employee.name}" + (f": {why}" if why else ""))
    others = [c["rotation_id"] for c in result.created if c["rotation_id"] != rotation.id]
    summary = f"{employee.name}: mentor {old.name if old else '?'} replaced by {new['mentor']}"
    if others:
        summary += f" (the pairing run also paired {len(others)} other rotation(s) that had no mentor)"
    return summary, [rotation.id, *others]


def queue_invite_updates(session: Session, pol, rotation_ids: list[int]) -> int | None:
    """Queue calendar updates/cancellations for these rotations (None when invites are not installed)."""
    invites = optional("frontline.calendar.invites")
    if invites is None or not rotation_ids:
        return None
    counts = invites.process_invites(
        session,
        rotation_ids,
        as_of=today(),
        checkin_minutes=pol.mentoring.checkin_minutes,
        working_hours=tuple(pol.mentoring.working_hours),
    )
    return sum(getattr(counts, k, 0) for k in ("requests", "updates", "cancels"))


@router.post("/plan/rotations/{rotation_id}/{action}")
def rotation_action(
    request: Request,
    rotation_id: int,
    action: str,
    reason: str = Form(""),
    new_start: str = Form(""),
    other: str = Form(""),
    weeks: str = Form(""),
    until: str = Form(""),
    confirm: str = Form(""),
    user: Principal = Depends(require_hr),
    session: Session = Depends(db),
) -> Response:
    if action not in ACTIONS:
        raise ConsoleDenied(f"Unknown action {action!r}.", status_code=404)
    values = {
        "action": action,
        "reason": reason.strip()[:MAX_REASON],
        "new_start": new_start,
        "other": other,
        "weeks": weeks,
        "until": until,
    }
    if not values["reason"]:
        return _detail(
            request,
            session,
            user,
            rotation_id,
            values=values,
            status_code=400,
            error=f"{ACTIONS[action]}: a reason is required (it is kept in the audit trail).",
        )
    planning = _planning()
    pol = policy()
    ctx = _rotation_context(session, user, rotation_id)
    rotation, employee = ctx["r"], ctx["employee"]
    try:
        summary, touched = _perform(session, pol, planning, action, rotation, employee, values, user.email)
        session.flush()
    except (planning.PlanningError, ConsoleDenied) as exc:
        session.rollback()
        message = exc.message if isinstance(exc, ConsoleDenied) else str(exc)
        return _detail(
            request,
            session,
            user,
            rotation_id,
            values=values,
            status_code=400,
            error=f"{ACTIONS[action]} is not possible: {message}",
        )
    if confirm != "yes":
        session.rollback()  # a preview: nothing is written until the HR admin confirms
        return page(
            request,
            "web/console/confirm.html",
            title=ACTIONS[action],
            summary=summary,
            values=values,
            action_url=f"/console/plan/rotations/{rotation_id}/{action}",
            back_url=f"/console/plan/rotations/{rotation_id}",
            employee=employee,
        )
    queued = queue_invite_updates(session, pol, touched)
    session.commit()
    done = summary + (f". Calendar updates queued: {queued}" if queued is not None else "")
    target = f"/console/plan/rotations/{rotation_id}" if session.get(Rotation, rotation_id) else "/console/plan"
    return redirect(request, with_flash(target, done))


# ------------------------------------------------------------------------------- re-run (dry run)


@router.get("/plan/rerun")
def rerun_form(request: Request, user: Principal = Depends(require_hr)) -> Response:
    return page(
        request,
        "web/console/rerun.html",
        result=None,
        f={"start": monday(today()).isoformat(), "weeks": 52},
        error=None,
    )


def _horizon(start: str, weeks: str) -> tuple:
    first = monday(parse_date(start, "start") or today())
    n = parse_int(weeks, "weeks") or 52
    if not 1 <= n <= 104:
        raise ConsoleDenied("weeks: between 1 and 104.", status_code=400)
    return first, n


@router.post("/plan/rerun")
def rerun_dry(
    request: Request,
    start: str = Form(""),
    weeks: str = Form(""),
    user: Principal = Depends(require_hr),
    session: Session = Depends(db),
) -> Response:
    planning = _planning()
    first, n = _horizon(start, weeks)
    try:
        result = planning.plan_rotations(session, policy(), first, n, dry_run=True, actor=user.email)
    except planning.PlanningError as exc:
        session.rollback()
        return page(
            request,
            "web/console/rerun.html",
            status_code=400,
            result=None,
            error=str(exc),
            f={"start": first.isoformat(), "weeks": n},
        )
    session.commit()  # the dry run's PlanRun row (dry_run = true) records what was previewed
    names = {
        e.employee_id: e
        for e in session.exec(
            select(Employee).where(Employee.employee_id.in_([c["employee_id"] for c in result.changes] or ["-"]))
        ).all()
    }
    return page(
        request,
        "web/console/rerun.html",
        result=result,
        names=names,
        error=None,
        f={"start": first.isoformat(), "weeks": n},
    )


@router.post("/plan/rerun/apply")
def rerun_apply(
    request: Request,
    start: str = Form(""),
    weeks: str = Form(""),
    reason: str = Form(""),
    preview_run: str = Form(""),
    user: Principal = Depends(require_hr),
    session: Session = Depends(db),
) -> Response:
    planning = _planning()
    first, n = _horizon(start, weeks)
    reason = reason.strip()[:MAX_REASON]
    if not reason:
        raise ConsoleDenied("Applying a plan needs a reason (it is kept in the audit trail).", status_code=400)
    pol = policy()
    result = planning.plan_rotations(session, pol, first, n, dry_run=False, actor=user.email)
    audit.record(
        session,
        actor=user.email,
        action="console.plan_apply",
        subject_type="plan_run",
        subject_id=result.run_id,
        reason=reason,
        preview_run=preview_run or None,
        created=result.created,
        moved=result.moved,
        removed=result.removed,
    )
    session.flush()
    touched = list(
        session.exec(
            select(Rotation.id).where(
                Rotation.start <= first + timedelta(weeks=n),
                Rotation.end >= today(),
                Rotation.announced_state.is_not(None),
            )
        ).all()
    )
    queued = queue_invite_updates(session, pol, touched)
    session.commit()
    done = (
        f"Plan applied: {result.created} created, {result.moved} moved, {result.removed} removed, "
        f"{len(result.unplaced)} unplaced"
    )
    if preview_run:
        preview = session.get(PlanRun, parse_int(preview_run, "preview"))
        if preview is not None and (preview.summary or {}).get("changes") != result.changes[:500]:
            done += " (the data changed since the preview, so the changes differ from it)"
    if queued is not None:
        done += f". Calendar updates queued: {queued}"
    return redirect(request, with_flash("/console/plan", done))
