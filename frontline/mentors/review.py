"""People in the pairing loop: HR choosing a mentor, HR reviewing proposals, mentors answering.

* :func:`set_mentor` (``frontline pair set``, the console's "Choose the mentor"): HR gives a rotation a
  mentor of their choice, checked against every hard rule of the optimiser (:func:`check_mentor` names
  the rule a refused choice breaks). The earlier pairing becomes ``replaced``; the new one is active at once
  (HR chose it, so it needs no review).
* With policy ``mentoring.review = true`` the pairing run writes new pairings as ``proposed``: they hold the
  mentor's seat but nobody is told until HR approves them (:func:`approve_proposal`); a rejected proposal
  (:func:`reject_proposal`) excludes that mentor for the rotator and re-pairs that rotation alone (a new
  proposal).
* A mentor answers a pairing through the signed link in their mail (:func:`respond`): *accept* records the
  answer; *decline* ends the pairing (``declined``) and re-pairs that rotation alone, so the next invite run
  tells the rotator, the new mentor and the one who declined.

Every step is audited (``pairing.set``, ``pairing.approved``, ``pairing.rejected``, ``pairing.accepted``,
``pairing.declined``). The caller owns the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, cast

from sqlmodel import Session, col, select

from frontline.core import audit, clock
from frontline.core.errors import PairingError
from frontline.core.policy import Policy
from frontline.mentors import service
from frontline.mentors.service import PLANNED, PairingResult
from models import Employee, MentorPairing, Rotation, utcnow
from models.db import planning_lock


def _reason(reason: str | None) -> str:
    if reason is None or not reason.strip():
        raise PairingError("a reason is required (it is kept in the audit trail)")
    return reason.strip()


def _planned_rotation(session: Session, rotation_id: int, as_of: date) -> Rotation:
    rot = session.get(Rotation, rotation_id)
    if rot is None:
        raise PairingError(f"rotation {rotation_id} does not exist")
    if rot.status not in PLANNED:
        raise PairingError(f"rotation {rotation_id} is {rot.status}; only planned rotations get a mentor")
    if rot.end < as_of:
        raise PairingError(f"rotation {rotation_id} ended on {rot.end}")
    return rot


# --------------------------------------------------------------------------------------------------
# HR chooses the mentor


@dataclass
class RuleBreach:
    rule: str  # the hard rule's name, as the README lists it
    message: str


def check_mentor(
    state: service.PairingState, plan: service.Triage, rot: Rotation, mentor: Employee, annual_cap: int, gap: float
) -> list[RuleBreach]:
    """Every hard rule ``mentor`` would break as the mentor of ``rot`` (empty: allowed). ``plan`` is the
    triage without ``rot``'s current pairing (its seat is free for the new mentor)."""
    rotator = state.employees[rot.employee_id]
    mid = cast(int, mentor.id)
    if mid not in state.mentors:
        return [
            RuleBreach(
                "mentor",
                f"{mentor.name} cannot mentor now: mentors are active members of the support department with "
                f"mentor = yes and a mentor_capacity of at least 1",
            )
        ]
    r = service.solver_rotators(state, service.Triage(plan.kept, plan.to_replace, [rot]))[0]
    m = next(x for x in service.solver_mentors(state, plan.kept, annual_cap) if x.key == mid)
    out = []
    if r.dept == m.dept:
        out.append(RuleBreach("department", f"{mentor.name} is in {rotator.name}'s own department ({r.dept})"))
    if not (r.languages & m.languages):
        langs = ", ".join(sorted(r.languages)) or "none recorded"
        out.append(RuleBreach("language", f"{mentor.name} shares no language with {rotator.name} ({langs})"))
    apart = abs(r.tz_hours - m.tz_hours)
    if apart > gap + 1e-9:
        out.append(
            RuleBreach(
                "time zone",
                f"{mentor.name} is {apart:g} h from {rotator.name}; the policy allows at most {gap:g} h "
                f"(mentoring.max_timezone_gap_hours)",
            )
        )
    if mid in r.previous_mentors:
        out.append(RuleBreach("previous mentor", f"{mentor.name} was {rotator.name}'s mentor before"))
    if any(w in m.unavailable_weeks for w in range(r.start_week, r.end_week)):
        out.append(RuleBreach("absence", f"{mentor.name} is absent or gone during the rotation"))
    full = [w for w in range(r.start_week, r.end_week) if m.busy_weeks.get(w, 0) + 1 > m.capacity]
    if full:
        week = clock.iso_week(state.horizon_start + timedelta(weeks=full[0]))
        out.append(
            RuleBreach(
                "capacity",
                f"{mentor.name} already has {m.busy_weeks.get(full[0], 0)} of {m.capacity} rotator(s) in {week}",
            )
        )
    if m.annual_cap < 1:
        out.append(
            RuleBreach(
                "annual cap", f"{mentor.name} already has {annual_cap} pairings this year (mentoring.annual_cap)"
            )
        )
    return out


def set_mentor(
    session: Session,
    policy: Policy,
    rotation_id: int,
    mentor: Employee,
    reason: str,
    actor: str,
    as_of: date | None = None,
) -> MentorPairing:
    """HR makes ``mentor`` the mentor of rotation ``rotation_id`` (see the module docstring); raises
    :class:`PairingError` naming the broken rule(s) when the choice is not allowed."""
    reason = _reason(reason)
    planning_lock(session, f"pair set by {actor}")  # before reading: a pairing run may be writing
    as_of = as_of or clock.today()
    rot = _planned_rotation(session, rotation_id, as_of)
    support = service.support_department(session, policy)
    state = service.load_state(session, support, as_of)
    if rot.id not in state.rotation_by_id:
        raise PairingError(f"rotation {rotation_id} starts beyond the {service.HORIZON_WEEKS}-week pairing horizon")
    current = next((p for p in state.active if p.rotation_id == rot.id), None)
    if current is not None and current.mentor_id == mentor.id:
        raise PairingError(f"{mentor.name} is already the mentor of rotation {rotation_id}")
    plan = service.triage(state)
    plan.kept = [p for p in plan.kept if p.rotation_id != rot.id]
    plan.to_replace = {k: v for k, v in plan.to_replace.items() if k != rot.id}
    breaches = check_mentor(
        state, plan, rot, mentor, policy.mentoring.annual_cap, policy.mentoring.max_timezone_gap_hours
    )
    if breaches:
        raise PairingError(
            f"{mentor.name} cannot mentor rotation {rotation_id}: "
            + "; ".join(f"hard rule '{b.rule}': {b.message}" for b in breaches)
        )
    result = PairingResult(as_of=as_of, horizon_start=state.horizon_start, dry_run=False)
    writer = service.PairingWriter(  # the pairing run's writer: the check-in slot is chosen alike
        session, state, policy.mentoring, result, service.kept_slots(state, plan.kept), actor, False
    )
    old = (current, f"HR chose {mentor.name}: {reason}") if current is not None else None
    if old is not None:
        writer.replace(rot, old, cast(int, mentor.id))
    writer.create(rot, cast(int, mentor.id), None, None)
    writer.flush()  # the writer inserts in bulk: the new pairing gets its id here
    pairing = session.get(MentorPairing, result.created[-1]["pairing_id"])
    assert pairing is not None
    pairing.reason = f"set by HR: {reason}"
    session.add(pairing)
    service.forget_gap(session, rot.id)
    audit.record(
        session,
        actor=actor,
        action="pairing.set",
        subject_type="pairing",
        subject_id=pairing.id,
        reason=reason,
        rotation_id=rot.id,
        mentor_id=mentor.id,
        replaces=current.id if current else None,
    )
    return pairing


# --------------------------------------------------------------------------------------------------
# Proposals (policy mentoring.review)


@dataclass
class Proposal:
    pairing: MentorPairing
    rotation: Rotation
    rotator: Employee
    mentor: Employee

    def as_row(self) -> dict[str, Any]:
        return {
            "pairing_id": self.pairing.id,
            "rotation_id": self.rotation.id,
            "rotator": self.rotator.name,
            "start": self.rotation.start.isoformat(),
            "mentor": self.mentor.name,
            "mentor_email": self.mentor.email,
            "cost": None if self.pairing.score is None else round(self.pairing.score, 2),
        }


def proposals(session: Session) -> list[Proposal]:
    """Pairings waiting for HR's review, by rotation start."""
    rows = session.exec(
        select(MentorPairing, Rotation)
        .join(Rotation, col(Rotation.id) == MentorPairing.rotation_id)
        .where(MentorPairing.status == "proposed")
        .order_by(col(Rotation.start), col(MentorPairing.id))
    ).all()
    people = {
        e.id: e
        for e in session.exec(
            select(Employee).where(
                col(Employee.id).in_({r.employee_id for _p, r in rows} | {p.mentor_id for p, _r in rows} or {-1})
            )
        ).all()
    }
    return [Proposal(p, r, people[r.employee_id], people[p.mentor_id]) for p, r in rows]


def _proposal(session: Session, pairing_id: int) -> MentorPairing:
    p = session.get(MentorPairing, pairing_id)
    if p is None:
        raise PairingError(f"pairing {pairing_id} does not exist")
    if p.status != "proposed":
        raise PairingError(f"pairing {pairing_id} is {p.status}, not a proposal waiting for review")
    return p


def approve_proposal(session: Session, pairing_id: int, actor: str, note: str | None = None) -> MentorPairing:
    """The proposal becomes the rotation's active pairing; the next invite run tells both sides."""
    p = _proposal(session, pairing_id)
    p.status, p.updated_at = "active", utcnow()
    session.add(p)
    audit.record(
        session,
        actor=actor,
        action="pairing.approved",
        subject_type="pairing",
        subject_id=p.id,
        reason=(note or "").strip() or None,
        rotation_id=p.rotation_id,
        mentor_id=p.mentor_id,
    )
    return p


def reject_proposal(
    session: Session, policy: Policy, pairing_id: int, reason: str, actor: str, as_of: date | None = None
) -> PairingResult:
    """The proposal is rejected (that mentor is never proposed for this rotator again) and the rotation
    alone is paired again: a new proposal, or a gap with its reason."""
    reason = _reason(reason)
    planning_lock(session, f"pair reject by {actor}")  # before reading: it re-pairs the rotation
    p = _proposal(session, pairing_id)
    p.status, p.reason, p.updated_at = "rejected", f"rejected by HR: {reason}", utcnow()
    session.add(p)
    audit.record(
        session,
        actor=actor,
        action="pairing.rejected",
        subject_type="pairing",
        subject_id=p.id,
        reason=reason,
        rotation_id=p.rotation_id,
        mentor_id=p.mentor_id,
    )
    session.flush()
    return service.pair_mentors(session, policy, as_of, actor=actor, only=[p.rotation_id])


# --------------------------------------------------------------------------------------------------
# The mentor's answer (signed link)


@dataclass
class PairingView:
    """What the mentor's answer page shows."""

    pairing: MentorPairing
    rotation: Rotation
    rotator: Employee
    mentor: Employee


def pairing_view(session: Session, pairing_id: int, mentor_id: int) -> PairingView | None:
    """The pairing a signed link names, when it still belongs to that mentor (None otherwise)."""
    p = session.get(MentorPairing, pairing_id)
    if p is None or p.mentor_id != mentor_id:
        return None
    rot = session.get(Rotation, p.rotation_id)
    rotator = session.get(Employee, rot.employee_id) if rot else None
    mentor = session.get(Employee, mentor_id)
    if rot is None or rotator is None or mentor is None:
        return None
    return PairingView(p, rot, rotator, mentor)


@dataclass
class Answer:
    accepted: bool
    message: str  # what the mentor is told
    rotation_id: int
    new_mentor: str | None = None


def respond(
    session: Session,
    policy: Policy,
    pairing_id: int,
    mentor_id: int,
    accept: bool,
    reason: str = "",
    as_of: date | None = None,
) -> Answer:
    """Record the mentor's answer (see the module docstring). Raises :class:`PairingError` when the
    pairing is no longer theirs to answer."""
    if not accept:  # a decline re-pairs the rotation: lock before reading
        planning_lock(session, f"mentor's decline of pairing {pairing_id}")
    view = pairing_view(session, pairing_id, mentor_id)
    if view is None:
        raise PairingError("this pairing does not exist (any more)")
    p, rot = view.pairing, view.rotation
    actor = view.mentor.email
    if p.status == "declined" and not accept:
        return Answer(False, "You already declined this pairing.", cast(int, rot.id))
    if p.status != "active":
        raise PairingError(f"this pairing is no longer current ({p.status}); nothing was changed")
    if accept:
        if p.response != "accepted":
            p.response, p.responded_at, p.updated_at = "accepted", utcnow(), utcnow()
            session.add(p)
            audit.record(
                session,
                actor=actor,
                action="pairing.accepted",
                subject_type="pairing",
                subject_id=p.id,
                rotation_id=p.rotation_id,
            )
        return Answer(True, f"Thank you: you mentor {view.rotator.name} from {rot.start}.", cast(int, rot.id))
    why = reason.strip() or "no reason given"
    p.status, p.response, p.responded_at = "declined", "declined", utcnow()
    p.reason, p.updated_at = f"declined by the mentor: {why}", utcnow()
    session.add(p)
    audit.record(
        session,
        actor=actor,
        action="pairing.declined",
        subject_type="pairing",
        subject_id=p.id,
        reason=why,
        rotation_id=p.rotation_id,
    )
    session.flush()
    result = service.pair_mentors(session, policy, as_of, actor=actor, only=[cast(int, rot.id)])
    new = next((c for c in result.created if c["rotation_id"] == rot.id), None)
    message = f"You declined mentoring {view.rotator.name}; HR's pairing finds someone else."
    return Answer(False, message, cast(int, rot.id), new["mentor"] if new else None)
