"""Helpdesk intake: a ticket event posted by Zendesk, Freshdesk or Help Scout (``POST /api/helpdesk/<source>``)
becomes, for a ticket a rotator handled, an observation draft for that rotator and a contact in their day's count.

Rules (the README's *Helpdesk intake* says them for IT):

* **Who**: the ticket's assignee, by the helpdesk agent id mapped in the source's ``agents`` (agent id -> HR
  employee id), else by e-mail (as in employees.csv, case-insensitive), must be an active employee with a
  rotation covering the ticket's day (its ``updated_at``, in the organisation's time zone). Anyone else's
  ticket is acknowledged (202) and ignored, and counted as ignored.
* **Once**: each event is stored in :class:`HelpdeskEvent` under (source, ticket id, event key); a retry of the
  same event finds it and changes nothing (200 ``duplicate``), also when two retries race (unique key).
* **Draft**: one per ticket (the first event of a rotator's ticket), the ticket's subject and description
  with customer PII redacted (:mod:`frontline.observations.redaction`); it waits for the rotator.
* **Count**: a rotator's helpdesk count of a day is the number of distinct tickets of their recorded events
  that day. It is written to the day's :class:`ContactCount` (source ``helpdesk``) unless the rotator (or an
  API integration) recorded that day: a number entered by a person is never replaced by the webhook.
* **All or nothing**: the event, draft, count, audit event and the connector's success are written in one
  transaction; a refused event (bad signature, stale timestamp, malformed payload) writes nothing but the
  connector's last error (its own transaction), shown by ``frontline status``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from frontline.core import audit, clock
from frontline.core.policy import HelpdeskSource, Policy
from frontline.observations.contacts import MAX_CONTACTS_PER_DAY, ContactsIn, ContactsRefused, record_contacts
from frontline.observations.helpdesk_payload import (
    HTML_BODIES,
    HelpdeskRefused,
    Ticket,
    not_a_ticket_event,
    product_area,
    read_ticket,
    verify_signature,
)
from frontline.observations.redaction import allow_list, redact
from frontline.operations.connectors import record_failure, record_success
from models import ContactCount, Employee, HelpdeskEvent, ObservationDraft, Rotation, session_scope

CONTACTS_SOURCE = "helpdesk"


@dataclass
class Answer:
    """What the webhook answers: ``status`` (200 recorded or duplicate, 202 ignored) and the JSON body."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)


def connector_name(source: str) -> str:
    return f"helpdesk:{source}"


def source_of(policy: Policy, name: str) -> HelpdeskSource:
    source = policy.helpdesk.sources.get(name)
    if source is None:
        raise HelpdeskRefused(404, f"no helpdesk source {name!r} in the policy ([helpdesk.sources.{name}])")
    return source


def receive(engine: Engine, policy: Policy, name: str, headers: Mapping[str, str], body: bytes) -> Answer:
    """Take one ticket event of source ``name`` (``headers`` with lower-case names, the raw ``body``). Raises
    :class:`HelpdeskRefused` for an unknown source (404, nothing recorded), a bad or stale signature (401) or
    a malformed payload (400); those two record the connector's error and nothing else."""
    source = source_of(policy, name)
    now = clock.utcnow()
    try:
        verify_signature(source, headers, body, now, policy.helpdesk.replay_window_seconds)
        if (why := not_a_ticket_event(source.kind, headers)) is not None:
            return Answer(202, {"result": "ignored", "reason": why})
        ticket = read_ticket(source.mapping(), headers, body, source.kind in HTML_BODIES)
    except HelpdeskRefused as exc:
        for attempt in range(2):  # two first refusals at once both create the status row: the second updates it
            try:
                with session_scope(engine) as session:
                    record_failure(session, connector_name(name), f"HTTP {exc.status}: {exc}", now)
                break
            except IntegrityError:
                if attempt == 1:
                    raise
        raise
    for attempt in range(3):
        try:
            with session_scope(engine) as session:
                return take(session, policy, name, source, ticket, now)
        except IntegrityError:
            # A concurrent request committed a row we were inserting since we looked: the same event (then
            # this one is a duplicate), or the ticket's draft, the day's count or the connector's status row
            # (then taking the event again finds them and updates them).
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _seen(session: Session, name: str, ticket: Ticket) -> HelpdeskEvent | None:
    return session.exec(
        select(HelpdeskEvent).where(
            HelpdeskEvent.source == name,
            HelpdeskEvent.ticket_id == ticket.ticket_id,
            HelpdeskEvent.event_key == ticket.event_key,
        )
    ).first()


def take(session: Session, policy: Policy, name: str, source: HelpdeskSource, ticket: Ticket, now: datetime) -> Answer:
    """The database part of :func:`receive`, in the caller's transaction."""
    if _seen(session, name, ticket) is not None:
        return Answer(200, {"result": "duplicate", "ticket_id": ticket.ticket_id})
    employee, reason = rotator_of(session, source, ticket)
    event = HelpdeskEvent(
        source=name,
        ticket_id=ticket.ticket_id,
        event_key=ticket.event_key,
        received_at=now,
        day=ticket.day,
        employee_id=employee.id if employee else None,
        outcome="recorded" if employee else "ignored",
        reason=reason[:300],
    )
    session.add(event)
    session.flush()  # the unique key: a concurrent retry fails here and is answered as a duplicate
    if employee is None:
        answer = Answer(202, {"result": "ignored", "ticket_id": ticket.ticket_id, "reason": reason})
        detail = f"ticket {ticket.ticket_id} ignored: {reason}"
    else:
        draft = draft_for(session, policy, name, source, ticket, employee, now)
        contacts = count_day(session, policy, name, employee, ticket)
        answer = Answer(
            200,
            {
                "result": "recorded",
                "ticket_id": ticket.ticket_id,
                "employee_id": employee.employee_id,
                "day": ticket.day.isoformat(),
                "draft_id": draft.id,
                "contacts": contacts,
            },
        )
        detail = f"ticket {ticket.ticket_id}: draft #{draft.id} for {employee.employee_id}"
    audit.record(
        session,
        actor=connector_name(name),
        action="helpdesk.event",
        subject_type="employee" if employee else "helpdesk",
        subject_id=employee.id if employee else name,
        ticket_id=ticket.ticket_id,
        outcome=event.outcome,
        reason=reason or None,
    )
    totals = outcome_totals(session, name, ticket.day)
    record_success(
        session,
        connector_name(name),
        f"{detail} ({ticket.day.isoformat()}: {totals.get('recorded', 0)} recorded, {totals.get('ignored', 0)} ignored)",
        now,
    )
    return answer


def rotator_of(session: Session, source: HelpdeskSource, ticket: Ticket) -> tuple[Employee | None, str]:
    """The rotator who handled the ticket, or None and why not."""
    employee = None
    if ticket.assignee_id and ticket.assignee_id in source.agents:
        hr_id = source.agents[ticket.assignee_id]
        employee = session.exec(select(Employee).where(Employee.employee_id == hr_id)).first()
        if employee is None:
            return None, f"agent {ticket.assignee_id} is mapped to {hr_id}, who is not in the roster"
    elif ticket.assignee_email:
        employee = session.exec(
            select(Employee).where(func.lower(col(Employee.email)) == ticket.assignee_email.lower())
        ).first()
        if employee is None:
            return None, "the assignee is not an employee (no such e-mail in the roster)"
    else:
        if ticket.assignee_id:
            return None, f"agent {ticket.assignee_id} is not in the source's agents and has no e-mail"
        return None, "the ticket has no assignee"
    if not employee.active:
        return None, f"{employee.employee_id} is no longer active"
    rotation = session.exec(
        select(Rotation.id).where(
            Rotation.employee_id == employee.id,
            Rotation.status != "cancelled",
            col(Rotation.start) <= ticket.day,
            col(Rotation.end) >= ticket.day,
        )
    ).first()
    if rotation is None:
        return None, f"{employee.employee_id} is not on a support rotation on {ticket.day.isoformat()}"
    return employee, ""


def draft_for(
    session: Session,
    policy: Policy,
    name: str,
    source: HelpdeskSource,
    ticket: Ticket,
    employee: Employee,
    now: datetime,
) -> ObservationDraft:
    """The ticket's draft: created by its first recorded event, kept as it is by later ones."""
    draft = session.exec(
        select(ObservationDraft).where(ObservationDraft.source == name, ObservationDraft.ticket_id == ticket.ticket_id)
    ).first()
    if draft is not None:
        return draft
    raw = ticket.subject if not ticket.description else f"{ticket.subject}\n\n{ticket.description}".strip()
    text, counts = redact(raw or f"Ticket {ticket.ticket_id}", allow_list(tuple(policy.redaction.allow)))
    limit = policy.observations.max_text_chars
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    assert employee.id is not None
    draft = ObservationDraft(
        rotator_id=employee.id,
        source=name,
        ticket_id=ticket.ticket_id,
        day=ticket.day,
        text=text,
        product_area=product_area(source, ticket.tags),
        redactions=counts,
        created_at=now,
        updated_at=now,
    )
    session.add(draft)
    session.flush()
    return draft


def helpdesk_count(session: Session, employee_id: int, day: date) -> int:
    """Distinct tickets of ``employee_id``'s recorded events on ``day`` (all sources)."""
    rows = session.exec(
        select(HelpdeskEvent.source, HelpdeskEvent.ticket_id)
        .where(HelpdeskEvent.employee_id == employee_id, HelpdeskEvent.day == day, HelpdeskEvent.outcome == "recorded")
        .distinct()
    ).all()
    return len(rows)


def count_day(session: Session, policy: Policy, name: str, employee: Employee, ticket: Ticket) -> int | None:
    """Write the rotator's helpdesk count of the ticket's day to the day's contact count, unless a person (or
    an API integration) recorded that day, or the day is outside what contact counts accept. The count
    written, else None."""
    assert employee.id is not None
    # One writer of a rotator's count at a time: the row lock (PostgreSQL; SQLite has one writer anyway) makes
    # a concurrent event of theirs wait until ours commits, and its count then includes ours. FOR NO KEY UPDATE
    # (key_share): it must not conflict with the key-share locks the foreign keys of our inserts took.
    session.exec(select(Employee.id).where(Employee.id == employee.id).with_for_update(key_share=True)).first()
    existing = session.exec(
        select(ContactCount).where(ContactCount.employee_id == employee.id, ContactCount.day == ticket.day)
    ).first()
    if existing is not None and existing.source != CONTACTS_SOURCE:
        return None  # the rotator's own number wins
    n = min(helpdesk_count(session, employee.id, ticket.day), MAX_CONTACTS_PER_DAY)
    if existing is not None and existing.contacts == n:
        return n
    try:
        record_contacts(
            session,
            employee,
            ContactsIn(day=ticket.day, contacts=n),
            policy=policy,
            source=CONTACTS_SOURCE,
            recorded_by=connector_name(name),
        )
    except ContactsRefused:  # a day in the future or too long ago: the event and draft are still kept
        return None
    return n


def outcome_totals(session: Session, name: str, day: date) -> dict[str, int]:
    """Events of source ``name`` on ``day`` by outcome (``recorded``, ``ignored``)."""
    rows = session.exec(
        select(HelpdeskEvent.outcome, func.count())
        .where(HelpdeskEvent.source == name, HelpdeskEvent.day == day)
        .group_by(HelpdeskEvent.outcome)
    ).all()
    return {outcome: int(n) for outcome, n in rows}
