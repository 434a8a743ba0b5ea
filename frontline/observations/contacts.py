"""Contacts handled: how many customer contacts each rotator handled per day, the denominator that turns
"12 customers mentioned it" into "12 of 480 contacts this week (2.5%)".

Recorded by the rotator on the observation page (one number for the day, optionally split by product
area) or posted by an integration (``POST /api/contacts``, e.g. the telephony or helpdesk system's
per-agent daily count). One row per (rotator, day): the latest record replaces the earlier one, so a
corrected number or a re-sent export never counts twice.

Shares are shown only where the base is large enough: :data:`MIN_CONTACTS_FOR_SHARE` contacts in the
week for a share of contacts, :data:`MIN_OBSERVATIONS_FOR_SHARE` observations for a share of observations.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlmodel import Session, col, func, select

from frontline.core import audit, clock
from frontline.core.policy import Policy
from models import ContactCount, Employee

MIN_CONTACTS_FOR_SHARE = 100  # "N of M contacts (x%)" needs M >= 100 contacts in the week
MIN_OBSERVATIONS_FOR_SHARE = 20  # "x% of observations" needs 20 observations in the base
MAX_CONTACTS_PER_DAY = 2000  # one person cannot handle more in a day: a larger number is a typo
MAX_DAYS_BACK = 62  # a day older than this cannot be recorded (the digest trend covers 8 weeks)


class ContactsIn(BaseModel):
    """One rotator's contacts on one day (``by_area`` optional: product area -> contacts)."""

    model_config = ConfigDict(extra="forbid")

    day: date
    contacts: int = Field(ge=0, le=MAX_CONTACTS_PER_DAY)
    by_area: dict[str, int] = Field(default_factory=dict)

    @field_validator("by_area")
    @classmethod
    def _non_negative(cls, value: dict[str, int]) -> dict[str, int]:
        bad = sorted(k for k, v in value.items() if v < 0)
        if bad:
            raise ValueError(f"negative count for {', '.join(bad)}")
        return {k: v for k, v in value.items() if v}


class ContactsRefused(ValueError):
    """The numbers cannot be recorded (``field`` names the field, the message says why)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def check_contacts(entry: ContactsIn, policy: Policy, today: date) -> None:
    """Raise :class:`ContactsRefused` for a day in the future or too long ago, an unknown product area,
    or areas adding up to more than the day's total."""
    if entry.day > today:
        raise ContactsRefused("day", f"{entry.day} is in the future")
    if entry.day < today - timedelta(days=MAX_DAYS_BACK):
        raise ContactsRefused("day", f"{entry.day} is more than {MAX_DAYS_BACK} days ago")
    unknown = sorted(set(entry.by_area) - set(policy.observations.product_areas))
    if unknown:
        raise ContactsRefused("by_area", f"unknown product area {', '.join(map(repr, unknown))}")
    if sum(entry.by_area.values()) > entry.contacts:
        raise ContactsRefused(
            "by_area", f"the areas add up to {sum(entry.by_area.values())}, more than {entry.contacts}"
        )


def record_contacts(
    session: Session,
    employee: Employee,
    entry: ContactsIn,
    *,
    policy: Policy,
    source: str,
    recorded_by: str,
    now: datetime | None = None,
) -> ContactCount:
    """Record ``employee``'s contacts for ``entry.day`` (replacing an earlier record of that day) and audit
    it. Raises :class:`ContactsRefused` (see :func:`check_contacts`)."""
    check_contacts(entry, policy, clock.today())
    if employee.id is None:
        raise ValueError("employee is not stored")
    row = session.exec(
        select(ContactCount).where(ContactCount.employee_id == employee.id, ContactCount.day == entry.day)
    ).first()
    previous = row.contacts if row else None
    if row is None:
        row = ContactCount(employee_id=employee.id, day=entry.day, contacts=entry.contacts)
    row.contacts, row.by_area, row.source = entry.contacts, dict(entry.by_area), source
    row.recorded_by, row.recorded_at = recorded_by[:320], now or clock.utcnow()
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=recorded_by,
        action="contacts.recorded",
        subject_type="employee",
        subject_id=employee.id,
        day=entry.day.isoformat(),
        contacts=entry.contacts,
        previous=previous,
        source=source,
    )
    return row


def contacts_on(session: Session, employee_id: int, day: date) -> ContactCount | None:
    return session.exec(
        select(ContactCount).where(ContactCount.employee_id == employee_id, ContactCount.day == day)
    ).first()


def weekly_contacts(session: Session, mondays: Sequence[date]) -> list[int]:
    """Contacts handled by all rotators in each week starting on ``mondays`` (same order)."""
    if not mondays:
        return []
    first, last = min(mondays), max(mondays) + timedelta(days=6)
    statement = (
        sa.select(col(ContactCount.day), func.sum(col(ContactCount.contacts)))
        .where(col(ContactCount.day) >= first, col(ContactCount.day) <= last)
        .group_by(col(ContactCount.day))
    )
    rows = session.connection().execute(statement).all()
    totals = [0] * len(mondays)
    for day, n in rows:
        for i, monday in enumerate(mondays):
            if monday <= day <= monday + timedelta(days=6):
                totals[i] += int(n or 0)
    return totals


def contacts_by_area(session: Session, monday: date) -> dict[str, int]:
    """Contacts of the week starting ``monday`` by product area, where rotators split their day by area."""
    rows = session.exec(
        select(ContactCount).where(col(ContactCount.day) >= monday, col(ContactCount.day) <= monday + timedelta(days=6))
    ).all()
    totals: dict[str, int] = {}
    for row in rows:
        for area, n in (row.by_area or {}).items():
            totals[area] = totals.get(area, 0) + int(n)
    return totals


def share_text(part: int, base: int, minimum: int = MIN_CONTACTS_FOR_SHARE, unit: str = "", suffix: str = "") -> str:
    """``"12 of 480 contacts this week (2.5%)"`` (``unit`` "contacts", ``suffix`` "this week"); without the
    percentage when ``base`` is below ``minimum``, and just the part when there is no base."""
    words = " ".join(w for w in (unit, suffix) if w)
    if base <= 0:
        return f"{part}"
    text = f"{part} of {base}" + (f" {words}" if words else "")
    if base < minimum:
        return text
    pct = 100 * part / base
    return f"{text} ({pct:.1f}%)" if pct < 10 else f"{text} ({pct:.0f}%)"


def record_contacts_by_token(
    session: Session,
    token_hash: str,
    employee_hr_id: str | None,
    entries: Sequence[ContactsIn],
    *,
    policy: Policy,
) -> tuple[Employee, list[ContactCount]]:
    """``POST /api/contacts``: record ``entries`` for the token's rotator (a rotator token; ``employee_hr_id``
    must match if given) or for the rotator an integration token names by HR id. Raises the intake's
    :class:`TokenRevoked`, :class:`WrongRotator`, :class:`UnknownEmployee`, :class:`RotatorInactive`, or
    :class:`ContactsRefused` (then nothing is recorded)."""
    from frontline.observations.intake import RotatorInactive, TokenRevoked, UnknownEmployee, WrongRotator
    from models import ApiToken

    token = session.exec(select(ApiToken).where(ApiToken.token_hash == token_hash)).first()
    if token is None or token.revoked_at is not None:
        raise TokenRevoked("unknown or revoked API token")
    if token.employee_id is not None:
        employee = session.get(Employee, token.employee_id)
        if employee_hr_id is not None and (employee is None or employee.employee_id != employee_hr_id):
            raise WrongRotator("this token records only its own rotator's contacts")
    else:
        if not employee_hr_id:
            raise UnknownEmployee("an integration token must name the rotator (HR employee id)", "missing")
        employee = session.exec(select(Employee).where(Employee.employee_id == employee_hr_id)).first()
        if employee is None:
            raise UnknownEmployee(f"no employee with id {employee_hr_id!r}")
    if employee is None or not employee.active:
        raise RotatorInactive("this rotator is no longer active")
    today = clock.today()
    for entry in entries:
        check_contacts(entry, policy, today)
    rows = [
        record_contacts(session, employee, e, policy=policy, source="api", recorded_by=f"api:{token.name}")
        for e in entries
    ]
    return employee, rows
