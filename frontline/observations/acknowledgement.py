"""Closing the loop: someone acknowledges / plans / fixes / won't fix an observation, and the rotator
who reported it hears what happened.

Everything that acts on an observation (the acknowledge link, the console, the digests' theme links)
goes through :func:`set_ack_state`. A signed link that acts is bound to the person it was mailed to and
works only while they still receive the department's mail (:func:`receives_department_mail`).

The "your observation was marked ..." mails are kept few and true: a change replaces the observation's
update mail that has not gone out yet (20 quick changes leave one mail, with the last state), nothing is
queued when the rotator was already told the state it ends in, and each rotator gets at most
:data:`UPDATE_MAILS_PER_RECIPIENT` of them per :data:`UPDATE_WINDOW`; one over the cap waits in the
outbox until the window ends (and is still replaced by a later change).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete
from sqlmodel import Session, col, select

from frontline.core import audit, ratelimit
from frontline.core.security import InvalidToken
from frontline.observations.redaction import redact
from frontline.observations.vocabulary import ACK_STATE_LABELS, ACK_STATE_SHORT_LABELS, ACK_STATES, category_label
from models import Department, Employee, Observation, OutboundMessage, utcnow

UPDATE_MAILS_PER_RECIPIENT = 10
UPDATE_WINDOW = timedelta(hours=1)
UPDATE_KEY = "observation-update"


def _allowed_numbers() -> tuple[str, ...]:
    """The policy's ``[redaction] allow`` (the company's own numbers), or none when no policy is readable
    here (a note is still redacted; the policy error is reported where the policy is loaded)."""
    from frontline.core.errors import PolicyError
    from frontline.observations.policy import current_policy

    try:
        return tuple(current_policy().redaction.allow)
    except PolicyError:
        return ()


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
        note, _counts = redact(note, _allowed_numbers())
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
        _tell_the_rotator(session, obs, oid, state, previous, note, now)
        changed.append(obs)
    return changed


def _tell_the_rotator(
    session: Session, obs: Observation, oid: int, state: str, previous: str | None, note: str | None, now: datetime
) -> None:
    """Queue the "your observation was marked ..." mail (nothing when the rotator has no address, when
    nothing changed, or when the rotator was already told this state), replacing the observation's
    update mail that has not gone out yet, within the per-recipient cap."""
    from frontline.core.templating import render_html, render_text
    from frontline.mail import compose, enqueue

    rotator = session.get(Employee, obs.rotator_id) if obs.rotator_id else None
    if rotator is None or not rotator.email or previous == state:
        return
    place = _withdraw_unsent_updates(session, oid)
    if _last_told_state(session, oid) == state:
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
    row = enqueue(session, message, kind="observation_update", idempotency_key=_update_key(session, oid, state))
    if row is None:
        return
    cap = ratelimit.key_for("update-mail", rotator.email)
    if place is not None:  # it replaces a mail that was counted: same place in line, nothing counted again
        row.next_attempt_at = place
    elif not ratelimit.take(session, cap, limit=UPDATE_MAILS_PER_RECIPIENT, window=UPDATE_WINDOW, now=now):
        row.next_attempt_at = ratelimit.window_end(session, cap, window=UPDATE_WINDOW) or now + UPDATE_WINDOW
    session.add(row)


def _update_rows(oid: int) -> ColumnElement[bool]:
    return col(OutboundMessage.idempotency_key).startswith(f"{UPDATE_KEY}:{oid}:")


def _withdraw_unsent_updates(session: Session, oid: int) -> datetime | None:
    """Delete the observation's update mails no sender has taken yet (their news is out of date); when
    they were due (their place in line), or None when there were none."""
    unsent = session.exec(
        select(OutboundMessage.id, OutboundMessage.next_attempt_at).where(
            _update_rows(oid), col(OutboundMessage.state) == "pending"
        )
    ).all()
    if not unsent:
        return None
    ids = [row_id for row_id, _due in unsent]
    session.execute(
        delete(OutboundMessage).where(col(OutboundMessage.id).in_(ids), col(OutboundMessage.state) == "pending")
    )
    return min(due for _id, due in unsent)


def _last_told_state(session: Session, oid: int) -> str | None:
    """The state named by the newest update mail of the observation that went out (or is going out)."""
    key = session.exec(
        select(OutboundMessage.idempotency_key)
        .where(_update_rows(oid), col(OutboundMessage.state).in_(("sending", "sent")))
        .order_by(col(OutboundMessage.id).desc())
    ).first()
    return key.split(":")[2] if key else None


def _update_key(session: Session, obs_id: int, state: str) -> str:
    """``observation-update:<id>:<state>`` the first time a state is mailed; a return to a state told
    before (planned -> won't fix -> planned) is ``...:<state>:<n>``, ``n`` = update mails kept so far."""
    key = f"{UPDATE_KEY}:{obs_id}:{state}"
    exists = session.exec(select(OutboundMessage.id).where(OutboundMessage.idempotency_key == key)).first()
    if exists is None:
        return key
    n = len(session.exec(select(OutboundMessage.id).where(_update_rows(obs_id))).all())
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
    """What an acknowledge link (``/ack/<token>``) opens. The link is bound to the recipient it was mailed
    to and works only while they still head the department or receive its digest. Raises
    :class:`~frontline.core.security.InvalidToken` with the reason otherwise (also for a link bound to
    nobody, as second escalations were mailed before links were bound to each recipient)."""
    if not isinstance(recipient, str) or not recipient.strip():
        raise InvalidToken(
            "this link is not bound to a person; use the link in your own escalation mail or the console"
        )
    obs = session.get(Observation, observation_id)
    if obs is None:
        raise InvalidToken("this observation no longer exists")
    target = ack_target(session, obs)
    if not receives_department_mail(target.department, recipient):
        raise InvalidToken("this link was sent to someone who no longer receives this department's escalations")
    return target
