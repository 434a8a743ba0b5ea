"""Urgent observations: the head of the target department is mailed at once (level 1, the rotator's
mentor in Cc); one nobody acknowledged within the policy's SLA (``observations.escalation_sla_hours``)
is mailed again, to the department's digest recipients and head (level 2), exactly once (outbox key
``escalation:<id>:<level>``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from email.headerregistry import Address
from typing import Any

from sqlmodel import Session, col, select

from frontline.core import audit
from frontline.observations.policy import current_policy
from frontline.observations.rotators import mentor_for
from frontline.observations.vocabulary import category_label
from models import Department, Employee, Observation, utcnow


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


def send_escalation(
    session: Session,
    obs: Observation,
    *,
    level: int,
    department: Department | None = None,
    rotator: Employee | None = None,
) -> bool:
    """Queue the escalation mail of ``level`` (1: the head at once; 2: digest recipients and head
    after the SLA) for an urgent observation. Returns False if that level was already queued, or when the
    department was deactivated by a roster import (its head lost access: the observation waits, unacknowledged,
    in ``frontline status`` for HR)."""
    from frontline.core.links import ack_url
    from frontline.core.templating import render_html, render_text
    from frontline.mail import compose, enqueue

    if obs.id is None:
        raise ValueError("only a stored observation can be escalated")
    department = department or session.get(Department, obs.target_department_id)
    if department is None:
        raise LookupError(f"observation #{obs.id} is addressed to a department that no longer exists")
    if not department.active:
        return False
    rotator = rotator or (session.get(Employee, obs.rotator_id) if obs.rotator_id else None)
    mentor = mentor_for(session, obs.rotation_id)
    to: list[str | Address] = list(escalation_recipients(department, level))
    cc = [mentor.email] if mentor and mentor.email.lower() not in {str(a).lower() for a in to} else []
    ctx = {
        "obs": obs,
        "level": level,
        "department": department,
        "rotator": rotator,
        "mentor": mentor,
        "category_label": category_label(obs.category),
        "ack_link": ack_url(obs.id, department.head_email if level == 1 else None),
        "sla_hours": current_policy().observations.escalation_sla_hours,
    }
    prefix = "Urgent" if level == 1 else "Still unacknowledged"
    subject = f"{prefix}: front-line observation #{obs.id} ({obs.product_area}, {category_label(obs.category)})"
    message = compose(
        to=to,
        cc=cc,
        subject=subject,
        text=render_text("email/escalation.txt", **ctx),
        html=render_html("email/escalation.html", **ctx),
        headers={"X-Frontline-Observation": str(obs.id)},
    )
    row = enqueue(session, message, kind="escalation", idempotency_key=f"escalation:{obs.id}:{level}")
    if row is None:
        return False
    obs.escalation_level = max(obs.escalation_level, level)
    obs.escalated_at = utcnow()
    session.add(obs)
    audit.record(
        session,
        actor="frontline" if level == 1 else "flow:escalate-overdue",
        action="observation.escalated",
        subject_type="observation",
        subject_id=obs.id,
        level=level,
        to=to,
        cc=cc,
    )
    return True


def overdue_observations(session: Session, as_of: datetime, sla_hours: float) -> list[Observation]:
    """Urgent observations nobody acknowledged within the SLA that were escalated only once."""
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


def escalate_overdue_observations(session: Session, as_of: datetime | None = None) -> list[int]:
    """Escalate every overdue urgent observation a second time (exactly once each); returns their ids."""
    as_of = as_of or utcnow()
    sla = current_policy().observations.escalation_sla_hours
    done = []
    for obs in overdue_observations(session, as_of, sla):
        if obs.id is not None and send_escalation(session, obs, level=2):
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
