"""HR actions on the plan, each a POST with a confirmation page and a required reason, all audited:
move, swap, defer, exempt, lock, unlock, re-pair (the overrides in :mod:`frontline.rotations.overrides`), and
re-running the planner (:func:`frontline.rotations.service.plan_rotations`) as a dry run that shows the
changes before they are applied.

A first POST validates the change by performing it inside the request's transaction and rolling it
back, then shows what will happen; the confirmation POST (``confirm=yes``) performs it, commits, and
asks :func:`frontline.calendar.invites.process_invites` to queue the calendar update or cancellation for the
rotations it touched (nothing is queued for a draft nobody was told about yet).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from sqlmodel import Session

from frontline.calendar import replies
from frontline.core import audit, clock
from frontline.core.clock import monday
from frontline.core.errors import OverrideRefused, PlanningError
from frontline.core.policy import Policy
from frontline.mentors import review
from frontline.people.directory import employee_by_id_or_email, employees_by_external_id
from frontline.rotations import overrides, queries
from frontline.rotations import requests as change_requests
from frontline.rotations.service import plan_rotations
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
from frontline.web.console.common import DbId, check_department, optional, parse_date, parse_int, policy
from models import Employee, Rotation

router = APIRouter(prefix="/console", dependencies=[Depends(require_csrf)], include_in_schema=False)

ACTIONS = {
    "move": "Move",
    "swap": "Swap with another rotator",
    "defer": "Defer",
    "exempt": "Exempt the person",
    "lock": "Lock",
    "unlock": "Unlock",
    "repair": "Re-pair with another mentor",
    "mentor": "Choose the mentor",
}
MAX_REASON = 1000


def _rotation_context(session: Session, user: Principal, rotation_id: int) -> dict[str, Any]:
    details = queries.rotation_details(session, rotation_id)
    if details is None:
        raise ConsoleDenied("No such rotation.", status_code=404)
    check_department(user, details.employee.department_id)
    return {
        "r": details.rotation,
        "employee": details.employee,
        "department": details.department,
        "mentor": details.mentor,
        "history": details.history,
        "answer": replies.answers(session, [rotation_id]).get(rotation_id),
    }


def _detail(
    request: Request,
    session: Session,
    user: Principal,
    rotation_id: int,
    *,
    error: str | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
    refused: OverrideRefused | None = None,
) -> Response:
    ctx = _rotation_context(session, user, rotation_id)
    r = ctx["r"]
    return page(
        request,
        "web/console/rotation.html",
        status_code=status_code,
        error=error,
        refused=refused,
        v=values or {},
        actions=ACTIONS,
        can_act=user.is_hr and r.status not in ("cancelled", "done"),
        can_ask=(
            not user.is_hr
            and r.status in ("draft", "invited")
            and r.start > clock.today()
            and ctx["employee"].department_id in user.head_of
        ),
        pending_request=change_requests.pending_request(session, rotation_id),
        suggested_start=(r.start + timedelta(weeks=1)).isoformat(),
        **ctx,
    )


@router.get("/plan/rotations/{rotation_id}")
def rotation_page(
    request: Request, rotation_id: DbId, user: Principal = Depends(require_staff), session: Session = Depends(db)
) -> Response:
    return _detail(request, session, user, rotation_id)


def _perform(
    session: Session,
    pol: Policy,
    action: str,
    rotation: Rotation,
    employee: Employee,
    values: dict[str, str],
    actor: str,
) -> tuple[str, list[int]]:
    """Apply one override in the session; returns (what happened, rotation ids whose invites may change)."""
    reason = values["reason"]
    rid = rotation.id
    if rid is None:
        raise ConsoleDenied("No such rotation.", status_code=404)
    if action == "move":
        new_start = parse_date(values.get("new_start"), "new start")
        if new_start is None:
            raise PlanningError("choose the new start date (a Monday)")
        old = rotation.start
        overrides.move(session, pol, rid, new_start, reason, actor=actor, today=clock.today())
        return f"{employee.name}: rotation moved from {old} to {new_start} and locked", [rid]
    if action == "swap":
        return _swap(session, pol, rotation, employee, (values.get("other") or "").strip(), reason, actor)
    if action == "defer":
        weeks = parse_int(values.get("weeks"), "weeks")
        until = parse_date(values.get("until"), "until")
        old = rotation.start
        rot = overrides.defer(
            session, pol, rid, weeks=weeks, until=until, reason=reason, actor=actor, today=clock.today()
        )
        return f"{employee.name}: rotation deferred from {old} to {rot.start} and locked", [rid]
    if action == "exempt":
        return _exempt(session, employee, parse_date(values.get("until"), "until"), reason, actor)
    if action == "repair":
        replaced = overrides.replace_mentor(session, pol, rid, employee.name, reason, actor)
        old_name = replaced.old_mentor.name if replaced.old_mentor else "?"
        summary = f"{employee.name}: mentor {old_name} replaced by {replaced.new_mentor}"
        if replaced.other_rotation_ids:
            summary += f" (the pairing run also paired {len(replaced.other_rotation_ids)} other rotation(s) that had no mentor)"
        return summary, [rid, *replaced.other_rotation_ids]
    if action == "mentor":
        return _set_mentor(session, pol, rotation, employee, (values.get("mentor") or "").strip(), reason, actor)
    if action in ("lock", "unlock"):
        overrides.set_lock(session, rid, action == "lock", reason, actor=actor)
        return f"{employee.name}: rotation {action}ed", [rid]
    raise ConsoleDenied(f"Unknown action {action!r}.", status_code=404)


def _swap(
    session: Session, pol: Policy, rotation: Rotation, employee: Employee, other_key: str, reason: str, actor: str
) -> tuple[str, list[int]]:
    if not other_key:
        raise PlanningError("give the employee id or email of the rotator to swap with")
    other_emp = employee_by_id_or_email(session, other_key)
    if other_emp is None:
        raise PlanningError(f"no employee {other_key!r}")
    other = overrides.upcoming_rotation(session, other_emp.employee_id)
    if rotation.id is None or other.id is None:
        raise PlanningError(f"{other_emp.name} has no stored rotation to swap with")
    a_start, b_start = rotation.start, other.start
    overrides.swap(session, pol, rotation.id, other.id, reason, actor=actor)
    return (
        f"{employee.name} now starts {b_start}, {other_emp.name} now starts {a_start} (both locked)",
        [rotation.id, other.id],
    )


def _set_mentor(
    session: Session, pol: Policy, rotation: Rotation, employee: Employee, mentor_key: str, reason: str, actor: str
) -> tuple[str, list[int]]:
    if not mentor_key:
        raise PlanningError("give the mentor's employee id or e-mail address")
    mentor = employee_by_id_or_email(session, mentor_key)
    if mentor is None:
        raise PlanningError(f"no employee {mentor_key!r}")
    if rotation.id is None:
        raise PlanningError("the rotation is not stored yet")
    review.set_mentor(session, pol, rotation.id, mentor, reason, actor)
    return f"{employee.name}: mentor is now {mentor.name} (chosen by HR)", [rotation.id]


def _exempt(session: Session, employee: Employee, until: date | None, reason: str, actor: str) -> tuple[str, list[int]]:
    if until is None:
        raise PlanningError("choose the date the exemption ends")
    affected = queries.open_rotation_ids(session, employee.id) if employee.id is not None else []
    overrides.exempt(session, employee.employee_id, until, reason, actor=actor, today=clock.today())
    session.flush()
    remaining = queries.existing_rotation_ids(session, affected)
    return f"{employee.name} is exempt until {until}; rotations inside it withdrawn", sorted(remaining)


def queue_invite_updates(session: Session, pol: Policy, rotation_ids: list[int]) -> int | None:
    """Queue calendar updates/cancellations for these rotations (None when invites are not installed)."""
    invites = optional("frontline.calendar.invites")
    if invites is None or not rotation_ids:
        return None
    counts = invites.process_invites(
        session,
        rotation_ids,
        as_of=clock.today(),
        checkin_minutes=pol.mentoring.checkin_minutes,
        working_hours=tuple(pol.mentoring.working_hours),
    )
    return sum(getattr(counts, k, 0) for k in ("requests", "updates", "cancels"))


@router.post("/plan/rotations/{rotation_id}/{action}")
def rotation_action(
    request: Request,
    rotation_id: DbId,
    action: str,
    reason: str = Form(""),
    new_start: str = Form(""),
    other: str = Form(""),
    weeks: str = Form(""),
    until: str = Form(""),
    mentor: str = Form(""),
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
        "mentor": mentor.strip()[:320],
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
    pol = policy()
    ctx = _rotation_context(session, user, rotation_id)
    rotation, employee = ctx["r"], ctx["employee"]
    try:
        summary, touched = _perform(session, pol, action, rotation, employee, values, user.email)
        session.flush()
    except (PlanningError, ConsoleDenied) as exc:
        session.rollback()
        refused = exc if isinstance(exc, OverrideRefused) else None
        message = exc.message if isinstance(exc, ConsoleDenied) else refused.problem if refused else str(exc)
        return _detail(
            request,
            session,
            user,
            rotation_id,
            values=values,
            status_code=400,
            error=f"{ACTIONS[action]} is not possible: {message}",
            refused=refused,
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
    target = (
        f"/console/plan/rotations/{rotation_id}" if queries.rotation_exists(session, rotation_id) else "/console/plan"
    )
    return redirect(request, with_flash(target, done))


# ------------------------------------------------------------------------------- re-run (dry run)


@router.get("/plan/rerun")
def rerun_form(request: Request, user: Principal = Depends(require_hr)) -> Response:
    return page(
        request,
        "web/console/rerun.html",
        result=None,
        f={"start": monday(clock.today()).isoformat(), "weeks": 52},
        error=None,
    )


def _horizon(start: str, weeks: str) -> tuple[date, int]:
    first = monday(parse_date(start, "start") or clock.today())
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
    first, n = _horizon(start, weeks)
    try:
        result = plan_rotations(session, policy(), first, n, dry_run=True, actor=user.email)
    except PlanningError as exc:
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
    names = employees_by_external_id(session, [c["employee_id"] for c in result.changes])
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
    first, n = _horizon(start, weeks)
    reason = reason.strip()[:MAX_REASON]
    if not reason:
        raise ConsoleDenied("Applying a plan needs a reason (it is kept in the audit trail).", status_code=400)
    pol = policy()
    try:
        result = plan_rotations(session, pol, first, n, dry_run=False, actor=user.email)
    except PlanningError as exc:  # e.g. another writer of the plan still running (PlanningBusy): nothing written
        session.rollback()
        return page(
            request,
            "web/console/rerun.html",
            status_code=409,
            result=None,
            error=str(exc),
            f={"start": first.isoformat(), "weeks": n},
        )
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
    touched = queries.announced_rotation_ids(session, starting_by=first + timedelta(weeks=n), ending_from=clock.today())
    queued = queue_invite_updates(session, pol, touched)
    session.commit()
    done = (
        f"Plan applied: {result.created} created, {result.moved} moved, {result.removed} removed, "
        f"{len(result.unplaced)} unplaced"
    )
    if preview_run:
        preview = queries.plan_run(session, parse_int(preview_run, "preview"))
        if preview is not None and (preview.summary or {}).get("changes") != result.changes[:500]:
            done += " (the data changed since the preview, so the changes differ from it)"
    if queued is not None:
        done += f". Calendar updates queued: {queued}"
    return redirect(request, with_flash("/console/plan", done))


# ------------------------------------------------------------------------------- add a rotation


def _add_page(
    request: Request,
    session: Session,
    user: Principal,
    employee_key: str,
    *,
    values: dict[str, str] | None = None,
    error: str | None = None,
    refused: OverrideRefused | None = None,
    status_code: int = 200,
) -> Response:
    employee = employee_by_id_or_email(session, employee_key)
    if employee is None:
        raise ConsoleDenied("No such employee.", status_code=404)
    check_department(user, employee.department_id)
    return page(
        request,
        "web/console/add.html",
        status_code=status_code,
        employee=employee,
        v=values or {"new_start": monday(clock.today() + timedelta(days=7)).isoformat()},
        error=error,
        refused=refused,
    )


@router.get("/plan/people/{employee_key}/add")
def add_form(
    request: Request, employee_key: str, user: Principal = Depends(require_hr), session: Session = Depends(db)
) -> Response:
    return _add_page(request, session, user, employee_key)


@router.post("/plan/people/{employee_key}/add")
def add_action(
    request: Request,
    employee_key: str,
    reason: str = Form(""),
    new_start: str = Form(""),
    confirm: str = Form(""),
    user: Principal = Depends(require_hr),
    session: Session = Depends(db),
) -> Response:
    """Give an unplaced person a rotation: preview (validated, rolled back), then confirm (written, locked)."""
    values = {"action": "add", "reason": reason.strip()[:MAX_REASON], "new_start": new_start}
    employee = employee_by_id_or_email(session, employee_key)
    if employee is None:
        raise ConsoleDenied("No such employee.", status_code=404)
    check_department(user, employee.department_id)
    try:
        if not values["reason"]:
            raise PlanningError("a reason is required (it is kept in the audit trail)")
        start = parse_date(new_start, "start")
        if start is None:
            raise PlanningError("choose the start date (a Monday)")
        rot = overrides.add(
            session, policy(), employee.employee_id, start, values["reason"], actor=user.email, today=clock.today()
        )
    except (PlanningError, ConsoleDenied) as exc:
        session.rollback()
        refused = exc if isinstance(exc, OverrideRefused) else None
        message = exc.message if isinstance(exc, ConsoleDenied) else refused.problem if refused else str(exc)
        return _add_page(
            request,
            session,
            user,
            employee_key,
            values=values,
            error=f"Adding a rotation is not possible: {message}",
            refused=refused,
            status_code=400,
        )
    summary = f"{employee.name}: new rotation {rot.start} to {rot.end} ({rot.kind.replace('_', ' ')}, locked)"
    if confirm != "yes":
        session.rollback()
        return page(
            request,
            "web/console/confirm.html",
            title="Add a rotation",
            summary=summary,
            values=values,
            action_url=f"/console/plan/people/{quote(employee.employee_id, safe='')}/add",
            back_url=f"/console/plan/people/{quote(employee.employee_id, safe='')}/add",
            employee=employee,
        )
    rotation_id = rot.id
    session.commit()
    return redirect(request, with_flash(f"/console/plan/rotations/{rotation_id}", summary))
