"""Change requests: rotators and department heads ask, HR decides.

A rotator asks from the link in their invite or from ``/console/me``: *another week* or *I can't do this
rotation*, with a reason and optionally up to three preferred weeks. A department head asks to *move* one
of their people (the console's rotation page). :func:`submit` queues the request (one pending request per
rotation); HR answers it in the console's Requests page or with ``frontline requests approve|decline``.

* **Approve** with a week (given by HR, else the first preferred week that fits): the rotation moves there
  through :func:`frontline.rotations.overrides.move` (every hard rule checked, locked, audited). The next
  invite run sends the rotator the updated invitation (same UID, SEQUENCE + 1).
* **Approve** *I can't do this rotation* without a week: the person is released from it (exempt until its
  last day, :func:`frontline.rotations.overrides.exempt`): an announced rotation is cancelled (the next
  invite run sends the CANCEL), and the next plan places them after it.
* **Decline** with a note.
* With policy ``requests.auto_approve = true`` a request whose preferred weeks include one that fits every
  hard rule is approved at once (``decided_by = "policy"``).

Every outcome is mailed to the requester through the outbox (``request:<id>:<status>``) and audited
(``request.submitted``, ``request.approved``, ``request.declined``). The caller owns the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlmodel import Session, col, select

from frontline.core import audit, clock
from frontline.core.errors import PlanningError
from frontline.core.policy import Policy
from frontline.core.security import unstorable_character
from frontline.core.templating import render_text
from frontline.mail import compose, enqueue
from frontline.rotations import overrides
from models import ChangeRequest, Department, Employee, Rotation, utcnow
from models.db import planning_lock

KINDS = {
    "another_week": "Request another week",
    "cannot_do": "I can't do this rotation",
    "move": "Move (asked by the department head)",
}
ROLES = ("rotator", "head")
MAX_REASON = 2000
MAX_WEEKS = 3
OPEN = ("draft", "invited")


def _clean_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise PlanningError("say why (a reason is required; HR reads it)")
    if len(reason) > MAX_REASON:
        raise PlanningError(f"the reason is longer than {MAX_REASON} characters")
    problem = unstorable_character(reason)
    if problem:
        raise PlanningError(f"the reason {problem}")
    return reason


def parse_weeks(values: list[str], today: date) -> list[date]:
    """Preferred weeks from form or command-line values (any day of the week; empty values skipped):
    their Mondays, in order, without repeats, none in the past; at most :data:`MAX_WEEKS`."""
    out: list[date] = []
    for value in values:
        value = (value or "").strip()
        if not value:
            continue
        try:
            day = clock.parse_day(value)
        except ValueError as exc:
            raise PlanningError(f"preferred week {value!r}: {exc}") from None
        monday = clock.monday(day)
        if monday <= clock.monday(today):
            raise PlanningError(f"preferred week of {monday} has started or is in the past")
        if monday not in out:
            out.append(monday)
    if len(out) > MAX_WEEKS:
        raise PlanningError(f"give at most {MAX_WEEKS} preferred weeks")
    return out


def _rotation(session: Session, rotation_id: int) -> tuple[Rotation, Employee]:
    rot = session.get(Rotation, rotation_id)
    if rot is None:
        raise PlanningError(f"rotation {rotation_id} does not exist")
    person = session.get(Employee, rot.employee_id)
    if person is None:
        raise PlanningError(f"rotation {rotation_id} belongs to nobody")
    return rot, person


def pending_request(session: Session, rotation_id: int) -> ChangeRequest | None:
    return session.exec(
        select(ChangeRequest).where(ChangeRequest.rotation_id == rotation_id, ChangeRequest.status == "pending")
    ).first()


def may_request(session: Session, rotation_id: int, email: str, role: str) -> bool:
    """Whether ``email`` may ask to change this rotation as ``role``: its rotator, or the head of the
    rotator's (active) department."""
    rot = session.get(Rotation, rotation_id)
    person = session.get(Employee, rot.employee_id) if rot else None
    if person is None:
        return False
    if role == "rotator":
        return person.email == email.strip().lower()
    dept = session.get(Department, person.department_id)
    return role == "head" and dept is not None and dept.active and dept.head_email.lower() == email.strip().lower()


def submit(
    session: Session,
    policy: Policy,
    rotation_id: int,
    *,
    kind: str,
    requester_email: str,
    requester_role: str,
    reason: str,
    preferred_weeks: list[date] | None = None,
    today: date | None = None,
) -> ChangeRequest:
    """Queue a change request (see the module docstring); with policy ``requests.auto_approve`` one that
    fits is approved at once. The caller has checked who asks (:func:`may_request`)."""
    today = today or clock.today()
    if kind not in KINDS or requester_role not in ROLES:
        raise PlanningError(f"unknown request {kind!r} by {requester_role!r}")
    if (kind == "move") != (requester_role == "head"):
        raise PlanningError("a head asks to move one of their people; a rotator asks for another week or out")
    rot, person = _rotation(session, rotation_id)
    if rot.status not in OPEN or rot.end < today:
        raise PlanningError(f"this rotation is {rot.status if rot.status not in OPEN else 'over'}; nothing to change")
    if rot.start <= today:
        raise PlanningError("this rotation has started; talk to HR directly")
    existing = pending_request(session, rotation_id)
    if existing is not None:
        raise PlanningError(f"there is already a request for this rotation waiting for HR (request {existing.id})")
    weeks = list(preferred_weeks or [])
    req = ChangeRequest(
        rotation_id=rotation_id,
        employee_id=person.id or 0,
        kind=kind,
        requester_email=requester_email.strip().lower(),
        requester_role=requester_role,
        reason=_clean_reason(reason),
        preferred_weeks=[w.isoformat() for w in weeks],
    )
    session.add(req)
    session.flush()
    audit.record(
        session,
        actor=req.requester_email,
        action="request.submitted",
        subject_type="rotation",
        subject_id=rotation_id,
        reason=req.reason,
        request_id=req.id,
        kind=kind,
        preferred_weeks=req.preferred_weeks,
    )
    if requester_role == "rotator" and weeks and person.id is not None:
        from frontline.people.preferences import set_weeks

        # the weeks a rotator says would suit are their preferences for later plans too (soft terms)
        set_weeks(session, person.id, "preferred", weeks, source="request")
    _tell_hr(session, policy, req, person)
    if policy.requests.auto_approve and weeks:
        fitting = first_fitting_week(session, policy, rot, weeks, today)
        if fitting is not None:
            approve(session, policy, req.id or 0, "policy", week=fitting, note="fits every hard rule", today=today)
    return req


def _tell_hr(session: Session, policy: Policy, req: ChangeRequest, person: Employee) -> None:
    """HR's chat channel (policy ``[chat] hr``) hears of every new request too."""
    from frontline.chat.service import chat_safe, notify
    from frontline.core.settings import get_settings

    weeks = ", ".join(req.preferred_weeks) or "none named"
    reason = chat_safe(req.reason)
    notify(
        session,
        policy.chat,
        "hr",
        key=f"request:{req.id}",
        title=f"Change request {req.id} ({req.kind.replace('_', ' ')}) for {person.name}",
        body=f"{reason[:600]}\nPreferred weeks: {weeks}\n{get_settings().base_url}/console/requests",
    )


def _why_not(session: Session, policy: Policy, rot: Rotation, week: date, today: date | None = None) -> str | None:
    if week == rot.start:
        return "that is the current week"
    if week <= clock.monday(today or clock.today()):
        return "that week has started or is over"
    try:
        overrides.validate_start(session, policy, rot, week)
    except PlanningError as exc:
        return str(exc)
    return None


def first_fitting_week(
    session: Session, policy: Policy, rot: Rotation, weeks: list[date], today: date | None = None
) -> date | None:
    return next((w for w in weeks if _why_not(session, policy, rot, w, today) is None), None)


def _open(session: Session, request_id: int) -> ChangeRequest:
    req = session.get(ChangeRequest, request_id)
    if req is None:
        raise PlanningError(f"request {request_id} does not exist")
    if req.status != "pending":
        raise PlanningError(f"request {request_id} is already {req.status}")
    return req


def approve(
    session: Session,
    policy: Policy,
    request_id: int,
    actor: str,
    *,
    week: date | None = None,
    note: str | None = None,
    today: date | None = None,
) -> ChangeRequest:
    """Approve a request (see the module docstring); raises :class:`PlanningError` naming the rule when
    the week (HR's, else every preferred one) does not fit, and changes nothing then."""
    planning_lock(session, f"change request approval by {actor}")  # before reading: a plan run may be writing
    req = _open(session, request_id)
    rot, person = _rotation(session, req.rotation_id)
    today = today or clock.today()
    if rot.status not in OPEN or rot.start <= today:
        state = rot.status if rot.status not in OPEN else "started"
        raise PlanningError(f"the rotation is {state} now; decline the request instead")
    label = f"change request {req.id} ({KINDS[req.kind]})"
    if week is None and req.preferred_weeks:
        weeks = [date.fromisoformat(w) for w in req.preferred_weeks]
        week = first_fitting_week(session, policy, rot, weeks, today)
        if week is None:
            why = "; ".join(f"{w}: {_why_not(session, policy, rot, w, today)}" for w in weeks)
            near = overrides.nearest_weeks(
                session, policy, rot, weeks[0], not_before=clock.monday(today) + timedelta(weeks=1)
            )
            hint = f"; the nearest weeks that fit: {', '.join(d.isoformat() for d in near)}" if near else ""
            raise PlanningError(f"none of the preferred weeks fits ({why}){hint}; approve with another week or decline")
    if week is not None:
        week = clock.monday(week)
        problem = _why_not(session, policy, rot, week, today)
        if problem is not None:
            raise PlanningError(f"the week of {week} does not fit: {problem}")
        old = rot.start
        overrides.move(session, policy, rot.id or 0, week, f"{label}: {req.reason}", actor=actor)
        whose = "Your" if req.requester_email == person.email else f"{person.name}'s"
        outcome = f"{whose} rotation moves from the week of {old} to {rot.start} to {rot.end}."
    elif req.kind == "cannot_do":
        overrides.exempt(session, person.employee_id, rot.end, f"{label}: {req.reason}", actor=actor, today=today)
        outcome = (
            f"{person.name} is released from the rotation {rot.start} to {rot.end}; the next plan places them later."
        )
    else:
        raise PlanningError("the request names no week: approve it with the week the rotation should move to")
    req.status, req.decided_by, req.decided_at = "approved", actor, utcnow()
    req.decision_note, req.outcome = (note or "").strip() or None, outcome
    session.add(req)
    _record_and_tell(session, req, person, rot)
    return req


def decline(session: Session, request_id: int, actor: str, note: str) -> ChangeRequest:
    """Decline a request with a note the requester reads."""
    note = (note or "").strip()
    if not note:
        raise PlanningError("say why the request is declined (the requester reads it)")
    req = _open(session, request_id)
    rot, person = _rotation(session, req.rotation_id)
    req.status, req.decided_by, req.decided_at, req.decision_note = "declined", actor, utcnow(), note
    req.outcome = f"The rotation stays {rot.start} to {rot.end}."
    session.add(req)
    _record_and_tell(session, req, person, rot)
    return req


def _record_and_tell(session: Session, req: ChangeRequest, person: Employee, rot: Rotation) -> None:
    audit.record(
        session,
        actor=req.decided_by or "cli",
        action=f"request.{req.status}",
        subject_type="rotation",
        subject_id=req.rotation_id,
        reason=req.decision_note,
        request_id=req.id,
        outcome=req.outcome,
    )
    text = render_text(
        "email/request_outcome.txt",
        req=req,
        person=person,
        rotation=rot,
        kind=KINDS[req.kind],
        for_self=req.requester_email == person.email,
    )
    whose = "your" if req.requester_email == person.email else f"{person.name}'s"
    subject = f"Your request about {whose} support rotation: {req.status}"
    msg = compose(to=req.requester_email, subject=subject, text=text)
    enqueue(session, msg, kind="request", idempotency_key=f"request:{req.id}:{req.status}")


# ------------------------------------------------------------------------------ reads


@dataclass
class Asking:
    """What a request page shows: the rotation, whose it is, their newest request and whether they may
    ask (again) now."""

    rotation: Rotation
    person: Employee
    latest: ChangeRequest | None
    can_ask: bool


def asking(session: Session, rotation_id: int, employee_id: int, today: date | None = None) -> Asking | None:
    """The rotation a rotator's signed link names, while it is still theirs (None otherwise)."""
    rot = session.get(Rotation, rotation_id)
    if rot is None or rot.employee_id != employee_id:
        return None
    person = session.get(Employee, employee_id)
    if person is None or not person.active:
        return None
    latest = requests_for_rotations(session, [rotation_id]).get(rotation_id)
    today = today or clock.today()
    can_ask = rot.status in OPEN and rot.start > today and (latest is None or latest.status != "pending")
    return Asking(rot, person, latest, can_ask)


@dataclass
class RequestRow:
    request: ChangeRequest
    rotation: Rotation
    person: Employee
    department: str

    def as_row(self) -> dict[str, Any]:
        r = self.request
        return {
            "id": r.id,
            "status": r.status,
            "kind": r.kind,
            "employee": self.person.name,
            "department": self.department,
            "rotation": f"{self.rotation.start}..{self.rotation.end}",
            "preferred": ", ".join(r.preferred_weeks),
            "requester": r.requester_email,
            "reason": r.reason,
            "decision": r.decision_note or "",
        }


def list_requests(session: Session, status: str | None = "pending", limit: int = 500) -> list[RequestRow]:
    """Requests (pending by default; ``None`` = all), oldest pending first, else newest first."""
    query = select(ChangeRequest, Rotation, Employee, Department).where(
        col(ChangeRequest.rotation_id) == col(Rotation.id),
        col(ChangeRequest.employee_id) == col(Employee.id),
        col(Employee.department_id) == col(Department.id),
    )
    if status is not None:
        query = query.where(ChangeRequest.status == status).order_by(col(ChangeRequest.created_at))
    else:
        query = query.order_by(col(ChangeRequest.created_at).desc())
    return [RequestRow(r, rot, e, d.name) for r, rot, e, d in session.exec(query.limit(limit)).all()]


def requests_for_rotations(session: Session, rotation_ids: list[int]) -> dict[int, ChangeRequest]:
    """The newest request of each of these rotations."""
    if not rotation_ids:
        return {}
    out: dict[int, ChangeRequest] = {}
    for r in session.exec(
        select(ChangeRequest)
        .where(col(ChangeRequest.rotation_id).in_(rotation_ids))
        .order_by(col(ChangeRequest.created_at), col(ChangeRequest.id))
    ).all():
        out[r.rotation_id] = r
    return out
