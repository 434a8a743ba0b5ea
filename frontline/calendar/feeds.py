"""Subscription feeds: a personal or team ``.ics`` URL (``/calendar/<token>.ics``) that calendar apps poll.

Tokens are random; only their hash is stored. The feed is METHOD-less (no attendees) and built by
:func:`frontline.calendar.ics.feed_calendar`.
"""

from __future__ import annotations

from datetime import date, timedelta

from frontline.calendar.ics import AllDayEvent, TimedEvent, clean_name, feed_calendar, sender_domain
from frontline.core import clock

FEED_PAST = timedelta(weeks=8)
FEED_AHEAD = timedelta(days=366)


def feed_url(token: str) -> str:
    from frontline.core.settings import get_settings

    return f"{get_settings().base_url}/calendar/{token}.ics"


def create_feed_token(session, *, employee_id: int | None, label: str = "") -> tuple[object, str]:
    """A new feed token (``employee_id`` None = the team feed). Returns (row, secret token); only the
    token's hash is stored, so the token can be shown once and never again."""
    import secrets

    from frontline.core.security import hash_secret
    from models import CalendarFeedToken

    token = secrets.token_urlsafe(32)
    row = CalendarFeedToken(employee_id=employee_id, token_hash=hash_secret(token), label=label[:200])
    session.add(row)
    session.flush()
    return row, token


def find_feed_token(session, token: str):
    """The live (not revoked) token row for a presented token, or None."""
    from sqlmodel import select

    from frontline.core.security import hash_secret
    from models import CalendarFeedToken

    if not token or len(token) > 200:
        return None
    row = session.exec(select(CalendarFeedToken).where(CalendarFeedToken.token_hash == hash_secret(token))).first()
    if row is None or row.revoked_at is not None:
        return None
    return row


def feed_ics(session, row, *, today: date | None = None) -> bytes | None:
    """The feed for a token row: that person's rotations and check-ins (as rotator or mentor), or every
    rotation for the team feed, from 8 weeks back to a year ahead. None when the person no longer exists
    or has left."""
    from sqlmodel import select

    from frontline.core.policy import PolicyError, load_policy
    from frontline.core.settings import get_settings
    from frontline.mentors.checkins import checkin_series
    from models import Employee, MentorPairing, Rotation

    settings = get_settings()
    today = today or clock.today()
    lo, hi = today - FEED_PAST, today + FEED_AHEAD
    domain = sender_domain(settings.mail_from)
    try:
        mentoring = load_policy().mentoring
        minutes, hours = mentoring.checkin_minutes, tuple(mentoring.working_hours)
    except PolicyError:
        minutes, hours = 30, (9, 17)
    window = select(Rotation).where(Rotation.status != "cancelled", Rotation.end >= lo, Rotation.start <= hi)
    items: list[AllDayEvent | TimedEvent] = []
    sequences: dict[str, int] = {}

    def add_rotation(rot: Rotation, who: Employee | None) -> None:
        uid = f"feed-rotation-{rot.id}@{domain}"
        tentative = " (tentative)" if rot.status == "draft" else ""
        title = f"Support rotation: {clean_name(who.name)}" if who is not None else "Customer-support rotation"
        items.append(AllDayEvent(uid, title + tentative, rot.start, rot.end))
        sequences[uid] = rot.sequence

    if row.employee_id is None:
        name = "Frontline: all support rotations"
        team = (
            select(Rotation, Employee)
            .join(Employee, Employee.id == Rotation.employee_id)
            .where(Rotation.status != "cancelled", Rotation.end >= lo, Rotation.start <= hi)
            .order_by(Rotation.start, Rotation.id)
        )
        for rot, who in session.exec(team).all():
            add_rotation(rot, who)
    else:
        person = session.get(Employee, row.employee_id)
        if person is None or not person.active:
            return None
        name = f"Frontline: {clean_name(person.name)}"
        for rot in session.exec(window.where(Rotation.employee_id == person.id).order_by(Rotation.start)).all():
            add_rotation(rot, None)
        pairings = session.exec(
            select(MentorPairing, Rotation)
            .join(Rotation, Rotation.id == MentorPairing.rotation_id)
            .where(
                MentorPairing.status == "active",
                Rotation.status != "cancelled",
                Rotation.end >= lo,
                Rotation.start <= hi,
            )
            .where((MentorPairing.mentor_id == person.id) | (Rotation.employee_id == person.id))
        ).all()
        for pairing, rot in pairings:
            mentor = session.get(Employee, pairing.mentor_id)
            rotator = session.get(Employee, rot.employee_id)
            series = (
                checkin_series(rot, pairing, mentor, minutes, settings.tz, rotator=rotator, hours=hours)
                if mentor
                else None
            )
            if series is None:
                continue
            uid = f"feed-checkins-{rot.id}@{domain}"
            names = f"{clean_name(rotator.name)} / {clean_name(mentor.name)}"
            items.append(
                TimedEvent(
                    uid,
                    f"Check-in: {names}",
                    series.first,
                    timedelta(minutes=series.minutes),
                    weekly_count=series.count,
                    overrides=series.overrides(names),
                )
            )
            sequences[uid] = rot.sequence
    return feed_calendar(name, items, sequences=sequences).to_ical()
