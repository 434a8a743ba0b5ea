"""Closing the loop: someone acknowledges / plans / fixes / won't fix an observation, and the rotator
who reported it hears what happened.

Everything that acts on an observation (the acknowledge link, the console, the digests' theme links)
goes through :func:`set_ack_state`. A signed link that acts is bound to the person it was mailed to and
works only while they still receive the department's mail (:func:`receives_department_mail`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from frontline.core import audit
from frontline.core.security import InvalidToken
from frontline.observations.redaction import redact
from frontline.observations.vocabulary import ACK_STATE_LABELS, ACK_STATE_SHORT_LABELS, ACK_STATES, category_label
from models import Department, Employee, Observation, OutboundMessage, utcnow


def set_ack_state(
    session: Session,
    observation_ids: Iterable[int],
    state: str,
    by: str,
    note: str | None = None,
    *,
    now: datetime | None = None,
) -> list[Observation]:
    """Record that ``by`` acknowledged / planned / fixed / won't fix these observations (at ``now``,
    default: the clock), audit it, and queue a "what happened to your observation" mail to each
    reporting rotator (one per observation and state). Unknown ids or states raise ``ValueError``
    before anything is written."""
    if state not in ACK_STATES:
        raise ValueError(f"unknown state {state!r}; expected one of {', '.join(ACK_STATES)}")
    ids = list(dict.fromkeys(int(i) for i in observation_ids))
    rows = {o.id: o for o in session.exec(select(Observation).where(col(Observation.id).in_(ids))).all()} if ids else {}
    missing = [i for i in ids if i not in rows]
    if missing:
        raise ValueError(f"no observation with id {', '.join(map(str, missing))}")
    note = note.strip() if note and note.strip() else None
    if note:
        note, _counts = redact(note)
    now = now or utcnow()
    changed = []
    for oid in ids:
        obs = rows[oid]
        previous = obs.ack_state
        obs.ack_state, obs.ack_by, obs.ack_at, obs.ack_note = state, by, now, note
        session.add(obs)
        audit.record(
            session,
            actor=by,
            action="observation.ack",
            subject_type="observation",
            subject_id=obs.id,
            state=state,
            previous=previous,
        )
        _tell_the_rotator(session, obs, oid, state, previous, note)
        changed.append(obs)
    return changed


def _tell_the_rotator(
    session: Session, obs: Observation, oid: int, state: str, previous: str | None, note: str | None
) -> None:
    """Queue the "your observation was marked ..." mail (nothing when the rotator has no address)."""
    from frontline.core.templating import render_html, render_text
    from frontline.mail import compose, enqueue

    rotator = session.get(Employee, obs.rotator_id) if obs.rotator_id else None
    if rotator is None or not rotator.email:
        return
    ctx = {
        "obs": obs,
        "rotator": rotator,
        "department": session.get(Department, obs.target_department_id),
        "state": state,
        "state_label": ACK_STATE_LABELS[state],
        "note": note,
        "category_label": category_label(obs.category),
    }
    message = compose(
        to=rotator.email,
        subject=f"Your observation #{oid} was marked {ACK_STATE_SHORT_LABELS[state]}",
        text=render_text("email/observation_update.txt", **ctx),
        html=render_html("email/observation_update.html", **ctx),
    )
    enqueue(session, message, kind="observation_update", idempotency_key=_update_key(session, oid, state, previous))


def _update_key(session: Session, obs_id: int, state: str, previous: str | None) -> str:
    """``observation-update:<id>:<state>`` the first time a state is mailed; the same state set again
    (nothing changed) reuses it, so nothing is queued. A return to a state after another one
    (planned -> won't fix -> planned) is a change: ``...:<state>:<n>``, ``n`` = updates queued so far."""
    key = f"observation-update:{obs_id}:{state}"
    if previous == state:
        return key
    exists = session.exec(select(OutboundMessage.id).where(OutboundMessage.idempotency_key == key)).first()
    if exists is None:
        return key
    n = len(
        session.exec(
            select(OutboundMessage.id).where(
                col(OutboundMessage.idempotency_key).startswith(f"observation-update:{obs_id}:")
            )
        ).all()
    )
    return f"{key}:{n}"


# ------------------------------------------------------------------------------------ acknowledge links


def receives_department_mail(department: Department | None, email: object) -> bool:
    """Whether ``email`` still heads ``department`` or receives its digest (the people an escalation or
    a digest link may have been mailed to). False for a department that no longer exists or that a roster
    import deactivated (its head lost access)."""
    if department is None or not department.active or not isinstance(email, str):
        return False
    current = {a.strip().lower() for a in [department.head_email, *(department.digest_recipients or [])] if a}
    return email.strip().lower() in current


@dataclass
class AckTarget:
    """An observation with the department it is addressed to and the rotator who reported it."""

    observation: Observation
    department: Department | None
    rotator: Employee | None


def ack_target(session: Session, observation: Observation) -> AckTarget:
    department = session.get(Department, observation.target_department_id)
    rotator = session.get(Employee, observation.rotator_id) if observation.rotator_id else None
    return AckTarget(observation, department, rotator)


def ack_link_target(session: Session, observation_id: int, recipient: object = None) -> AckTarget:
    """What an acknowledge link (``/ack/<token>``) opens. A link bound to a recipient (``recipient``,
    the head it was mailed to) works only while they still receive the department's mail. Raises
    :class:`~frontline.core.security.InvalidToken` with the reason otherwise."""
    obs = session.get(Observation, observation_id)
    if obs is None:
        raise InvalidToken("this observation no longer exists")
    target = ack_target(session, obs)
    if recipient is not None and not receives_department_mail(target.department, recipient):
        raise InvalidToken("this link was sent to someone who no longer receives this department's escalations")
    return target
