"""SQLModel tables: the single source of truth.

Conventions: surrogate integer primary keys; stable business keys (``Employee.employee_id``,
``OutboundMessage.idempotency_key``) carry unique constraints; times are timezone-aware UTC
``datetime`` (SQLModel refuses naive ones); calendar days are ``date``. List-valued fields are JSON arrays.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from frontline.core.clock import utcnow


class Department(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, unique=True, index=True)
    head_name: str = Field(max_length=200)
    head_email: str = Field(max_length=320)
    digest_recipients: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    max_away_fraction: float | None = Field(default=None, ge=0, le=1)
    digest_when_empty: bool = False
    active: bool = Field(
        default=True, description="False once the department is missing from a roster import (history is kept)"
    )
    deactivated_on: date | None = Field(default=None, description="Day of the import that left the department out")
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Employee(SQLModel, table=True):
    __table_args__ = (Index("ix_employee_department_active", "department_id", "active"),)

    id: int | None = Field(default=None, primary_key=True)
    employee_id: str = Field(max_length=100, unique=True, index=True, description="Stable external id (HR system)")
    name: str = Field(max_length=300)
    email: str = Field(max_length=320, unique=True, index=True)
    department_id: int = Field(foreign_key="department.id")
    title: str = Field(default="", max_length=300)
    hire_date: date
    timezone: str = Field(max_length=64)
    country: str = Field(max_length=2)
    languages: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    skills: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    is_mentor: bool = False
    mentor_capacity: int = Field(default=0, ge=0)
    last_rotation: date | None = None
    manager_email: str | None = Field(
        default=None, max_length=320, description="Told when this person's rotation is planned, moved or cancelled"
    )
    active: bool = True
    left_on: date | None = None
    exempt_until: date | None = None
    exempt_reason: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Absence(SQLModel, table=True):
    """A day span someone cannot rotate. ``source`` says where it came from: ``roster`` (absences.csv, replaced
    by every import that has that file) or ``calendar:<feed name>`` (an out-of-office calendar feed, replaced by
    each sync of that feed); one source never touches another's rows."""

    __table_args__ = (UniqueConstraint("employee_id", "start", "end", "source", name="uq_absence_span"),)

    id: int | None = Field(default=None, primary_key=True)
    employee_id: int = Field(foreign_key="employee.id", index=True)
    start: date
    end: date = Field(description="Last day of the absence (inclusive)")
    reason: str = Field(default="", max_length=200)
    source: str = Field(default="roster", max_length=120, index=True)


class WeekPreference(SQLModel, table=True):
    """A week an employee would like to be on rotation (``preferred``) or would rather not (``unavailable``).
    Soft: the planner honours it below fairness and a new hire's lateness (absences are the hard version).
    ``source`` says who stated it: ``roster`` rows are replaced by each import that has the column, other
    sources (``request``: the employee's own change request) are kept until their writer replaces them."""

    __table_args__ = (UniqueConstraint("employee_id", "week", "kind", "source", name="uq_week_preference"),)

    id: int | None = Field(default=None, primary_key=True)
    employee_id: int = Field(foreign_key="employee.id", index=True)
    week: date = Field(description="Monday of the week")
    kind: str = Field(max_length=16, description="preferred | unavailable")
    source: str = Field(default="roster", max_length=16, description="roster | request | ...")
    created_at: datetime = Field(default_factory=utcnow)


class Rotation(SQLModel, table=True):
    """One person's support rotation: ``length_weeks`` weeks from Monday ``start`` to Sunday ``end``."""

    __table_args__ = (Index("ix_rotation_start_status", "start", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    employee_id: int = Field(foreign_key="employee.id", index=True)
    start: date = Field(description="Monday the rotation starts (organisation time zone)")
    end: date = Field(description="Last day (Sunday) of the rotation, inclusive")
    kind: str = Field(max_length=16, description="new_hire | cycle")
    status: str = Field(default="draft", max_length=16, description="draft | invited | cancelled | done")
    locked: bool = False
    due: date = Field(description="Monday of the week the rotation was due")
    sequence: int = Field(default=0, description="iCalendar SEQUENCE of the last announced version")
    announced_start: date | None = Field(default=None, description="Start date last sent to the rotator")
    announced_state: str | None = Field(
        default=None, max_length=16, description="None (never announced) | invited | cancelled: what invites last said"
    )
    announced_mentor_id: int | None = Field(
        default=None, foreign_key="employee.id", description="Mentor named in the last invite (to cancel if replaced)"
    )
    change_reason: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class PlanRun(SQLModel, table=True):
    """The outcome of one planner run (what was decided, how good it is, who could not be placed)."""

    id: int | None = Field(default=None, primary_key=True)
    started_at: datetime = Field(default_factory=utcnow)
    horizon_start: date
    horizon_weeks: int
    dry_run: bool = False
    planned: int = 0
    objective: float | None = None
    lower_bound: float | None = None
    solve_seconds: float | None = None
    summary: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    unplaced: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class MentorPairing(SQLModel, table=True):
    __table_args__ = (Index("ix_pairing_mentor_status", "mentor_id", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    rotation_id: int = Field(foreign_key="rotation.id", index=True)
    mentor_id: int = Field(foreign_key="employee.id")
    status: str = Field(
        default="active",
        max_length=16,
        description="proposed (held for HR review) | active | replaced | cancelled | declined (by the mentor) "
        "| rejected (by HR)",
    )
    score: float | None = None
    checkin_weekday: int | None = Field(default=None, ge=0, le=6, description="0 = Monday")
    checkin_time_utc: str | None = Field(default=None, max_length=5, description="HH:MM in UTC")
    sequence: int = 0
    reason: str | None = Field(default=None, sa_column=Column(Text))
    response: str | None = Field(
        default=None, max_length=16, description="the mentor's answer to the signed link: accepted | declined"
    )
    responded_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class PairingGap(SQLModel, table=True):
    """Why a planned rotation has no mentor, as the last pairing run that tried it found (one row per
    rotation; removed once it is paired). The console's "Without a mentor" list shows it."""

    __tablename__ = "pairing_gap"

    id: int | None = Field(default=None, primary_key=True)
    rotation_id: int = Field(foreign_key="rotation.id", unique=True)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    relaxation: str | None = Field(default=None, sa_column=Column(Text))
    updated_at: datetime = Field(default_factory=utcnow)


class ChangeRequest(SQLModel, table=True):
    """A rotator's or a department head's request to change one rotation, queued for HR
    (:mod:`frontline.rotations.requests`)."""

    __tablename__ = "change_request"
    __table_args__ = (Index("ix_change_request_status", "status", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    rotation_id: int = Field(foreign_key="rotation.id", index=True)
    employee_id: int = Field(foreign_key="employee.id", description="whose rotation")
    kind: str = Field(max_length=16, description="another_week | cannot_do | move (a head moving one of their people)")
    requester_email: str = Field(max_length=320)
    requester_role: str = Field(max_length=16, description="rotator | head")
    reason: str = Field(sa_column=Column(Text, nullable=False))
    preferred_weeks: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False), description="Mondays (ISO dates), best first"
    )
    status: str = Field(default="pending", max_length=16, description="pending | approved | declined")
    decided_by: str | None = Field(default=None, max_length=320, description="an HR email, 'cli', or 'policy'")
    decided_at: datetime | None = None
    decision_note: str | None = Field(default=None, sa_column=Column(Text))
    outcome: str | None = Field(default=None, sa_column=Column(Text), description="what changed, as told")
    created_at: datetime = Field(default_factory=utcnow)


class InviteReply(SQLModel, table=True):
    """One RSVP reply (iTIP ``METHOD:REPLY``) to a rotation invite, read from the organiser mailbox
    (:mod:`frontline.calendar.replies`). Unique by the mail's Message-ID, so a re-read applies nothing twice;
    the rotation's answer is its newest reply (highest SEQUENCE, then DTSTAMP)."""

    __tablename__ = "invite_reply"

    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(max_length=300, unique=True, description="Message-ID of the reply mail")
    rotation_id: int = Field(foreign_key="rotation.id", index=True)
    attendee: str = Field(max_length=320, description="the replying attendee's e-mail (the rotator)")
    partstat: str = Field(max_length=16, description="ACCEPTED | DECLINED | TENTATIVE")
    sequence: int = Field(default=0, description="SEQUENCE of the invite the reply answers")
    comment: str | None = Field(default=None, sa_column=Column(Text))
    replied_at: datetime = Field(description="DTSTAMP of the reply (when the attendee answered)")
    request_id: int | None = Field(
        default=None, foreign_key="change_request.id", description="the change request a decline opened"
    )
    recorded_at: datetime = Field(default_factory=utcnow)


class PairingFeedback(SQLModel, table=True):
    """One answer to the wrap-up survey of a pairing: by the rotator or by the mentor (one each; a
    second submission replaces the first)."""

    __table_args__ = (UniqueConstraint("pairing_id", "role", name="uq_feedback_pairing_role"),)

    id: int | None = Field(default=None, primary_key=True)
    pairing_id: int = Field(foreign_key="mentorpairing.id", index=True)
    role: str = Field(max_length=16, description="rotator | mentor")
    rotation_usefulness: int = Field(ge=1, le=5, description="How useful was the rotation (1-5)")
    usefulness: int = Field(ge=1, le=5, description="How useful was the pairing (1-5)")
    comment: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Observation(SQLModel, table=True):
    __table_args__ = (
        Index("ix_observation_created", "created_at"),
        Index("ix_observation_target_created", "target_department_id", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    client_request_id: str | None = Field(default=None, max_length=100, unique=True)
    rotator_id: int | None = Field(default=None, foreign_key="employee.id", index=True)
    rotation_id: int | None = Field(default=None, foreign_key="rotation.id")
    created_at: datetime = Field(default_factory=utcnow)
    text: str = Field(sa_column=Column(Text, nullable=False), description="What happened (PII redacted)")
    suggestion: str | None = Field(default=None, sa_column=Column(Text))
    impact: int = Field(ge=1, le=5)
    customer_count: int = Field(default=1, ge=0)
    product_area: str = Field(max_length=100)
    category: str = Field(max_length=32)
    target_department_id: int = Field(foreign_key="department.id")
    routed_by: str = Field(
        default="rotator",
        max_length=16,
        description="who chose target_department: rotator | router (learnt suggestion) | table (policy) | head "
        "(re-routed) | legacy (before routing was recorded). The router learns from rotator and head only.",
    )
    urgent: bool = False
    source: str = Field(default="web", max_length=16, description="web | api | cli | import")
    redactions: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    theme: str | None = Field(default=None, max_length=200)
    ack_state: str = Field(default="new", max_length=16, description="new | acknowledged | planned | fixed | wont_fix")
    ack_by: str | None = Field(default=None, max_length=320)
    ack_at: datetime | None = None
    ack_note: str | None = Field(default=None, sa_column=Column(Text))
    escalated_at: datetime | None = None
    escalation_level: int = 0


class ObservationEmbedding(SQLModel, table=True):
    """The sentence embedding of an observation's text (frontline.digests.embeddings), computed once and
    reused by every theme grouping; ``model`` names the model, so a new model re-embeds."""

    id: int | None = Field(default=None, primary_key=True)
    observation_id: int = Field(foreign_key="observation.id", unique=True, index=True)
    model: str = Field(max_length=100)
    vector: bytes = Field(sa_column=Column(LargeBinary, nullable=False), description="float32 little-endian")


class ApiToken(SQLModel, table=True):
    """A bearer token for the JSON API: per rotator (``employee_id`` set) or per integration (``None``)."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    employee_id: int | None = Field(default=None, foreign_key="employee.id", index=True)
    token_hash: str = Field(max_length=128, unique=True, description="sha256 of the secret (frontline.core.security)")
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None


class ConsoleUser(SQLModel, table=True):
    """A person allowed into the HR web console as HR admin (department heads and rotators need no row:
    their role comes from ``Department.head_email`` / ``Employee.email``)."""

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True, index=True, description="lower-case sign-in address")
    role: str = Field(default="hr", max_length=16, description="hr")
    added_by: str = Field(default="cli", max_length=320)
    created_at: datetime = Field(default_factory=utcnow)
    disabled_at: datetime | None = None


class ConsoleSession(SQLModel, table=True):
    """A signed-in console session, held on the server: the cookie carries its id (``sid``, stored here
    only as a SHA-256); signing out or expiry ends it, so a copied cookie stops working. ``signin_nonce``
    names the magic link that started it and is unique: a link signs in once, even when it is posted
    several times at the same moment."""

    __tablename__ = "console_session"

    id: int | None = Field(default=None, primary_key=True)
    sid_hash: str = Field(max_length=64, unique=True, description="sha256 of the session id in the cookie")
    email: str = Field(max_length=320, index=True)
    signin_nonce: str = Field(max_length=100, unique=True, description="the sign-in link it was started with")
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime = Field(index=True)
    ended_at: datetime | None = Field(default=None, description="signed out (or ended by an admin)")


class RateLimitBucket(SQLModel, table=True):
    """One rate limit counter (:mod:`frontline.core.ratelimit`): ``count`` uses since ``window_start``.
    ``key`` names what is limited and for whom, e.g. ``signin-ip:203.0.113.9`` (addresses are hashed)."""

    __tablename__ = "rate_limit_bucket"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200, unique=True)
    window_start: datetime = Field(index=True)
    count: int = 0


class OutboundMessage(SQLModel, table=True):
    """The mail outbox: every message is written here first, then delivered."""

    __table_args__ = (Index("ix_outbound_state_next", "state", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=300, unique=True)
    kind: str = Field(max_length=32, index=True)
    recipient: str = Field(max_length=320)
    subject: str = Field(default="", max_length=500)
    message_id: str = Field(max_length=300)
    mime: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    state: str = Field(default="pending", max_length=16, description="pending | sending | sent | failed")
    lease_token: str | None = Field(
        default=None, max_length=64, description="While sending: the token of the sender that holds the row"
    )
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(default_factory=utcnow)
    next_attempt_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None


class CalendarFeedToken(SQLModel, table=True):
    """A secret calendar subscription URL: one person's feed, or the team feed when ``employee_id`` is None.
    Only the SHA-256 of the token is stored; the token itself is shown once."""

    id: int | None = Field(default=None, primary_key=True)
    employee_id: int | None = Field(default=None, foreign_key="employee.id", index=True)
    token_hash: str = Field(max_length=64, unique=True)
    label: str = Field(default="", max_length=200)
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None


class DigestOptOut(SQLModel, table=True):
    """A digest recipient who unsubscribed from one department's weekly digest (one-click link)."""

    __table_args__ = (UniqueConstraint("department_id", "email", name="uq_digest_optout"),)

    id: int | None = Field(default=None, primary_key=True)
    department_id: int = Field(foreign_key="department.id", index=True)
    email: str = Field(max_length=320)
    created_at: datetime = Field(default_factory=utcnow)


class ContactCount(SQLModel, table=True):
    """Customer contacts one rotator handled on one day (the denominator of "N of M contacts"): recorded
    on the observation form or posted by an integration (``POST /api/contacts``); the latest record of a
    (rotator, day) replaces the earlier one. ``by_area`` optionally splits the day's contacts by product area."""

    __table_args__ = (UniqueConstraint("employee_id", "day", name="uq_contactcount_employee_day"),)

    id: int | None = Field(default=None, primary_key=True)
    employee_id: int = Field(foreign_key="employee.id", index=True)
    day: date = Field(index=True)
    contacts: int = Field(ge=0)
    by_area: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    source: str = Field(default="web", max_length=16, description="web | api | helpdesk")
    recorded_by: str = Field(default="", max_length=320, description="the rotator, or the API token's name")
    recorded_at: datetime = Field(default_factory=utcnow)


class HelpdeskEvent(SQLModel, table=True):
    """One ticket event received from a helpdesk (``POST /api/helpdesk/<source>``), keyed by what the helpdesk
    sends again when it retries: (source, ticket id, event key: e.g. the ticket's ``updated_at``). A retried
    event finds its row and changes nothing. ``outcome``: ``recorded`` (a rotator's ticket: draft and count) or
    ``ignored`` (``reason`` says why: not an employee, not on rotation that day). The helpdesk's count of a
    rotator's day is the number of distinct tickets of their ``recorded`` events on that ``day``."""

    __table_args__ = (
        UniqueConstraint("source", "ticket_id", "event_key", name="uq_helpdeskevent_key"),
        Index("ix_helpdeskevent_employee_day", "employee_id", "day"),
        Index("ix_helpdeskevent_source_day", "source", "day"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=50, description="the policy's [helpdesk.sources.<name>]")
    ticket_id: str = Field(max_length=100)
    event_key: str = Field(max_length=300)
    received_at: datetime = Field(default_factory=utcnow)
    day: date = Field(description="the organisation's day the ticket was handled (its updated_at)")
    employee_id: int | None = Field(default=None, foreign_key="employee.id")
    outcome: str = Field(max_length=16, description="recorded | ignored")
    reason: str = Field(default="", max_length=300)


class ObservationDraft(SQLModel, table=True):
    """An observation prefilled from a rotator's helpdesk ticket, waiting for the rotator: ``open`` until they
    submit it from their observation page (``submitted``, ``observation_id`` set) or discard it
    (``discarded``). Drafts are never observations: digests, routing and escalation never see them. The text
    is the ticket's subject and description with customer PII redacted; one draft per ticket."""

    __table_args__ = (UniqueConstraint("source", "ticket_id", name="uq_observationdraft_ticket"),)

    id: int | None = Field(default=None, primary_key=True)
    rotator_id: int = Field(foreign_key="employee.id", index=True)
    source: str = Field(max_length=50)
    ticket_id: str = Field(max_length=100)
    day: date
    text: str = Field(sa_column=Column(Text, nullable=False), description="subject and description, PII redacted")
    product_area: str | None = Field(default=None, max_length=100)
    redactions: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="open", max_length=16, description="open | submitted | discarded")
    observation_id: int | None = Field(default=None, foreign_key="observation.id")
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ChatMessage(SQLModel, table=True):
    """A chat notification waiting for delivery through Apprise (:mod:`frontline.chat`): queued in the
    transaction of the event it tells about, sent by the ``deliver-chat`` job. ``target`` names the policy's
    channel (``hr`` or ``department:<name>``); the channel's URL (a secret) is read from the policy when sending,
    never stored here."""

    __tablename__ = "chat_message"
    __table_args__ = (Index("ix_chat_message_state_due", "state", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=200, unique=True)
    target: str = Field(max_length=250)
    title: str = Field(max_length=300)
    body: str = Field(sa_column=Column(Text, nullable=False))
    state: str = Field(default="pending", max_length=16, description="pending | sent | failed | dropped")
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(default_factory=utcnow)
    next_attempt_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None


class ConnectorStatus(SQLModel, table=True):
    """The last success and the last error of one connector (e.g. ``calendar:team-ooo``), for ``frontline status``.
    Errors are recorded in their own transaction, so a failed sync that wrote nothing still leaves its trace."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120, unique=True, index=True)
    last_success_at: datetime | None = None
    last_success: str = Field(default="", max_length=500, description="what the last success did, in a line")
    last_error_at: datetime | None = None
    last_error: str = Field(default="", max_length=500)


class AuditEvent(SQLModel, table=True):
    __table_args__ = (Index("ix_audit_subject", "subject_type", "subject_id"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    actor: str = Field(max_length=320, description="who: a user email, 'cli', or a flow name")
    action: str = Field(max_length=100, index=True)
    subject_type: str | None = Field(default=None, max_length=50)
    subject_id: str | None = Field(default=None, max_length=100)
    reason: str | None = Field(default=None, sa_column=Column(Text))
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class ScimToken(SQLModel, table=True):
    """A bearer token of an identity provider's SCIM client (``frontline scim token create``); only its hash is kept."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    token_hash: str = Field(max_length=128, unique=True, description="sha256 of the secret (frontline.core.security)")
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None


class ScimResource(SQLModel, table=True):
    """A SCIM User or Group as the identity provider last wrote it (never a password). A User is linked to the
    employee it provisions; ``held_since`` is set while its deactivation waits for HR's confirmation (the
    leaver safety rule), during which the employee stays active."""

    __table_args__ = (UniqueConstraint("resource_type", "user_name_key", name="uq_scim_user_name"),)

    id: int | None = Field(default=None, primary_key=True)
    resource_type: str = Field(max_length=16, index=True, description="User or Group")
    scim_id: str = Field(max_length=64, unique=True, index=True)
    user_name_key: str | None = Field(default=None, max_length=320, description="case-folded userName (Users)")
    external_id: str | None = Field(default=None, max_length=320, index=True)
    employee_id: int | None = Field(default=None, foreign_key="employee.id", index=True)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    version: int = 1
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    held_since: datetime | None = Field(default=None, description="deactivation held for HR confirmation since")
