"""Urgent observations: the head of the target department is mailed at once (level 1; the rotator's
mentor gets a copy for information); one nobody acknowledged within the policy's SLA
(``observations.escalation_sla_hours``) is mailed again, to the department's digest recipients and head
(level 2), exactly once.

**One mail per recipient**, each with an acknowledge link bound to that recipient
(:func:`frontline.core.links.ack_url`): it works only while they still head the department or receive
its digest, and records who acted. The mentor's copy has no link (mentors do not act for the
department). Outbox key ``escalation:<id>:<level>:<hash of the address>`` (``...:1:cc:<hash>`` for the
mentor's copy), so each mail is queued once.

**Per-recipient cap**: at most :data:`ESCALATION_MAILS_PER_RECIPIENT` escalation mails per recipient in
:data:`ESCALATION_WINDOW` (:mod:`frontline.core.ratelimit`), so a flood of urgent observations (many
rotators, or an integration token naming many) cannot bury a head's inbox. A mail over the cap is not
dropped: the observation keeps its lower ``escalation_level`` and the hourly ``escalate-overdue`` run
queues the missing mails as the cap allows."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from frontline.core import audit, ratelimit
from frontline.observations.policy import current_policy
from frontline.observations.rotators import mentor_for
from frontline.observations.vocabulary import category_label
from models import Department, Employee, Observation, OutboundMessage, utcnow

ESCALATION_MAILS_PER_RECIPIENT = 10
ESCALATION_WINDOW = timedelta(hours=1)


def escalation_recipients(department: Department, level: int) -> list[str]:
    """Level 1: the head; level 2: the head and the digest recipients (each address once)."""
    people = [department.head_email]
    if level >= 2:
        people += list(department.digest_recipients or [])
    seen: dict[str, str] = {}
    for addr in people:
        if addr and addr.strip().lower() not in seen:
            seen[addr.strip().lower()] = addr.strip()
    return list(seen.values())


def escalation_key(observation_id: int, level: int, address: str, *, copy: bool = False) -> str:
    """The outbox key of one recipient's escalation mail."""
    digest = hashlib.sha256(address.strip().lower().encode()).hexdigest()[:24]
    return f"escalation:{observation_id}:{level}:{'cc:' if copy else ''}{digest}"


def _already_queued(session: Session, key: str) -> bool:
    return session.exec(select(OutboundMessage.id).where(OutboundMessage.idempotency_key == key)).first() is not None


def _queue_one(session: Session, ctx: dict[str, Any], to: str, key: str, ack_link: str | None) -> None:
    from frontline.core.templating import render_html, render_text
    from frontline.mail import compose, enqueue

    obs = ctx["obs"]
    prefix = "Urgent" if ctx["level"] == 1 else "Still unacknowledged"
    subject = f"{prefix}: front-line observation #{obs.id} ({obs.product_area}, {category_label(obs.category)})"
    mail_ctx = {**ctx, "ack_link": ack_link}
    message = compose(
        to=to,
        subject=subject,
        text=render_text("email/escalation.txt", **mail_ctx),
        html=render_html("email/escalation.html", **mail_ctx),
        headers={"X-Frontline-Observation": str(obs.id)},
    )
    enqueue(session, message, kind="escalation", idempotency_key=key)


def send_escalation(
    session: Session,
    obs: Observation,
    *,
    level: int,
    department: Department | None = None,
    rotator: Employee | None = None,
    now: datetime | None = None,
) -> bool:
    """Queue the escalation mails of ``level`` (1: the head at once, the mentor a copy; 2: digest
    recipients and head after the SLA) for an urgent observation, one per recipient, within the
    per-recipient cap. Returns True when this call completed the level (every mail of it queued, some
    now); False when they all were queued before, or when some wait for the cap (the observation then
    keeps its lower level, and the next ``escalate-overdue`` run tries again). Returns False too when the
    department was deactivated by a roster import (its head lost access: the observation waits,
    unacknowledged, in ``frontline status`` for HR)."""
    from frontline.core.links import ack_url

    if obs.id is None:
        raise ValueError("only a stored observation can be escalated")
    now = now or utcnow()
    department = department or session.get(Department, obs.target_department_id)
    if department is None:
        raise LookupError(f"observation #{obs.id} is addressed to a department that no longer exists")
    if not department.active:
        return False
    rotator = rotator or (session.get(Employee, obs.rotator_id) if obs.rotator_id else None)
    mentor = mentor_for(session, obs.rotation_id)
    recipients = escalation_recipients(department, level)
    ctx = {
        "obs": obs,
        "level": level,
        "department": department,
        "rotator": rotator,
        "mentor": mentor,
        "category_label": category_label(obs.category),
        "sla_hours": current_policy().observations.escalation_sla_hours,
    }
    mails: list[tuple[str, str, str | None]] = [
        (to, escalation_key(obs.id, level, to), ack_url(obs.id, to)) for to in recipients
    ]
    if level == 1 and mentor and mentor.email and mentor.email.lower() not in {r.lower() for r in recipients}:
        mails.append((mentor.email, escalation_key(obs.id, level, mentor.email, copy=True), None))
    queued, deferred = [], []
    for to, key, link in mails:
        if _already_queued(session, key):
            continue
        cap = ratelimit.key_for("escalation-mail", to)
        if not ratelimit.take(session, cap, limit=ESCALATION_MAILS_PER_RECIPIENT, window=ESCALATION_WINDOW, now=now):
            deferred.append(to)
            continue
        _queue_one(session, ctx, to, key, link)
        queued.append(to)
    if queued or deferred:
        audit.record(
            session,
            actor="frontline" if level == 1 else "flow:escalate-overdue",
            action="observation.escalated" if queued else "observation.escalation_deferred",
            subject_type="observation",
            subject_id=obs.id,
            level=level,
            to=queued,
            deferred=len(deferred),  # how many recipients are over the cap (addresses stay out of the log)
        )
    if queued:
        _tell_the_channel(session, obs, department, level)
    if deferred:
        return False
    if obs.escalation_level < level:
        obs.escalation_level = level
        obs.escalated_at = now
        session.add(obs)
    return bool(queued)


def _tell_the_channel(session: Session, obs: Observation, department: Department, level: int) -> None:
    """The department's chat channel (policy ``[chat.departments]``) hears of the escalation too."""
    from frontline.chat.service import chat_safe, notify
    from frontline.core.settings import get_settings

    policy = current_policy()
    what = "Urgent observation" if level == 1 else "Still unacknowledged after the SLA"
    body = (
        f"{chat_safe(obs.text)[:600]}\n\nArea: {obs.product_area} · {category_label(obs.category)} · impact "
        f"{obs.impact}/5 · {obs.customer_count} customer(s)\n"
        f"{get_settings().base_url}/console/observations/{obs.id}"
    )
    notify(
        session,
        policy.chat,
        f"department:{department.name}",
        key=f"escalation:{obs.id}:{level}",
        title=f"{what} for {department.name} (#{obs.id})",
        body=body,
    )


def overdue_observations(session: Session, as_of: datetime, sla_hours: float) -> list[Observation]:
    """Urgent observations nobody acknowledged within the SLA that were escalated only once (or not yet)."""
    cutoff = as_of - timedelta(hours=sla_hours)
    return list(
        session.exec(
            select(Observation)
            .where(col(Observation.urgent) == True)  # noqa: E712 - SQL expression
            .where(Observation.ack_state == "new", Observation.escalation_level < 2)
            .where(Observation.created_at <= cutoff)
            .order_by(col(Observation.id))
        ).all()
    )


def deferred_observations(session: Session, as_of: datetime, sla_hours: float) -> list[Observation]:
    """Urgent observations within the SLA whose first escalation waits for the per-recipient cap."""
    cutoff = as_of - timedelta(hours=sla_hours)
    return list(
        session.exec(
            select(Observation)
            .where(col(Observation.urgent) == True)  # noqa: E712 - SQL expression
            .where(Observation.ack_state == "new", Observation.escalation_level == 0)
            .where(Observation.created_at > cutoff)
            .order_by(col(Observation.id))
        ).all()
    )


def escalate_overdue_observations(session: Session, as_of: datetime | None = None) -> list[int]:
    """Escalate every overdue urgent observation a second time (exactly once each), and queue first
    escalations that waited for the per-recipient cap; returns the ids escalated now."""
    as_of = as_of or utcnow()
    sla = current_policy().observations.escalation_sla_hours
    done = []
    for obs in overdue_observations(session, as_of, sla):
        if obs.id is not None and send_escalation(session, obs, level=2, now=as_of):
            done.append(obs.id)
    for obs in deferred_observations(session, as_of, sla):
        if obs.id is not None and send_escalation(session, obs, level=1, now=as_of):
            done.append(obs.id)
    return done


def escalation_summary(session: Session, observation_ids: list[int]) -> list[dict[str, Any]]:
    """One row per escalated observation (id, department, when, product area) for a run's report."""
    rows = []
    for oid in observation_ids:
        obs = session.get(Observation, oid)
        if obs is None:
            continue
        department = session.get(Department, obs.target_department_id)
        rows.append(
            {
                "observation": oid,
                "department": department.name if department else "",
                "created_at": obs.created_at.isoformat(),
                "product_area": obs.product_area,
            }
        )
    return rows
