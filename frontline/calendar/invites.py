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
replaced or the rotation is cancelled). When the roster names the rotator's manager (``manager_email``),
the manager gets one plain mail per change of the dates (announced, moved, reinstated, cancelled; not a
mentor change), ``manager:<rotation>:<sequence>``. Times in the text are each recipient's own local time
(the .ics keeps the mentor's TZID). Every email carries an idempotency key (``invite:<rotation>:<sequence>``,
``cancel:<rotation>:<sequence>``, ``checkins:<rotation>:<sequence>:<employee>``,
``checkins-cancel:<rotation>:<sequence>:<employee>``), so a re-run queues nothing twice.

Reminders (:func:`process_reminders`): ``reminder:<rotation>:<start>:<days>`` N days before the start
(``policy.reminders.days_before``; only the nearest due one is sent, so a late run does not send a
stale "in 7 days"; the key names the start date, so a rotation moved after its reminder is reminded
again before its new start), ``welcome:<rotation>`` in the first week, and ``nudge:<employee>:<ISO week>`` from
Thursday on to rotators without an observation since Monday of that week.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from frontline.calendar.ics import (
    AllDayEvent,
    ItipObject,
    Person,
    TimedEvent,
    checkins_uid,
    clean_name,
    invite_message,
    organizer_from_settings,
    rotation_uid,
)
from frontline.core import clock
from frontline.core.links import observe_url, pairing_url, request_url
from frontline.core.policy import Chat
from frontline.core.templating import render_html, render_text
from frontline.mail import address, compose, enqueue_many
from frontline.mail.outbox import queued_keys
from frontline.mentors.checkins import CheckinSeries, checkin_series, longdate, zone
from models import Employee, MentorPairing, Observation, Rotation, utcnow

ACTIVE = ("draft", "invited")


@dataclass
class Counts:
    requests: int = 0
    updates: int = 0
    cancels: int = 0
    checkin_requests: int = 0
    checkin_cancels: int = 0
    manager_notices: int = 0
    queued: int = 0
    unchanged: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)

    def add(self, other: Counts) -> None:
        for key, value in other.__dict__.items():
            setattr(self, key, getattr(self, key) + value)


# --- invites ----------------------------------------------------------------------------------------


def working_hours_pair(hours: Sequence[int]) -> tuple[int, int]:
    """Local working hours as ``(start, end)`` (a Prefect task parameter may arrive as a list)."""
    start, end = hours
    return int(start), int(end)


def rotations_to_announce(session: Session, as_of: date, announce_weeks: int = 8) -> list[int]:
    """Ids of rotations that may need an invite, update or cancellation (cheap pre-filter)."""
    horizon = as_of + timedelta(weeks=announce_weeks)
    rotation_id, status = col(Rotation.id), col(Rotation.status)
    active = select(rotation_id).where(status.in_(ACTIVE), Rotation.start <= horizon, Rotation.end >= as_of)
    cancelled = select(rotation_id).where(status == "cancelled", Rotation.announced_state == "invited")
    # announced, then moved (possibly beyond the window): the rotator must hear about the new dates
    moved = select(rotation_id).where(
        status.in_(ACTIVE),
        Rotation.announced_state == "invited",
        col(Rotation.announced_start) != Rotation.start,
        Rotation.end >= as_of,
    )
    ids = set(session.exec(active).all()) | set(session.exec(cancelled).all()) | set(session.exec(moved).all())
    return sorted(i for i in ids if i is not None)


def _rotations(session: Session, rotation_ids: list[int]) -> Sequence[Rotation]:
    return session.exec(select(Rotation).where(col(Rotation.id).in_(rotation_ids)).order_by(col(Rotation.id))).all()


def _employee(session: Session, employee_id: int) -> Employee:
    employee = session.get(Employee, employee_id)
    if employee is None:  # employees are never deleted (leavers are marked), so a rotation always has one
        raise LookupError(f"no employee with id {employee_id}")
    return employee


def _person(e: Employee) -> Person:
    return Person(name=e.name, email=e.email)


def _addr(e: Employee) -> Address:
    return address(clean_name(e.name), e.email)


@dataclass(frozen=True)
class _Dates:
    """The rotation as a mail speaks of it: its own dates, or (for a cancellation) the dates the rotator
    was told (``announced_start``), over the same length."""

    id: int
    start: date
    end: date
    previous_start: date | None  # the start the rotator was last told, if any

    @classmethod
    def current(cls, rotation: Rotation) -> _Dates:
        assert rotation.id is not None
        return cls(rotation.id, rotation.start, rotation.end, rotation.announced_start)

    @classmethod
    def as_told(cls, rotation: Rotation) -> _Dates:
        assert rotation.id is not None
        told = rotation.announced_start or rotation.start
        return cls(rotation.id, told, told + (rotation.end - rotation.start), rotation.announced_start)


@dataclass
class _Context:
    organizer: Person
    org_tz: ZoneInfo
    checkin_minutes: int
    stamp: datetime
    working_hours: tuple[int, int] = (9, 17)
    counts: Counts = field(default_factory=Counts)
    # the batch's mail, queued at the end in one go (frontline.mail.enqueue_many), in this order
    pending: list[tuple[EmailMessage, str, str]] = field(default_factory=list)
    # every pairing of the batch's rotations, newest first, and everyone their mail concerns (see _preload)
    pairings: dict[int, list[MentorPairing]] = field(default_factory=dict)
    people: list[Employee] = field(default_factory=list)


def _queue(session: Session, ctx: _Context, msg: EmailMessage, kind: str, key: str) -> None:
    ctx.pending.append((msg, kind, key))


def _flush(session: Session, ctx: _Context) -> None:
    kinds = {key: kind for _msg, kind, key in ctx.pending}
    queued = enqueue_many(session, ctx.pending)
    ctx.counts.queued += len(queued)
    ctx.counts.manager_notices += sum(1 for key in queued if kinds[key] == "manager")
    ctx.pending.clear()


def _preload(session: Session, rotations: Sequence[Rotation]) -> tuple[dict[int, list[MentorPairing]], list[Employee]]:
    """Every pairing of these rotations (newest first, by rotation), and everyone their mail concerns
    loaded into the session, in two queries: the per-rotation ``session.get(Employee, ...)`` calls are then
    answered from the session instead of a query each. The caller keeps the returned people for as long
    as it looks them up: the session holds its objects weakly, so unreferenced ones would be dropped and
    each ``session.get`` would be a query again."""
    ids = [r.id for r in rotations if r.id is not None]
    by_rotation: dict[int, list[MentorPairing]] = {}
    if not ids:
        return by_rotation, []
    pairings = session.exec(
        select(MentorPairing).where(col(MentorPairing.rotation_id).in_(ids)).order_by(col(MentorPairing.id).desc())
    ).all()
    for pairing in pairings:
        by_rotation.setdefault(pairing.rotation_id, []).append(pairing)
    people = {r.employee_id for r in rotations} | {p.mentor_id for p in pairings}
    people |= {r.announced_mentor_id for r in rotations if r.announced_mentor_id is not None}
    return by_rotation, list(session.exec(select(Employee).where(col(Employee.id).in_(people))).all())


def _queue_invite(
    session: Session, ctx: _Context, obj: ItipObject, recipient: Employee, context: dict[str, Any], key: str
) -> None:
    """Queue one iMIP invite mail: the iTIP object with the text and HTML of ``email/invite.*``."""
    msg = invite_message(
        obj,
        to=_person(recipient),
        subject=context["subject"],
        stamp=ctx.stamp,
        text=render_text("email/invite.txt", **context),
        html=render_html("email/invite.html", **context),
    )
    _queue(session, ctx, msg, "invite", key)


def _invite_context(
    subject: str, method: str, what: str, update: bool, recipient: Employee, rotation: _Dates, **more: Any
) -> dict[str, Any]:
    """What ``email/invite.*`` needs for any invite (``what``: ``rotation`` or ``checkins``), plus ``more``."""
    first_day, last_day = longdate(rotation.start), longdate(rotation.end)
    return dict(
        subject=subject,
        method=method,
        what=what,
        update=update,
        recipient=recipient,
        first_day=first_day,
        last_day=last_day,
        **more,
    )


def _rotation_mail(
    session: Session,
    ctx: _Context,
    rotation: _Dates,
    rotator: Employee,
    mentor: Employee | None,
    series: CheckinSeries | None,
    method: str,
    sequence: int,
    update: bool,
    *,
    mentor_only: bool = False,
    old_mentor: Employee | None = None,
) -> None:
    """The rotation invite to the rotator. ``mentor_only``: an update whose dates are unchanged (the
    mentor changed from ``old_mentor``), said as such."""
    assert rotator.id is not None
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
    elif mentor_only:
        now = mentor.name if mentor else "to be announced"
        subject = f"Your mentor changed to {now}; dates unchanged ({first} to {last})"
    elif update:
        subject = f"Updated: your support rotation now {first} to {last}"
    else:
        subject = f"Your support rotation: {first} to {last}"
    context = _invite_context(
        subject,
        method,
        "rotation",
        update,
        rotator,
        rotation,
        weeks=weeks,
        mentor=mentor,
        mentor_only=mentor_only,
        old_mentor=old_mentor,
        observe_link=observe_url(rotator.id),
        request_link=request_url(rotation.id, rotator.id) if method != "CANCEL" else None,
        previous_first_day=longdate(rotation.previous_start) if rotation.previous_start else None,
        checkin_when=series.when_in(zone(rotator.timezone, ctx.org_tz)) if series else None,
        checkin_minutes=ctx.checkin_minutes,
    )
    key = f"{'cancel' if method == 'CANCEL' else 'invite'}:{rotation.id}:{sequence}"
    _queue_invite(session, ctx, obj, rotator, context, key)


def _checkin_mail(
    session: Session,
    ctx: _Context,
    rotation: _Dates,
    rotator: Employee,
    mentor: Employee,
    series: CheckinSeries,
    recipient: Employee,
    method: str,
    sequence: int,
    update: bool,
    reason: str = "",
    respond_link: str | None = None,
) -> None:
    for_mentor = recipient.id == mentor.id
    other = rotator if for_mentor else mentor
    tz = zone(recipient.timezone, ctx.org_tz)  # times in the mail are the recipient's own (the .ics carries the TZID)
    kickoff = series.kickoff.astimezone(tz) if series.kickoff else None
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
    context = _invite_context(
        subject,
        method,
        "checkins",
        update,
        recipient,
        rotation,
        other=other,
        for_mentor=for_mentor,
        checkin_when=series.when_in(tz),
        checkin_count=series.count,
        checkin_first=longdate(series.first.astimezone(tz).date()),
        checkin_last=longdate((series.first + timedelta(weeks=series.count - 1)).astimezone(tz).date()),
        checkin_kickoff=f"{longdate(kickoff.date())} at {kickoff:%H:%M}" if kickoff and series.count > 1 else None,
        checkin_minutes=series.minutes,
        reason=reason,
        respond_link=respond_link if for_mentor and method == "REQUEST" else None,
    )
    prefix = "checkins-cancel" if method == "CANCEL" else "checkins"
    _queue_invite(session, ctx, obj, recipient, context, f"{prefix}:{rotation.id}:{sequence}:{recipient.id}")


def _mentor_mail(
    session: Session,
    ctx: _Context,
    rotation: _Dates,
    rotator: Employee,
    mentor: Employee,
    sequence: int,
    assigned: bool,
    reason: str = "",
    respond_link: str | None = None,
) -> None:
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
        respond_link=respond_link if assigned else None,
    )
    msg = compose(to=_addr(mentor), subject=subject, text=text)
    prefix = "mentor" if assigned else "mentor-released"
    _queue(session, ctx, msg, "mentor", f"{prefix}:{rotation.id}:{sequence}:{mentor.id}")


def _manager_mail(
    session: Session, ctx: _Context, rotation: _Dates, rotator: Employee, change: str, sequence: int
) -> None:
    """Tell the rotator's manager (``Employee.manager_email``, from the roster) that the rotation was
    announced (``change`` ``new``), ``moved`` or ``cancelled``: one mail per change, keyed
    ``manager:<rotation>:<sequence>`` (counted in ``manager_notices`` when queued, see :func:`_flush`);
    nothing without a manager."""
    if not rotator.manager_email:
        return
    first, last = longdate(rotation.start), longdate(rotation.end)
    weeks = ((rotation.end - rotation.start).days + 1) // 7
    if change == "cancelled":
        subject = f"Cancelled: {rotator.name}'s support rotation {first} to {last}"
    elif change == "moved":
        subject = f"Moved: {rotator.name}'s support rotation now {first} to {last}"
    else:
        subject = f"{rotator.name} is on the support rotation {first} to {last}"
    text = render_text(
        "email/manager.txt",
        rotator=rotator,
        change=change,
        first_day=first,
        last_day=last,
        weeks=weeks,
        previous_first_day=longdate(rotation.previous_start) if rotation.previous_start else None,
    )
    msg = compose(to=rotator.manager_email, subject=subject, text=text)
    _queue(session, ctx, msg, "manager", f"manager:{rotation.id}:{sequence}")


def process_invites(
    session: Session,
    rotation_ids: list[int],
    *,
    as_of: date,
    announce_weeks: int = 8,
    checkin_minutes: int = 30,
    working_hours: Sequence[int] = (9, 17),
    org_tz: ZoneInfo | None = None,
) -> Counts:
    """Decide and queue invites for these rotations; updates the rotations. Caller commits."""
    ctx = _Context(
        organizer=organizer_from_settings(),
        org_tz=org_tz or clock.org_tz(),
        checkin_minutes=checkin_minutes,
        stamp=utcnow(),
        working_hours=working_hours_pair(working_hours),
    )
    horizon = as_of + timedelta(weeks=announce_weeks)
    rotations = _rotations(session, rotation_ids)
    ctx.pairings, ctx.people = _preload(session, rotations)
    for rotation in rotations:
        _process_one(session, ctx, rotation, as_of, horizon)
    _flush(session, ctx)
    return ctx.counts


@dataclass(frozen=True)
class _Parties:
    """Who a rotation's mail concerns: the rotator, the current mentor and their check-in series, and
    the mentor named in the last invite (``announced_mentor_id``)."""

    rotator: Employee
    mentor: Employee | None
    series: CheckinSeries | None
    old_mentor: Employee | None
    pairing: MentorPairing | None = None

    def respond_link(self) -> str | None:
        """The mentor's signed accept/decline link for the current pairing."""
        if self.pairing is None or self.pairing.id is None or self.mentor is None or self.mentor.id is None:
            return None
        return pairing_url(self.pairing.id, self.mentor.id)


def _load_parties(session: Session, ctx: _Context, rotation: Rotation) -> _Parties:
    assert rotation.id is not None
    rotator = _employee(session, rotation.employee_id)
    pairing = next((p for p in ctx.pairings.get(rotation.id, []) if p.status == "active"), None)
    mentor = session.get(Employee, pairing.mentor_id) if pairing else None
    series = (
        checkin_series(rotation, pairing, mentor, ctx.checkin_minutes, ctx.org_tz, rotator, ctx.working_hours)
        if pairing and mentor
        else None
    )
    old_mentor = (
        session.get(Employee, rotation.announced_mentor_id) if rotation.announced_mentor_id is not None else None
    )
    return _Parties(rotator, mentor, series, old_mentor, pairing)


def _process_one(session: Session, ctx: _Context, rotation: Rotation, as_of: date, horizon: date) -> None:
    """One rotation: load who it concerns, decide what changed since the last announcement (see the
    module docstring's table), queue the mail, and remember what was announced."""
    parties = _load_parties(session, ctx, rotation)
    if rotation.status == "cancelled":
        if rotation.announced_state != "invited":
            ctx.counts.unchanged += 1
            return
        _announce_cancellation(session, ctx, rotation, parties)
        return
    mentor_id = parties.mentor.id if parties.mentor else None
    decision = _request_to_send(rotation, mentor_id, as_of, horizon)
    if decision is None:
        ctx.counts.unchanged += 1
        return
    sequence, update = decision
    _announce_request(session, ctx, rotation, parties, sequence, update)
    if rotation.announced_state == "invited" and parties.old_mentor is not None and parties.old_mentor.id != mentor_id:
        _release_old_mentor(session, ctx, rotation, parties, parties.old_mentor, sequence)
    rotation.sequence = sequence
    rotation.announced_state = "invited"
    rotation.announced_start = rotation.start
    rotation.announced_mentor_id = mentor_id
    rotation.status = "invited"
    rotation.updated_at = utcnow()
    session.add(rotation)


def _request_to_send(rotation: Rotation, mentor_id: int | None, as_of: date, horizon: date) -> tuple[int, bool] | None:
    """``(sequence, update)`` of the REQUEST an active rotation needs, or None when it needs nothing:
    outside the window (unless announced and moved since), or announced exactly as it is now."""
    announced_and_moved = rotation.announced_state == "invited" and rotation.announced_start != rotation.start
    if rotation.status not in ACTIVE or rotation.end < as_of or (rotation.start > horizon and not announced_and_moved):
        return None
    if rotation.announced_state is None:
        return rotation.sequence, False
    if (
        rotation.announced_state == "cancelled"
        or rotation.announced_start != rotation.start
        or rotation.announced_mentor_id != mentor_id
    ):
        return rotation.sequence + 1, True
    return None


def _announce_cancellation(session: Session, ctx: _Context, rotation: Rotation, parties: _Parties) -> None:
    """CANCEL the dates the rotator was told; cancel the old mentor's check-ins (or tell them by mail)."""
    sequence = rotation.sequence + 1
    told = _Dates.as_told(rotation)
    rotator, old_mentor = parties.rotator, parties.old_mentor
    _rotation_mail(session, ctx, told, rotator, old_mentor, None, "CANCEL", sequence, update=True)
    ctx.counts.cancels += 1
    _manager_mail(session, ctx, told, rotator, "cancelled", sequence)
    if old_mentor is not None:
        reason = "The support rotation was cancelled."
        old_series = _series_for(session, ctx, rotation, rotator, old_mentor)
        if old_series is not None:
            recipients = [(rotator, reason), (old_mentor, reason)]
            _cancel_checkins(session, ctx, told, rotator, old_mentor, old_series, sequence, recipients)
        else:
            _mentor_mail(session, ctx, told, rotator, old_mentor, sequence, assigned=False, reason=reason)
    rotation.sequence = sequence
    rotation.announced_state = "cancelled"
    rotation.updated_at = utcnow()
    session.add(rotation)


def _announce_request(
    session: Session, ctx: _Context, rotation: Rotation, parties: _Parties, sequence: int, update: bool
) -> None:
    """The rotation REQUEST to the rotator, and the check-in series to rotator and mentor (or, without a
    series, a plain mail to a newly named mentor)."""
    rotator, mentor, series = parties.rotator, parties.mentor, parties.series
    dates = _Dates.current(rotation)
    dates_told = rotation.announced_state == "invited" and rotation.announced_start == rotation.start
    mentor_only = update and dates_told  # an update that is not a move nor a reinstatement: the mentor changed
    _rotation_mail(
        session,
        ctx,
        dates,
        rotator,
        mentor,
        series,
        "REQUEST",
        sequence,
        update,
        mentor_only=mentor_only,
        old_mentor=parties.old_mentor,
    )
    if not dates_told:  # announced, reinstated or moved: the manager hears of the dates (not of a mentor change)
        moved = rotation.announced_state == "invited"
        _manager_mail(session, ctx, dates, rotator, "moved" if moved else "new", sequence)
    if update:
        ctx.counts.updates += 1
    else:
        ctx.counts.requests += 1
    if mentor is not None and series is not None:
        link = parties.respond_link()
        for person in (rotator, mentor):
            _checkin_mail(
                session, ctx, dates, rotator, mentor, series, person, "REQUEST", sequence, update, respond_link=link
            )
            ctx.counts.checkin_requests += 1
    elif mentor is not None and (rotation.announced_state != "invited" or rotation.announced_mentor_id != mentor.id):
        _mentor_mail(session, ctx, dates, rotator, mentor, sequence, assigned=True, respond_link=parties.respond_link())


def _release_old_mentor(
    session: Session, ctx: _Context, rotation: Rotation, parties: _Parties, old_mentor: Employee, sequence: int
) -> None:
    """The mentor named in the last invite was replaced: CANCEL their copy of the check-in series, and the
    rotator's copy when no new series replaces it (or, without a series, tell the old mentor by mail)."""
    rotator = parties.rotator
    dates = _Dates.current(rotation)
    old_series = _series_for(session, ctx, rotation, rotator, old_mentor)
    if old_series is None:
        reason = f"{rotator.name} has a different mentor now." if parties.mentor else ""
        _mentor_mail(session, ctx, dates, rotator, old_mentor, sequence, assigned=False, reason=reason)
        return
    recipients = [(old_mentor, f"{rotator.name} has a different mentor now.")]
    if parties.series is None or parties.mentor is None:  # no new series replaces the rotator's copy of this UID
        recipients.append((rotator, f"The check-ins with {old_mentor.name} are cancelled."))
    _cancel_checkins(session, ctx, dates, rotator, old_mentor, old_series, sequence, recipients)


def _cancel_checkins(
    session: Session,
    ctx: _Context,
    dates: _Dates,
    rotator: Employee,
    mentor: Employee,
    series: CheckinSeries,
    sequence: int,
    recipients: list[tuple[Employee, str]],
) -> None:
    """CANCEL ``mentor``'s check-in series with ``rotator``, one mail per (recipient, reason)."""
    for person, reason in recipients:
        _checkin_mail(session, ctx, dates, rotator, mentor, series, person, "CANCEL", sequence, True, reason)
        ctx.counts.checkin_cancels += 1


def _series_for(
    session: Session, ctx: _Context, rotation: Rotation, rotator: Employee, mentor: Employee
) -> CheckinSeries | None:
    """The check-in series that was announced with ``mentor`` (their latest pairing for this rotation)."""
    assert rotation.id is not None
    pairing = next((p for p in ctx.pairings.get(rotation.id, []) if p.mentor_id == mentor.id), None)
    if pairing is None:
        return None
    return checkin_series(
        _Dates.as_told(rotation), pairing, mentor, ctx.checkin_minutes, ctx.org_tz, rotator, ctx.working_hours
    )


# --- reminders --------------------------------------------------------------------------------------


def rotations_for_reminders(session: Session, as_of: date, days_before: list[int]) -> list[int]:
    ahead = as_of + timedelta(days=max(days_before or [0]))
    ids = session.exec(
        select(Rotation.id).where(
            col(Rotation.status).in_(ACTIVE),  # an unlocked announced rotation is a draft again
            Rotation.announced_state == "invited",
            Rotation.announced_start == Rotation.start,  # only the dates the rotator was told
            Rotation.start <= ahead,
            Rotation.end >= as_of,
        )
    ).all()
    return sorted(i for i in ids if i is not None)


@dataclass
class _ReminderRun:
    """What every rotation's reminders share on one run: the day, the policy, the ISO week of nudges."""

    as_of: date
    days_before: list[int]
    weekly_nudge: bool
    checkin_minutes: int
    working_hours: tuple[int, int]
    org_tz: ZoneInfo
    chat: Chat | None = None  # the policy's [chat]: with ``people``, rotators are told in chat too
    counts: dict[str, int] = field(
        default_factory=lambda: {"reminders": 0, "welcomes": 0, "nudges": 0, "queued": 0, "chats": 0}
    )
    pending: list[tuple[EmailMessage, str, str]] = field(default_factory=list)  # queued at the end, in order
    pairings: dict[int, list[MentorPairing]] = field(default_factory=dict)  # see _preload
    people: list[Employee] = field(default_factory=list)  # see _preload
    wrote: set[int] = field(default_factory=set)  # rotators with an observation since Monday (nudges)

    @property
    def week_label(self) -> str:
        return clock.iso_week(self.as_of)

    @property
    def week_start_utc(self) -> datetime:
        """Monday 00:00 of ``as_of``'s week, organisation time, in UTC (observations since then count)."""
        return datetime.combine(clock.monday(self.as_of), time(0), tzinfo=self.org_tz).astimezone(UTC)


def process_reminders(
    session: Session,
    rotation_ids: list[int],
    *,
    as_of: date,
    days_before: list[int],
    weekly_nudge: bool = True,
    checkin_minutes: int = 30,
    working_hours: Sequence[int] = (9, 17),
    org_tz: ZoneInfo | None = None,
    chat: Chat | None = None,
) -> dict[str, int]:
    """Queue the reminders, welcomes and nudges due on ``as_of`` for these rotations (also by chat with
    ``chat.people``; not by mail then when ``chat.mail_too`` is false). Caller commits."""
    run = _ReminderRun(
        chat=chat,
        as_of=as_of,
        days_before=days_before,
        weekly_nudge=weekly_nudge,
        checkin_minutes=checkin_minutes,
        working_hours=working_hours_pair(working_hours),
        org_tz=org_tz or clock.org_tz(),
    )
    rotations = _rotations(session, rotation_ids)
    run.pairings, run.people = _preload(session, rotations)
    run.wrote = _wrote_this_week(session, run, rotations)
    due: list[tuple[Rotation, Employee, list[_Notice]]] = []
    for rotation in rotations:
        rotator = _reminder_recipient(session, rotation, as_of)
        if rotator is None:
            continue
        notices = [
            n
            for n in (_reminder_due(run, rotation), _welcome_due(run, rotation), _nudge_due(run, rotation, rotator))
            if n
        ]
        if notices:
            due.append((rotation, rotator, notices))
    # Keys queued by an earlier run are not rendered again (the hourly run finds most of them queued).
    queued_before = queued_keys(session, [n.key for _r, _p, notices in due for n in notices])
    for rotation, rotator, notices in due:
        notices = [n for n in notices if n.key not in queued_before]
        if notices:
            base = _reminder_context(session, run, rotation, rotator)
            for notice in notices:
                if not _tell_in_chat(session, run, rotator, notice, base):
                    _queue_notice(run, rotator, notice, base)
    kinds = {key: kind for _msg, kind, key in run.pending}
    for key in enqueue_many(session, run.pending):  # one existence query and one INSERT per 500
        run.counts[f"{kinds[key]}s"] += 1
    run.pending.clear()
    run.counts["queued"] = run.counts["reminders"] + run.counts["welcomes"] + run.counts["nudges"]
    return run.counts


def _reminder_recipient(session: Session, rotation: Rotation, as_of: date) -> Employee | None:
    """The rotator, when the rotation still stands as announced and they have not left; else None."""
    if (
        rotation.status not in ACTIVE
        or rotation.announced_state != "invited"
        or rotation.announced_start != rotation.start
    ):
        return None
    rotator = session.get(Employee, rotation.employee_id)
    if rotator is None or not rotator.active or (rotator.left_on is not None and rotator.left_on <= as_of):
        return None  # a leaver (the roster import keeps a rotation that already started) gets no more mail
    return rotator


def _reminder_context(session: Session, run: _ReminderRun, rotation: Rotation, rotator: Employee) -> dict[str, Any]:
    """What the reminder, welcome and nudge templates share: the people, the dates, the links."""
    assert rotation.id is not None and rotator.id is not None
    pairing = next((p for p in run.pairings.get(rotation.id, []) if p.status == "active"), None)
    mentor = session.get(Employee, pairing.mentor_id) if pairing else None
    series = (
        checkin_series(rotation, pairing, mentor, run.checkin_minutes, run.org_tz, rotator, run.working_hours)
        if pairing and mentor
        else None
    )
    return dict(
        rotator=rotator,
        mentor=mentor,
        first_day=longdate(rotation.start),
        last_day=longdate(rotation.end),
        observe_link=observe_url(rotator.id),
        checkin_when=series.when_in(zone(rotator.timezone, run.org_tz)) if series else None,
    )


@dataclass(frozen=True)
class _Notice:
    """One reminder, welcome or nudge due to a rotator: its kind (``email/<kind>.*``), key, subject (given
    the template context) and what its template needs beyond the shared context."""

    kind: str
    key: str
    subject: Callable[[dict[str, Any]], str]
    extra: dict[str, Any] = field(default_factory=dict)


def _tell_in_chat(
    session: Session, run: _ReminderRun, rotator: Employee, notice: _Notice, base: dict[str, Any]
) -> bool:
    """Queue the chat form of one notice when the policy has ``chat.people`` (once per key: a re-run finds it
    queued). True when the rotator is told in chat only (``chat.mail_too`` false): no mail then."""
    chat = run.chat
    if chat is None or chat.people is None:
        return False
    from frontline.chat.service import notify, person_target

    lines = [f"Your rotation: {base['first_day']} to {base['last_day']}."]
    mentor = base.get("mentor")
    if mentor is not None:
        lines.append(f"Your mentor: {mentor.name} ({mentor.email}).")
    if base.get("checkin_when"):
        lines.append(f"Check-ins: {base['checkin_when']}.")
    lines.append(f"Tell us what customers struggle with: {base['observe_link']}")
    target = person_target(rotator.employee_id)
    if notify(session, chat, target, key=f"chat:{notice.key}", title=notice.subject(base), body="\n".join(lines)):
        run.counts["chats"] += 1
    return not chat.mail_too


def _queue_notice(run: _ReminderRun, rotator: Employee, notice: _Notice, base: dict[str, Any]) -> None:
    """Add one plain notice (``email/<kind>.txt`` and ``.html``) to the rotator to the run's mail (queued
    at the end unless its key is already queued)."""
    subject, context = notice.subject(base), dict(base, **notice.extra)
    msg = compose(
        to=_addr(rotator),
        subject=subject,
        text=render_text(f"email/{notice.kind}.txt", subject=subject, **context),
        html=render_html(f"email/{notice.kind}.html", subject=subject, **context),
    )
    run.pending.append((msg, notice.kind, notice.key))


def _reminder_due(run: _ReminderRun, rotation: Rotation) -> _Notice | None:
    """``policy.reminders.days_before``: only the nearest due one, keyed by the start it speaks of."""
    as_of = run.as_of
    due = [d for d in run.days_before if d > 0 and rotation.start - timedelta(days=d) <= as_of < rotation.start]
    if not due:
        return None
    days = min(due)
    when = "tomorrow" if days == 1 else f"in {days} days"
    subject = f"Your support rotation starts {when} ({longdate(rotation.start)})"
    key = f"reminder:{rotation.id}:{rotation.start.isoformat()}:{days}"
    return _Notice("reminder", key, lambda _base: subject, {"days": days})


def _welcome_due(run: _ReminderRun, rotation: Rotation) -> _Notice | None:
    """In the rotation's first week."""
    if not rotation.start <= run.as_of < rotation.start + timedelta(days=7):
        return None

    def subject(base: dict[str, Any]) -> str:
        mentor = base["mentor"]
        return "Welcome to the front line" + (f": meet your mentor {mentor.name}" if mentor else "")

    return _Notice("welcome", f"welcome:{rotation.id}", subject)


def _nudges_due(run: _ReminderRun) -> bool:
    return run.weekly_nudge and run.as_of.weekday() >= 3


def _wrote_this_week(session: Session, run: _ReminderRun, rotations: Sequence[Rotation]) -> set[int]:
    """The rotators of ``rotations`` with an observation since Monday (one query; none before Thursday)."""
    if not _nudges_due(run) or not rotations:
        return set()
    rotators = {r.employee_id for r in rotations}
    wrote = session.exec(
        select(Observation.rotator_id)
        .where(col(Observation.rotator_id).in_(rotators), Observation.created_at >= run.week_start_utc)
        .distinct()
    ).all()
    return {i for i in wrote if i is not None}


def _nudge_due(run: _ReminderRun, rotation: Rotation, rotator: Employee) -> _Notice | None:
    """From Thursday on, during the rotation, to a rotator without an observation since Monday."""
    if not (_nudges_due(run) and rotation.start <= run.as_of <= rotation.end) or rotator.id in run.wrote:
        return None
    week = run.week_label
    subject = f"What did customers struggle with this week? ({week})"
    return _Notice("nudge", f"nudge:{rotator.id}:{week}", lambda _base: subject, {"week": week})


__all__ = [
    "Counts",
    "process_invites",
    "process_reminders",
    "rotations_for_reminders",
    "rotations_to_announce",
    "working_hours_pair",
]
