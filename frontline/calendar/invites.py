"""What to tell rotators and mentors, and when: calendar invites, updates, cancellations, reminders.

Invites (:func:`process_invites`), per rotation, comparing the rotation with what was last announced
(``Rotation.announced_state`` / ``announced_start`` / ``announced_mentor_id``):

==========================================  =====================================================
situation                                   what is queued
==========================================  =====================================================
never announced, starts within the window   REQUEST, SEQUENCE = ``Rotation.sequence`` (0)
start moved, mentor changed, or reinstated  REQUEST, same UID, SEQUENCE + 1
cancelled after being announced             CANCEL, same UID, SEQUENCE + 1, ``STATUS:CANCELLED``
nothing changed                             nothing
==========================================  =====================================================

The rotation invite goes to the rotator (all-day event, UID ``rotation-<id>@<sender domain>``). When the
mentor pairing has a check-in slot, a weekly check-in series (UID ``checkins-<id>@...``, same SEQUENCE)
goes to the rotator and to the mentor, one email each; a replaced mentor receives a CANCEL of the
series, and so does the rotator when no new series replaces it (no successor, or one without a slot).
A pairing without a check-in slot has no series to carry the news, so its mentor gets a plain mail
instead (``mentor:<rotation>:<sequence>:<mentor>`` when assigned, ``mentor-released:...`` when
replaced or the rotation is cancelled). Every email carries an idempotency key (``invite:<rotation>:<sequence>``,
``cancel:<rotation>:<sequence>``, ``checkins:<rotation>:<sequence>:<employee>``,
``checkins-cancel:<rotation>:<sequence>:<employee>``), so a re-run queues nothing twice.

Reminders (:func:`process_reminders`): ``reminder:<rotation>:<start>:<days>`` N days before the start
(``policy.reminders.days_before``; only the nearest due one is sent, so a late run does not send a
stale "in 7 days"; the key names the start date, so a rotation moved after its reminder is reminded
again before its new start), ``welcome:<rotation>`` in the first week, and ``nudge:<employee>:<ISO week>`` from
Thursday on to rotators without an observation since Monday of that week.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from frontline.calendar.ics import (
    AllDayEvent,
    ItipObject,
    Person,
    TimedEvent,
    checkins_uid,
    invite_message,
    organizer_from_settings,
    rotation_uid,
)
from frontline.core.templating import render_html, render_text
from frontline.mail import compose, enqueue
from frontline.mentors.checkins import CheckinSeries, checkin_series
from models import Employee, MentorPairing, Observation, Rotation, utcnow

ACTIVE = ("draft", "invited")
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


@dataclass
class Counts:
    requests: int = 0
    updates: int = 0
    cancels: int = 0
    checkin_requests: int = 0
    checkin_cancels: int = 0
    queued: int = 0
    unchanged: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)

    def add(self, other: Counts) -> None:
        for key, value in other.__dict__.items():
            setattr(self, key, getattr(self, key) + value)


def longdate(day: date) -> str:
    return f"{WEEKDAYS[day.weekday()]} {day.day} {day:%B %Y}"


# --- invites ----------------------------------------------------------------------------------------


def rotations_to_announce(session: Session, as_of: date, announce_weeks: int = 8) -> list[int]:
    """Ids of rotations that may need an invite, update or cancellation (cheap pre-filter)."""
    horizon = as_of + timedelta(weeks=announce_weeks)
    active = select(Rotation.id).where(Rotation.status.in_(ACTIVE), Rotation.start <= horizon, Rotation.end >= as_of)
    cancelled = select(Rotation.id).where(Rotation.status == "cancelled", Rotation.announced_state == "invited")
    # announced, then moved (possibly beyond the window): the rotator must hear about the new dates
    moved = select(Rotation.id).where(
        Rotation.status.in_(ACTIVE),
        Rotation.announced_state == "invited",
        Rotation.announced_start != Rotation.start,
        Rotation.end >= as_of,
    )
    ids = set(session.exec(active).all()) | set(session.exec(cancelled).all()) | set(session.exec(moved).all())
    return sorted(ids)


def _active_pairing(session: Session, rotation_id: int) -> MentorPairing | None:
    return session.exec(
        select(MentorPairing)
        .where(MentorPairing.rotation_id == rotation_id, MentorPairing.status == "active")
        .order_by(MentorPairing.id.desc())
    ).first()


def _person(e: Employee) -> Person:
    return Person(name=e.name, email=e.email)


@dataclass
class _Context:
    organizer: Person
    org_tz: ZoneInfo
    checkin_minutes: int
    stamp: datetime
    working_hours: tuple[int, int] = (9, 17)
    counts: Counts = field(default_factory=Counts)


def _queue(session: Session, ctx: _Context, msg, kind: str, key: str) -> bool:
    row = enqueue(session, msg, kind=kind, idempotency_key=key)
    if row is not None:
        ctx.counts.queued += 1
        return True
    return False


def _rotation_mail(
    session,
    ctx: _Context,
    rotation: Rotation,
    rotator: Employee,
    mentor: Employee | None,
    series: CheckinSeries | None,
    method: str,
    sequence: int,
    update: bool,
) -> bool:
    from frontline.core.links import observe_url

    weeks = ((rotation.end - rotation.start).days + 1) // 7
    event = AllDayEvent(
        uid=rotation_uid(rotation.id, ctx.organizer.email),
        summary="Customer-support rotation" + (f" (mentor: {mentor.name})" if mentor else ""),
        first_day=rotation.start,
        last_day=rotation.end,
        description=(
            f"Your {weeks}-week customer-support rotation."
            + (f" Mentor: {mentor.name} <{mentor.email}>." if mentor else "")
            + f" Observation form: {observe_url(rotator.id)}"
        ),
    )
    obj = ItipObject(method, event, sequence, ctx.organizer, [_person(rotator)])
    first, last = longdate(rotation.start), longdate(rotation.end)
    if method == "CANCEL":
        subject = f"Cancelled: your support rotation {first} to {last}"
    elif update:
        subject = f"Updated: your support rotation now {first} to {last}"
    else:
        subject = f"Your support rotation: {first} to {last}"
    context = dict(
        subject=subject,
        method=method,
        what="rotation",
        update=update,
        recipient=rotator,
        first_day=first,
        last_day=last,
        weeks=weeks,
        mentor=mentor,
        observe_link=observe_url(rotator.id),
        previous_first_day=longdate(rotation.announced_start) if rotation.announced_start else None,
        checkin_when=series.when if series else None,
        checkin_minutes=ctx.checkin_minutes,
    )
    msg = invite_message(
        obj,
        to=_person(rotator),
        subject=subject,
        stamp=ctx.stamp,
        text=render_text("email/invite.txt", **context),
        html=render_html("email/invite.html", **context),
    )
    key = f"{'cancel' if method == 'CANCEL' else 'invite'}:{rotation.id}:{sequence}"
    return _queue(session, ctx, msg, "invite", key)


def _checkin_mail(
    session,
    ctx: _Context,
    rotation: Rotation,
    rotator: Employee,
    mentor: Employee,
    series: CheckinSeries,
    recipient: Employee,
    method: str,
    sequence: int,
    update: bool,
    reason: str = "",
) -> bool:
    for_mentor = recipient.id == mentor.id
    other = rotator if for_mentor else mentor
    attendees = [_person(rotator), _person(mentor)] if method == "REQUEST" else [_person(recipient)]
    event = TimedEvent(
        uid=checkins_uid(rotation.id, ctx.organizer.email),
        summary=f"Support rotation check-in: {rotator.name} / {mentor.name}",
        start=series.first,
        duration=timedelta(minutes=series.minutes),
        description=f"Weekly check-in during {rotator.name}'s customer-support rotation "
        f"({longdate(rotation.start)} to {longdate(rotation.end)}).",
        weekly_count=series.count,
        overrides=series.overrides(f"{rotator.name} / {mentor.name}"),
    )
    obj = ItipObject(method, event, sequence, ctx.organizer, attendees)
    if method == "CANCEL":
        subject = f"Cancelled: check-ins with {other.name}"
    else:
        subject = (
            f"{'Updated: ' if update else ''}Weekly check-ins with {other.name} from {longdate(series.first.date())}"
        )
    context = dict(
        subject=subject,
        method=method,
        what="checkins",
        update=update,
        recipient=recipient,
        other=other,
        for_mentor=for_mentor,
        first_day=longdate(rotation.start),
        last_day=longdate(rotation.end),
        checkin_when=series.when,
        checkin_count=series.count,
        checkin_first=longdate(series.first.date()),
        checkin_last=longdate((series.first + timedelta(weeks=series.count - 1)).date()),
        checkin_kickoff=f"{longdate(series.kickoff.date())} at {series.kickoff:%H:%M}"
        if series.kickoff and series.count > 1
        else None,
        checkin_minutes=series.minutes,
        reason=reason,
    )
    msg = invite_message(
        obj,
        to=_person(recipient),
        subject=subject,
        stamp=ctx.stamp,
        text=render_text("email/invite.txt", **context),
        html=render_html("email/invite.html", **context),
    )
    prefix = "checkins-cancel" if method == "CANCEL" else "checkins"
    return _queue(session, ctx, msg, "invite", f"{prefix}:{rotation.id}:{sequence}:{recipient.id}")


def _mentor_mail(
    session,
    ctx: _Context,
    rotation: Rotation,
    rotator: Employee,
    mentor: Employee,
    sequence: int,
    assigned: bool,
    reason: str = "",
) -> bool:
    """Plain mail to a mentor when there is no check-in series to carry the news (pairing without a slot)."""
    first, last = longdate(rotation.start), longdate(rotation.end)
    subject = (
        f"You are mentoring {rotator.name} ({first} to {last})"
        if assigned
        else f"No longer mentoring {rotator.name} ({first} to {last})"
    )
    text = render_text(
        "email/mentor.txt",
        mentor=mentor,
        rotator=rotator,
        first_day=first,
        last_day=last,
        assigned=assigned,
        reason=reason,
    )
    msg = compose(to=_addr(mentor), subject=subject, text=text)
    prefix = "mentor" if assigned else "mentor-released"
    return _queue(session, ctx, msg, "mentor", f"{prefix}:{rotation.id}:{sequence}:{mentor.id}")


def process_invites(
    session: Session,
    rotation_ids: list[int],
    *,
    as_of: date,
    announce_weeks: int = 8,
    checkin_minutes: int = 30,
    working_hours: tuple[int, int] = (9, 17),
    org_tz: ZoneInfo | None = None,
) -> Counts:
    """Decide and queue invites for these rotations; updates the rotations. Caller commits."""
    if org_tz is None:
        from frontline.core.settings import get_settings

        org_tz = get_settings().tz
    ctx = _Context(
        organizer=organizer_from_settings(),
        org_tz=org_tz,
        checkin_minutes=checkin_minutes,
        stamp=utcnow(),
        working_hours=tuple(working_hours),
    )
    horizon = as_of + timedelta(weeks=announce_weeks)
    for rotation in session.exec(select(Rotation).where(Rotation.id.in_(rotation_ids)).order_by(Rotation.id)).all():
        _process_one(session, ctx, rotation, as_of, horizon)
    return ctx.counts


def _process_one(session: Session, ctx: _Context, rotation: Rotation, as_of: date, horizon: date) -> None:
    rotator = session.get(Employee, rotation.employee_id)
    pairing = _active_pairing(session, rotation.id)
    mentor = session.get(Employee, pairing.mentor_id) if pairing else None
    series = (
        checkin_series(rotation, pairing, mentor, ctx.checkin_minutes, ctx.org_tz, rotator, ctx.working_hours)
        if pairing and mentor
        else None
    )
    old_mentor = (
        session.get(Employee, rotation.announced_mentor_id) if rotation.announced_mentor_id is not None else None
    )

    if rotation.status == "cancelled":
        if rotation.announced_state != "invited":
            ctx.counts.unchanged += 1
            return
        sequence = rotation.sequence + 1
        told = rotation.announced_start or rotation.start  # cancel the dates the rotator was told
        announced = SimpleNamespace(
            id=rotation.id,
            start=told,
            end=told + (rotation.end - rotation.start),
            announced_start=rotation.announced_start,
        )
        _rotation_mail(session, ctx, announced, rotator, old_mentor, None, "CANCEL", sequence, update=True)
        ctx.counts.cancels += 1
        if old_mentor is not None:
            old_pairing_series = _series_for(session, rotation, old_mentor, ctx)
            if old_pairing_series is not None:
                for person in (rotator, old_mentor):
                    _checkin_mail(
                        session,
                        ctx,
                        announced,
                        rotator,
                        old_mentor,
                        old_pairing_series,
                        person,
                        "CANCEL",
                        sequence,
                        update=True,
                        reason="The support rotation was cancelled.",
                    )
                    ctx.counts.checkin_cancels += 1
            else:
                _mentor_mail(
                    session,
                    ctx,
                    announced,
                    rotator,
                    old_mentor,
                    sequence,
                    assigned=False,
                    reason="The support rotation was cancelled.",
                )
        rotation.sequence = sequence
        rotation.announced_state = "cancelled"
        rotation.updated_at = utcnow()
        session.add(rotation)
        return

    announced_and_moved = rotation.announced_state == "invited" and rotation.announced_start != rotation.start
    if rotation.status not in ACTIVE or rotation.end < as_of or (rotation.start > horizon and not announced_and_moved):
        ctx.counts.unchanged += 1
        return
    mentor_id = mentor.id if mentor else None
    if rotation.announced_state is None:
        sequence, update = rotation.sequence, False
    elif (
        rotation.announced_state == "cancelled"
        or rotation.announced_start != rotation.start
        or rotation.announced_mentor_id != mentor_id
    ):
        sequence, update = rotation.sequence + 1, True
    else:
        ctx.counts.unchanged += 1
        return

    _rotation_mail(session, ctx, rotation, rotator, mentor, series, "REQUEST", sequence, update)
    if update:
        ctx.counts.updates += 1
    else:
        ctx.counts.requests += 1
    if mentor is not None and series is not None:
        for person in (rotator, mentor):
            _checkin_mail(session, ctx, rotation, rotator, mentor, series, person, "REQUEST", sequence, update)
            ctx.counts.checkin_requests += 1
    elif mentor is not None and (rotation.announced_state != "invited" or rotation.announced_mentor_id != mentor_id):
        _mentor_mail(session, ctx, rotation, rotator, mentor, sequence, assigned=True)
    if rotation.announced_state == "invited" and old_mentor is not None and old_mentor.id != mentor_id:
        old_series = _series_for(session, rotation, old_mentor, ctx)
        if old_series is not None:
            _checkin_mail(
                session,
                ctx,
                rotation,
                rotator,
                old_mentor,
                old_series,
                old_mentor,
                "CANCEL",
                sequence,
                update=True,
                reason=f"{rotator.name} has a different mentor now.",
            )
            ctx.counts.checkin_cancels += 1
            if series is None or mentor is None:  # no new series replaces the rotator's copy of this UID
                _checkin_mail(
                    session,
                    ctx,
                    rotation,
                    rotator,
                    old_mentor,
                    old_series,
                    rotator,
                    "CANCEL",
                    sequence,
                    update=True,
                    reason=f"The check-ins with {old_mentor.name} are cancelled.",
                )
                ctx.counts.checkin_cancels += 1
        else:
            _mentor_mail(
                session,
                ctx,
                rotation,
                rotator,
                old_mentor,
                sequence,
                assigned=False,
                reason=f"{rotator.name} has a different mentor now." if mentor else "",
            )
    rotation.sequence = sequence
    rotation.announced_state = "invited"
    rotation.announced_start = rotation.start
    rotation.announced_mentor_id = mentor_id
    rotation.status = "invited"
    rotation.updated_at = utcnow()
    session.add(rotation)


def _series_for(session: Session, rotation: Rotation, mentor: Employee, ctx: _Context) -> CheckinSeries | None:
    """The check-in series that was announced with ``mentor`` (their latest pairing for this rotation)."""
    pairing = session.exec(
        select(MentorPairing)
        .where(MentorPairing.rotation_id == rotation.id, MentorPairing.mentor_id == mentor.id)
        .order_by(MentorPairing.id.desc())
    ).first()
    if pairing is None:
        return None
    start = rotation.announced_start or rotation.start
    announced = SimpleNamespace(start=start, end=start + (rotation.end - rotation.start))
    return checkin_series(
        announced,
        pairing,
        mentor,
        ctx.checkin_minutes,
        ctx.org_tz,
        session.get(Employee, rotation.employee_id),
        ctx.working_hours,
    )


# --- reminders --------------------------------------------------------------------------------------


def rotations_for_reminders(session: Session, as_of: date, days_before: list[int]) -> list[int]:
    ahead = as_of + timedelta(days=max(days_before or [0]))
    return sorted(
        session.exec(
            select(Rotation.id).where(
                Rotation.status.in_(ACTIVE),  # an unlocked announced rotation is a draft again
                Rotation.announced_state == "invited",
                Rotation.announced_start == Rotation.start,  # only the dates the rotator was told
                Rotation.start <= ahead,
                Rotation.end >= as_of,
            )
        ).all()
    )


def process_reminders(
    session: Session,
    rotation_ids: list[int],
    *,
    as_of: date,
    days_before: list[int],
    weekly_nudge: bool = True,
    checkin_minutes: int = 30,
    working_hours: tuple[int, int] = (9, 17),
    org_tz: ZoneInfo | None = None,
) -> dict[str, int]:
    """Queue the reminders, welcomes and nudges due on ``as_of`` for these rotations. Caller commits."""
    from frontline.core.links import observe_url

    if org_tz is None:
        from frontline.core.settings import get_settings

        org_tz = get_settings().tz
    counts = {"reminders": 0, "welcomes": 0, "nudges": 0, "queued": 0}
    monday = as_of - timedelta(days=as_of.weekday())
    week_start_utc = datetime.combine(monday, time(0), tzinfo=org_tz).astimezone(UTC)
    iso = as_of.isocalendar()
    week_label = f"{iso.year}-W{iso.week:02d}"
    for rotation in session.exec(select(Rotation).where(Rotation.id.in_(rotation_ids)).order_by(Rotation.id)).all():
        if (
            rotation.status not in ACTIVE
            or rotation.announced_state != "invited"
            or rotation.announced_start != rotation.start
        ):
            continue
        rotator = session.get(Employee, rotation.employee_id)
        if rotator is None or not rotator.active or (rotator.left_on is not None and rotator.left_on <= as_of):
            continue  # a leaver (the roster import keeps a rotation that already started) gets no more mail
        pairing = _active_pairing(session, rotation.id)
        mentor = session.get(Employee, pairing.mentor_id) if pairing else None
        series = (
            checkin_series(rotation, pairing, mentor, checkin_minutes, org_tz, rotator, tuple(working_hours))
            if pairing and mentor
            else None
        )
        base = dict(
            rotator=rotator,
            mentor=mentor,
            first_day=longdate(rotation.start),
            last_day=longdate(rotation.end),
            observe_link=observe_url(rotator.id),
            checkin_when=series.when if series else None,
        )
        due = [d for d in days_before if d > 0 and rotation.start - timedelta(days=d) <= as_of < rotation.start]
        if due:
            days = min(due)
            subject = f"Your support rotation starts {'tomorrow' if days == 1 else f'in {days} days'} ({longdate(rotation.start)})"
            msg = compose(
                to=_addr(rotator),
                subject=subject,
                text=render_text("email/reminder.txt", subject=subject, days=days, **base),
                html=render_html("email/reminder.html", subject=subject, days=days, **base),
            )
            if enqueue(
                session,
                msg,
                kind="reminder",
                idempotency_key=f"reminder:{rotation.id}:{rotation.start.isoformat()}:{days}",
            ):
                counts["reminders"] += 1
        if rotation.start <= as_of < rotation.start + timedelta(days=7):
            subject = "Welcome to the front line" + (f": meet your mentor {mentor.name}" if mentor else "")
            msg = compose(
                to=_addr(rotator),
                subject=subject,
                text=render_text("email/welcome.txt", subject=subject, **base),
                html=render_html("email/welcome.html", subject=subject, **base),
            )
            if enqueue(session, msg, kind="welcome", idempotency_key=f"welcome:{rotation.id}"):
                counts["welcomes"] += 1
        if weekly_nudge and as_of.weekday() >= 3 and rotation.start <= as_of <= rotation.end:
            wrote = session.exec(
                select(Observation.id)
                .where(Observation.rotator_id == rotator.id, Observation.created_at >= week_start_utc)
                .limit(1)
            ).first()
            if wrote is None:
                subject = f"What did customers struggle with this week? ({week_label})"
                msg = compose(
                    to=_addr(rotator),
                    subject=subject,
                    text=render_text("email/nudge.txt", subject=subject, week=week_label, **base),
                    html=render_html("email/nudge.html", subject=subject, week=week_label, **base),
                )
                if enqueue(session, msg, kind="nudge", idempotency_key=f"nudge:{rotator.id}:{week_label}"):
                    counts["nudges"] += 1
    counts["queued"] = counts["reminders"] + counts["welcomes"] + counts["nudges"]
    return counts


def _addr(e: Employee):
    from email.headerregistry import Address

    from frontline.calendar.ics import clean_name

    return Address(display_name=clean_name(e.name), addr_spec=e.email)


__all__ = [
    "CheckinSeries",
    "Counts",
    "checkin_series",
    "process_invites",
    "process_reminders",
    "rotations_for_reminders",
    "rotations_to_announce",
]
