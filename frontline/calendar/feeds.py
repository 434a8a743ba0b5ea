"""Subscription feeds: a personal or team ``.ics`` URL (``/calendar/<token>.ics``) that calendar apps poll.

Tokens are random; only their hash is stored. The feed is METHOD-less (no attendees) and built by
:func:`frontline.calendar.ics.feed_calendar`.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, or_, select

from frontline.calendar.ics import AllDayEvent, TimedEvent, clean_name, feed_calendar, sender_domain
from frontline.core import audit
from frontline.core.security import hash_secret
from frontline.mentors.checkins import CheckinSeries, checkin_series
from models import CalendarFeedToken, Employee, MentorPairing, Rotation, utcnow

FEED_PAST = timedelta(weeks=8)
FEED_AHEAD = timedelta(days=366)


def feed_url(token: str) -> str:
    from frontline.core.settings import get_settings

    return f"{get_settings().base_url}/calendar/{token}.ics"


# --- tokens -------------------------------------------------------------------------------------


def create_feed_token(session: Session, *, employee_id: int | None, label: str = "") -> tuple[CalendarFeedToken, str]:
    """A new feed token (``employee_id`` None = the team feed). Returns (row, secret token); only the
    token's hash is stored, so the token can be shown once and never again."""
    token = secrets.token_urlsafe(32)
    row = CalendarFeedToken(employee_id=employee_id, token_hash=hash_secret(token), label=label[:200])
    session.add(row)
    session.flush()
    return row, token


def find_feed_token(session: Session, token: str) -> CalendarFeedToken | None:
    """The live (not revoked) token row for a presented token, or None."""
    if not token or len(token) > 200:
        return None
    row = session.exec(select(CalendarFeedToken).where(CalendarFeedToken.token_hash == hash_secret(token))).first()
    if row is None or row.revoked_at is not None:
        return None
    return row


def find_employee(session: Session, id_or_email: str) -> Employee | None:
    """The employee with this external id (HR system id) or email, or None."""
    return session.exec(
        select(Employee).where(or_(Employee.employee_id == id_or_email, Employee.email == id_or_email))
    ).first()


def create_feed(session: Session, *, employee_id: int | None, label: str, actor: str) -> tuple[CalendarFeedToken, str]:
    """:func:`create_feed_token`, audited (``calendar.feed.create``)."""
    row, token = create_feed_token(session, employee_id=employee_id, label=label)
    audit.record(
        session,
        actor=actor,
        action="calendar.feed.create",
        subject_type="calendar_feed",
        subject_id=row.id,
        employee_id=employee_id,
        team=employee_id is None,
    )
    return row, token


def revoke_feed(session: Session, feed_id: int, *, actor: str) -> tuple[CalendarFeedToken | None, bool]:
    """Revoke feed ``feed_id`` (its URL answers 404 from then on), audited. Returns the row (None when
    there is no such feed) and whether this call revoked it (False: it was revoked before, and keeps
    that date)."""
    row = session.get(CalendarFeedToken, feed_id)
    if row is None or row.revoked_at is not None:
        return row, False
    row.revoked_at = utcnow()
    session.add(row)
    audit.record(session, actor=actor, action="calendar.feed.revoke", subject_type="calendar_feed", subject_id=feed_id)
    return row, True


def list_feeds(session: Session) -> list[dict[str, Any]]:
    """Every feed with its owner and state (never the secret, which is not stored)."""
    rows = session.exec(select(CalendarFeedToken).order_by(col(CalendarFeedToken.id))).all()
    out = []
    for r in rows:
        who = session.get(Employee, r.employee_id) if r.employee_id else None
        out.append(
            {
                "id": r.id,
                "for": who.email if who else "(team)",
                "label": r.label,
                "created": f"{r.created_at:%Y-%m-%d}",
                "state": f"revoked {r.revoked_at:%Y-%m-%d}" if r.revoked_at else "active",
            }
        )
    return out


# --- the feed -----------------------------------------------------------------------------------


@dataclass
class _Feed:
    """The events of one feed as they are collected: from ``lo`` to ``hi`` (days), UIDs in ``domain``."""

    lo: date
    hi: date
    domain: str
    checkin_minutes: int = 30
    working_hours: tuple[int, int] = (9, 17)
    items: list[AllDayEvent | TimedEvent] = field(default_factory=list)
    sequences: dict[str, int] = field(default_factory=dict)

    def in_window(self) -> tuple[ColumnElement[bool], ...]:
        """Rotations that are not cancelled and overlap the window."""
        return (col(Rotation.status) != "cancelled", col(Rotation.end) >= self.lo, col(Rotation.start) <= self.hi)

    def add_rotation(self, rot: Rotation, who: Employee | None) -> None:
        uid = f"feed-rotation-{rot.id}@{self.domain}"
        tentative = " (tentative)" if rot.status == "draft" else ""
        title = f"Support rotation: {clean_name(who.name)}" if who is not None else "Customer-support rotation"
        self.items.append(AllDayEvent(uid, title + tentative, rot.start, rot.end))
        self.sequences[uid] = rot.sequence

    def add_checkins(self, rot: Rotation, rotator: Employee, mentor: Employee, series: CheckinSeries) -> None:
        uid = f"feed-checkins-{rot.id}@{self.domain}"
        names = f"{clean_name(rotator.name)} / {clean_name(mentor.name)}"
        self.items.append(
            TimedEvent(
                uid,
                f"Check-in: {names}",
                series.first,
                timedelta(minutes=series.minutes),
                weekly_count=series.count,
                overrides=series.overrides(names),
            )
        )
        self.sequences[uid] = rot.sequence


def _open_feed(today: date) -> _Feed:
    """An empty feed around ``today`` with the policy's check-in length and working hours (the defaults
    when the policy cannot be read: a feed must still answer)."""
    from frontline.core.policy import PolicyError, load_policy
    from frontline.core.settings import get_settings

    feed = _Feed(lo=today - FEED_PAST, hi=today + FEED_AHEAD, domain=sender_domain(get_settings().mail_from))
    try:
        mentoring = load_policy().mentoring
    except PolicyError:
        return feed
    start, end = mentoring.working_hours
    feed.checkin_minutes, feed.working_hours = mentoring.checkin_minutes, (start, end)
    return feed


def _add_team(session: Session, feed: _Feed) -> None:
    """Every rotation in the window, named after its rotator."""
    team = (
        select(Rotation, Employee)
        .join(Employee, col(Employee.id) == col(Rotation.employee_id))
        .where(*feed.in_window())
        .order_by(col(Rotation.start), col(Rotation.id))
    )
    for rot, who in session.exec(team).all():
        feed.add_rotation(rot, who)


def _add_person(session: Session, feed: _Feed, person: Employee) -> None:
    """The person's own rotations, and the check-in series of every pairing they are in (either side)."""
    from frontline.core.clock import org_tz

    own = select(Rotation).where(*feed.in_window(), Rotation.employee_id == person.id).order_by(col(Rotation.start))
    for rot in session.exec(own).all():
        feed.add_rotation(rot, None)
    pairings: Sequence[tuple[MentorPairing, Rotation]] = session.exec(
        select(MentorPairing, Rotation)
        .join(Rotation, col(Rotation.id) == col(MentorPairing.rotation_id))
        .where(MentorPairing.status == "active", *feed.in_window())
        .where(or_(MentorPairing.mentor_id == person.id, Rotation.employee_id == person.id))
    ).all()
    for pairing, rot in pairings:
        mentor = session.get(Employee, pairing.mentor_id)
        rotator = session.get(Employee, rot.employee_id)
        if mentor is None or rotator is None:
            continue
        series = checkin_series(
            rot, pairing, mentor, feed.checkin_minutes, org_tz(), rotator=rotator, hours=feed.working_hours
        )
        if series is not None:
            feed.add_checkins(rot, rotator, mentor, series)


def feed_ics(session: Session, row: CalendarFeedToken, *, today: date) -> bytes | None:
    """The feed for a token row: that person's rotations and check-ins (as rotator or mentor), or every
    rotation for the team feed, from 8 weeks before ``today`` to a year after. None when the person no
    longer exists or has left."""
    feed = _open_feed(today)
    if row.employee_id is None:
        name = "Frontline: all support rotations"
        _add_team(session, feed)
    else:
        person = session.get(Employee, row.employee_id)
        if person is None or not person.active:
            return None
        name = f"Frontline: {clean_name(person.name)}"
        _add_person(session, feed, person)
    return feed_calendar(name, feed.items, sequences=feed.sequences).to_ical()


def feed_for_token(session: Session, token: str, *, today: date) -> bytes | None:
    """The feed a presented token opens on ``today``, or None (unknown, revoked, or its person has left)."""
    row = find_feed_token(session, token)
    return feed_ics(session, row, today=today) if row is not None else None
