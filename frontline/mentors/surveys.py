"""The wrap-up survey of a pairing and what it says: who is due a survey, queueing it (once per side),
storing an answer, and the averages the optimiser (:func:`mentor_feedback`) and the HR dashboard
(:func:`feedback_summary`) read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy.orm import aliased
from sqlmodel import Session, col, func, select

from frontline.core import audit, clock
from frontline.mentors.pairings import active_pairings_overlapping
from models import Employee, MentorPairing, PairingFeedback, Rotation, utcnow

ROLES = ("rotator", "mentor")


def survey_due(session: Session, as_of: date) -> list[tuple[MentorPairing, Rotation]]:
    """Active pairings whose rotation is in its last week on ``as_of`` (or ended in the last 14 days)."""
    rows = active_pairings_overlapping(session, as_of - timedelta(days=14), as_of)
    return [(p, r) for p, r in rows if as_of >= clock.monday(r.end)]


def _has_left(person: Employee, as_of: date) -> bool:
    return not person.active or (person.left_on is not None and person.left_on <= as_of)


def queue_surveys(session: Session, as_of: date | None = None, actor: str = "cli") -> dict[str, int]:
    """Queue the wrap-up survey for both sides of every pairing in its last week (idempotency key
    ``survey:<pairing>:<role>``, so re-running queues nothing twice)."""
    from frontline.core.links import survey_url
    from frontline.core.templating import render_html, render_text
    from frontline.mail import compose, enqueue

    as_of = as_of or clock.today()
    counts = {"due": 0, "queued": 0, "already": 0}
    for p, r in survey_due(session, as_of):
        rotator = session.get(Employee, r.employee_id)
        mentor = session.get(Employee, p.mentor_id)
        if rotator is None or mentor is None or p.id is None:
            continue
        for role, person, other in (("rotator", rotator, mentor), ("mentor", mentor, rotator)):
            if _has_left(person, as_of):
                continue  # left the company: no mail to a departed address
            counts["due"] += 1
            ctx = {
                "person": person.name,
                "other": other.name,
                "role": role,
                "url": survey_url(p.id, role),
                "start": r.start,
                "end": r.end,
            }
            msg = compose(
                to=person.email,
                subject="How was your support rotation?" if role == "rotator" else f"How was mentoring {rotator.name}?",
                text=render_text("email/survey.txt", **ctx),
                html=render_html("email/survey.html", **ctx),
            )
            if enqueue(session, msg, kind="survey", idempotency_key=f"survey:{p.id}:{role}") is None:
                counts["already"] += 1
            else:
                counts["queued"] += 1
    if counts["queued"]:
        details: dict[str, Any] = dict(counts)
        audit.record(
            session, actor=actor, action="survey.queued", subject_type="day", subject_id=as_of.isoformat(), **details
        )
    return counts


def _answer(session: Session, pairing_id: int, role: str) -> PairingFeedback | None:
    return session.exec(
        select(PairingFeedback).where(PairingFeedback.pairing_id == pairing_id, PairingFeedback.role == role)
    ).first()


@dataclass
class PairingSurvey:
    """Who answers the survey of a pairing, about whom, and their earlier answer (None before the first)."""

    pairing: MentorPairing
    rotation: Rotation
    rotator: Employee | None
    mentor: Employee | None
    existing: PairingFeedback | None

    def as_context(self) -> dict[str, Any]:
        return {
            "pairing": self.pairing,
            "rotation": self.rotation,
            "rotator": self.rotator,
            "mentor": self.mentor,
            "existing": self.existing,
        }


def pairing_survey(session: Session, pairing_id: int, role: str) -> PairingSurvey | None:
    """The survey of pairing ``pairing_id`` for one side (``role``); None when the pairing is gone."""
    pairing = session.get(MentorPairing, pairing_id)
    rotation = session.get(Rotation, pairing.rotation_id) if pairing is not None else None
    if pairing is None or rotation is None:
        return None
    return PairingSurvey(
        pairing=pairing,
        rotation=rotation,
        rotator=session.get(Employee, rotation.employee_id),
        mentor=session.get(Employee, pairing.mentor_id),
        existing=_answer(session, pairing_id, role),
    )


def save_feedback(
    session: Session, pairing_id: int, role: str, rotation_usefulness: int, usefulness: int, comment: str | None
) -> PairingFeedback:
    """Store (or replace: the latest answer counts) one side's survey answer."""
    if role not in ROLES:
        raise ValueError("role must be rotator or mentor")
    for name, value in (("rotation_usefulness", rotation_usefulness), ("usefulness", usefulness)):
        if not (isinstance(value, int) and 1 <= value <= 5):
            raise ValueError(f"{name} must be a whole number from 1 to 5")
    comment = (comment or "").strip()[:5000] or None
    row = _answer(session, pairing_id, role)
    if row is None:
        row = PairingFeedback(
            pairing_id=pairing_id,
            role=role,
            rotation_usefulness=rotation_usefulness,
            usefulness=usefulness,
            comment=comment,
        )
    else:
        row.rotation_usefulness, row.usefulness, row.comment = rotation_usefulness, usefulness, comment
        row.updated_at = utcnow()
    session.add(row)
    session.flush()
    return row


def mentor_feedback(session: Session) -> dict[int, float]:
    """Average rotator rating of the pairing (1-5) per mentor ``Employee.id``."""
    rows = session.exec(
        select(MentorPairing.mentor_id, func.avg(PairingFeedback.usefulness))
        .join(PairingFeedback, col(PairingFeedback.pairing_id) == MentorPairing.id)
        .where(PairingFeedback.role == "rotator")
        .group_by(col(MentorPairing.mentor_id))
    ).all()
    return {mid: float(avg) for mid, avg in rows if avg is not None}


def _mean(values: list[int]) -> float | None:
    return sum(values) / len(values) if values else None


def feedback_summary(session: Session, department_ids: list[int] | None = None) -> dict[str, Any]:
    """Wrap-up survey results for the HR dashboard: answers per side, average usefulness of the
    rotation and of the pairing (1-5), and per mentor the rotators' average pairing rating.

    ``department_ids`` limits it to rotators from those departments (a head's view)."""
    rotator = aliased(Employee)
    mentor = aliased(Employee)
    query = (
        select(PairingFeedback, mentor.id, mentor.name)
        .join(MentorPairing, col(MentorPairing.id) == PairingFeedback.pairing_id)
        .join(Rotation, col(Rotation.id) == MentorPairing.rotation_id)
        .join(rotator, col(rotator.id) == Rotation.employee_id)
        .join(mentor, col(mentor.id) == MentorPairing.mentor_id)
    )
    if department_ids is not None:
        query = query.where(col(rotator.department_id).in_(department_ids or [-1]))
    answers = {"rotator": 0, "mentor": 0}
    rotation_scores: list[int] = []
    pairing_scores: dict[str, list[int]] = {"rotator": [], "mentor": []}
    per_mentor: dict[int | None, dict[str, Any]] = {}
    for answer, mentor_id, mentor_name in session.exec(query).all():
        answers[answer.role] += 1
        rotation_scores.append(answer.rotation_usefulness)
        pairing_scores[answer.role].append(answer.usefulness)
        if answer.role == "rotator":
            entry = per_mentor.setdefault(mentor_id, {"mentor": mentor_name, "ratings": []})
            entry["ratings"].append(answer.usefulness)
    mentors = sorted(
        (
            {"mentor": m["mentor"], "answers": len(m["ratings"]), "average": _mean(m["ratings"])}
            for m in per_mentor.values()
        ),
        key=lambda m: (-m["average"], -m["answers"], m["mentor"]),
    )
    return {
        "answers": answers,
        "rotation_usefulness": _mean(rotation_scores),
        "pairing_by_rotators": _mean(pairing_scores["rotator"]),
        "pairing_by_mentors": _mean(pairing_scores["mentor"]),
        "mentors": mentors,
    }
