"""Observation drafts (:class:`ObservationDraft`): prefilled from a rotator's helpdesk tickets
(:mod:`frontline.observations.helpdesk`), shown on the rotator's observation page, where they open one in
the form, edit and submit it (the draft becomes ``submitted`` with the observation's id, in the
observation's transaction) or discard it. Only the draft's rotator can see, use or discard it; a draft is
never an observation until submitted, so digests and escalations never see one."""

from __future__ import annotations

from sqlmodel import Session, col, select

from frontline.core import audit, clock
from models import Employee, ObservationDraft

MAX_SHOWN = 20


def open_drafts(session: Session, rotator_id: int, limit: int = MAX_SHOWN) -> list[ObservationDraft]:
    """The rotator's open drafts, newest ticket day first."""
    return list(
        session.exec(
            select(ObservationDraft)
            .where(ObservationDraft.rotator_id == rotator_id, ObservationDraft.status == "open")
            .order_by(col(ObservationDraft.day).desc(), col(ObservationDraft.id).desc())
            .limit(limit)
        ).all()
    )


def open_draft(session: Session, rotator_id: int, draft_id: int) -> ObservationDraft | None:
    """The rotator's own open draft ``draft_id`` (None for someone else's, a used one or none)."""
    draft = session.get(ObservationDraft, draft_id)
    if draft is None or draft.rotator_id != rotator_id or draft.status != "open":
        return None
    return draft


def close_draft(session: Session, draft: ObservationDraft, employee: Employee, observation_id: int | None) -> None:
    """Mark ``draft`` submitted (as observation ``observation_id``) or, with None, discarded; audited."""
    draft.status = "submitted" if observation_id is not None else "discarded"
    draft.observation_id = observation_id
    draft.updated_at = clock.utcnow()
    session.add(draft)
    session.flush()
    audit.record(
        session,
        actor=employee.email,
        action=f"draft.{draft.status}",
        subject_type="draft",
        subject_id=draft.id,
        source=draft.source,
        ticket_id=draft.ticket_id,
        observation_id=observation_id,
    )
