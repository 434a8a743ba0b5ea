"""Time off from out-of-office calendars: iCalendar feeds read on a schedule into absences.

Phases, each testable alone:

1. **fetch** (:func:`fetch_feed`, I/O): the feed's bytes over HTTP(S) or from a file, size- and time-limited.
   Errors never show the URL (it usually carries a secret token), only the feed's name.
2. **read** (:func:`read_calendar`, pure): a whole iCalendar file or a :class:`FeedError`. A truncated download
   (no closing ``END:VCALENDAR``) or an HTML page is refused, so a partial answer never wipes anyone's time off.
3. **events** (:func:`events_between`, pure): recurrences expanded (RRULE, RDATE, EXDATE, moved instances) with
   ``recurring_ical_events``; cancelled and free (``TRANSP:TRANSPARENT``) events dropped; each event with the
   e-mails it names (attendees, organiser).
4. **days off** (:func:`days_off`, pure): an all-day event covers its days (DTEND exclusive); a timed event makes a
   day off of each day, in the person's own time zone, of which it covers at least ``min_hours`` hours.
5. **apply** (:func:`apply_feed`, database): the feed's absences (source ``calendar:<name>``) from the window's
   start on become exactly what the feed says now; absences.csv's rows and other feeds' are never touched. The
   reason stored is neutral ("out of office (calendar <name>)"): an event's title may be private.

The live rotations that now overlap a new absence are returned, so the flow can re-plan what must move.
"""

from __future__ import annotations

import urllib.parse
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, insert
from sqlmodel import Session, col, select

from frontline.core.policy import TimeOff, TimeOffFeed
from models import Absence, Employee, Rotation

LIVE_STATUSES = ("draft", "invited")
UNMATCHED_SHOWN = 5


class FeedError(Exception):
    """A feed that could not be read: nothing of it was written. The message names the feed, never its URL.
    ``transient``: worth trying again soon (no answer, a server error), unlike a refusal or a bad file."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class CalendarEvent:
    """One occurrence of a busy event: all-day (``date``) or timed (aware ``datetime``), end exclusive."""

    start: date | datetime
    end: date | datetime
    emails: tuple[str, ...]


@dataclass
class TimeOffResult:
    feed: str
    events: int = 0
    people: int = 0
    absences: int = 0
    added: int = 0
    removed: int = 0
    unmatched: list[str] = field(default_factory=list)
    affected_rotations: list[int] = field(default_factory=list)

    def summary(self) -> str:
        text = (
            f"calendar {self.feed}: {self.events} event(s), {self.people} people, {self.absences} absence(s) "
            f"(+{self.added} / -{self.removed})"
        )
        if self.unmatched:
            shown = ", ".join(self.unmatched[:UNMATCHED_SHOWN])
            more = f" and {len(self.unmatched) - UNMATCHED_SHOWN} more" if len(self.unmatched) > UNMATCHED_SHOWN else ""
            text += f"; {len(self.unmatched)} address(es) not in the roster: {shown}{more}"
        if self.affected_rotations:
            text += f"; {len(self.affected_rotations)} live rotation(s) now overlap time off"
        return text


def source_of(feed: TimeOffFeed) -> str:
    return f"calendar:{feed.name}"


# --------------------------------------------------------------------------------------------------
# 1. fetch


def fetch_feed(feed: TimeOffFeed, settings: TimeOff) -> bytes:
    """The feed's bytes. Raises :class:`FeedError` for an answer that is not a success, a feed over
    ``max_bytes``, a missing file or a network error (the flow retries those)."""
    import httpx

    if feed.url.startswith("file://"):
        path = Path(urllib.parse.unquote(urllib.parse.urlparse(feed.url).path))
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise FeedError(f"calendar feed {feed.name}: cannot read the file ({exc.strerror})") from None
        if len(data) > settings.max_bytes:
            raise FeedError(f"calendar feed {feed.name}: larger than time_off.max_bytes ({settings.max_bytes})")
        return data
    try:
        with (
            httpx.Client(timeout=settings.timeout_seconds, follow_redirects=True) as client,
            client.stream("GET", feed.url, headers={"Accept": "text/calendar"}) as answer,
        ):
            if answer.status_code != 200:
                raise FeedError(
                    f"calendar feed {feed.name}: the server answered HTTP {answer.status_code}",
                    transient=answer.status_code >= 500 or answer.status_code == 429,
                )
            chunks: list[bytes] = []
            size = 0
            for chunk in answer.iter_bytes():
                size += len(chunk)
                if size > settings.max_bytes:
                    raise FeedError(f"calendar feed {feed.name}: larger than time_off.max_bytes ({settings.max_bytes})")
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.HTTPError as exc:
        # the exception text may contain the URL: name only the kind of failure
        raise FeedError(f"calendar feed {feed.name}: cannot fetch it ({type(exc).__name__})", transient=True) from None


# --------------------------------------------------------------------------------------------------
# 2. read


def read_calendar(data: bytes, name: str) -> Any:
    """The parsed calendar, or :class:`FeedError` when ``data`` is not one whole iCalendar file."""
    from icalendar import Calendar

    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FeedError(f"calendar feed {name}: not UTF-8 text, so not an iCalendar file") from None
    stripped = text.strip()
    if not stripped.upper().startswith("BEGIN:VCALENDAR"):
        head = stripped[:40].replace("\n", " ").replace("\r", "")
        raise FeedError(f"calendar feed {name}: not an iCalendar file (it starts with {head!r}); check the URL")
    if not stripped.upper().endswith("END:VCALENDAR"):
        raise FeedError(f"calendar feed {name}: the file ends before END:VCALENDAR (cut off?); nothing was changed")
    try:
        return Calendar.from_ical(text)
    except ValueError as exc:
        raise FeedError(f"calendar feed {name}: not a valid iCalendar file ({exc})") from None


# --------------------------------------------------------------------------------------------------
# 3. events


def _address(value: Any) -> str | None:
    text = str(value).strip()
    if text.lower().startswith("mailto:"):
        text = text[len("mailto:") :]
    text = text.strip().lower()
    return text if "@" in text else None


def _emails(component: Any) -> tuple[str, ...]:
    found: list[str] = []
    attendees = component.get("ATTENDEE")
    values = attendees if isinstance(attendees, list) else [attendees] if attendees is not None else []
    organizer = component.get("ORGANIZER")
    if organizer is not None:
        values.append(organizer)
    for value in values:
        address = _address(value)
        if address and address not in found:
            found.append(address)
    return tuple(found)


def _as_aware(value: date | datetime, zone: ZoneInfo) -> date | datetime:
    if isinstance(value, datetime) and value.tzinfo is None:  # floating time: the organisation's zone
        return value.replace(tzinfo=zone)
    return value


def events_between(calendar: Any, start: date, end: date, org_zone: ZoneInfo, name: str) -> list[CalendarEvent]:
    """Busy occurrences overlapping [``start``, ``end``), recurrences expanded. Floating times are read in
    the organisation's zone."""
    import recurring_ical_events

    try:
        occurrences = recurring_ical_events.of(calendar).between(start, end)
    except Exception as exc:  # noqa: BLE001 - the library raises many kinds for a broken rule; all mean one thing
        raise FeedError(f"calendar feed {name}: cannot expand its events ({type(exc).__name__}: {exc})") from None
    events: list[CalendarEvent] = []
    for component in occurrences:
        if str(component.get("STATUS", "")).upper() == "CANCELLED":
            continue
        if str(component.get("TRANSP", "OPAQUE")).upper() == "TRANSPARENT":
            continue
        begin = component.get("DTSTART")
        if begin is None:
            continue
        first = _as_aware(begin.dt, org_zone)
        finish = component.get("DTEND")
        if finish is not None:
            last = _as_aware(finish.dt, org_zone)
        elif component.get("DURATION") is not None:
            last = first + component["DURATION"].dt
        else:
            last = first + timedelta(days=1) if not isinstance(first, datetime) else first
        if type(first) is not type(last):  # an all-day start with a timed end (or the reverse): read both as days
            first = first.date() if isinstance(first, datetime) else first
            last = last.date() if isinstance(last, datetime) else last
        events.append(CalendarEvent(first, last, _emails(component)))
    return events


# --------------------------------------------------------------------------------------------------
# 4. days off


def days_off(event: CalendarEvent, zone: ZoneInfo, min_hours: float) -> list[tuple[date, date]]:
    """The inclusive day spans ``event`` takes off, in ``zone`` (the person's time zone)."""
    if not isinstance(event.start, datetime):
        last = event.end - timedelta(days=1)
        return [(event.start, max(event.start, last))]
    assert isinstance(event.end, datetime)
    begin, finish = event.start.astimezone(zone), event.end.astimezone(zone)
    days: list[date] = []
    day = begin.date()
    while day <= finish.date():
        day_start = datetime.combine(day, time(0), tzinfo=zone)
        day_end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
        covered = (min(finish, day_end) - max(begin, day_start)).total_seconds() / 3600
        # a day shortened or lengthened by a DST change still counts as a whole day when fully covered
        day_hours = (day_end - day_start).total_seconds() / 3600
        if covered >= min(min_hours, day_hours):
            days.append(day)
        day += timedelta(days=1)
    return _spans(days)


def _spans(days: list[date]) -> list[tuple[date, date]]:
    spans: list[tuple[date, date]] = []
    for day in sorted(set(days)):
        if spans and spans[-1][1] + timedelta(days=1) == day:
            spans[-1] = (spans[-1][0], day)
        else:
            spans.append((day, day))
    return spans


def merged(spans: list[tuple[date, date]]) -> list[tuple[date, date]]:
    """Overlapping or touching spans joined."""
    out: list[tuple[date, date]] = []
    for first, last in sorted(spans):
        if out and first <= out[-1][1] + timedelta(days=1):
            out[-1] = (out[-1][0], max(out[-1][1], last))
        else:
            out.append((first, last))
    return out


# --------------------------------------------------------------------------------------------------
# 5. apply


def window(today: date, settings: TimeOff) -> tuple[date, date]:
    """[first day, day after the last] of the events read: from four weeks back (an absence under way)
    to the horizon."""
    return today - timedelta(weeks=4), today + timedelta(weeks=settings.horizon_weeks)


def wanted_absences(
    events: list[CalendarEvent],
    feed: TimeOffFeed,
    people: dict[str, tuple[int, str]],
    by_employee_id: dict[str, tuple[int, str]],
    min_hours: float,
    result: TimeOffResult,
) -> dict[int, list[tuple[date, date]]]:
    """Pure: the absences the feed asks for, per employee primary key. ``people`` maps lower-case e-mail and
    ``by_employee_id`` the roster id to (primary key, time zone) for active employees."""
    spans: dict[int, list[tuple[date, date]]] = defaultdict(list)
    unmatched: set[str] = set()
    owner = by_employee_id.get(feed.employee_id) if feed.employee_id else None
    if feed.employee_id and owner is None:
        raise FeedError(
            f"calendar feed {feed.name}: employee_id {feed.employee_id!r} is not an active employee in the roster"
        )
    for event in events:
        targets = [owner] if owner else [people[e] for e in event.emails if e in people]
        if not owner:
            unmatched.update(e for e in event.emails if e not in people)
        for pk, zone in targets:
            spans[pk].extend(days_off(event, ZoneInfo(zone), min_hours))
    result.events = len(events)
    result.unmatched = sorted(unmatched)
    return {pk: merged(s) for pk, s in spans.items() if s}


def apply_feed(
    session: Session, feed: TimeOffFeed, calendar: Any, today: date, settings: TimeOff, org_zone: ZoneInfo
) -> TimeOffResult:
    """Make the feed's absences from the window's start on exactly what ``calendar`` says (one transaction,
    the caller's). Absences from absences.csv and from other feeds are left alone."""
    result = TimeOffResult(feed=feed.name)
    first, after = window(today, settings)
    events = events_between(calendar, first, after, org_zone, feed.name)
    people: dict[str, tuple[int, str]] = {}
    by_employee_id: dict[str, tuple[int, str]] = {}
    for pk, employee_id, email, zone in session.execute(
        select(col(Employee.id), col(Employee.employee_id), col(Employee.email), col(Employee.timezone)).where(
            col(Employee.active)
        )
    ):
        people[email.lower()] = (pk, zone)
        by_employee_id[employee_id] = (pk, zone)
    wanted = wanted_absences(events, feed, people, by_employee_id, settings.min_hours, result)
    source = source_of(feed)
    current: dict[tuple[int, date, date], int] = {}
    for aid, emp, a_start, a_end in session.execute(
        select(col(Absence.id), col(Absence.employee_id), col(Absence.start), col(Absence.end)).where(
            col(Absence.source) == source, col(Absence.end) >= first
        )
    ):
        current[(emp, a_start, a_end)] = aid
    want_keys = {(pk, s, e) for pk, spans in wanted.items() for s, e in spans}
    stale = [aid for key, aid in current.items() if key not in want_keys]
    if stale:
        session.execute(delete(Absence).where(col(Absence.id).in_(stale)).execution_options(synchronize_session=False))
    fresh = sorted(want_keys - set(current))
    reason = f"out of office (calendar {feed.name})"
    if fresh:
        session.execute(
            insert(Absence),
            [{"employee_id": pk, "start": s, "end": e, "reason": reason, "source": source} for pk, s, e in fresh],
        )
    session.flush()
    result.people = len(wanted)
    result.absences = len(want_keys)
    result.added = len(fresh)
    result.removed = len(stale)
    result.affected_rotations = overlapping_rotations(session, [(pk, s, e) for pk, s, e in fresh])
    return result


def overlapping_rotations(session: Session, spans: list[tuple[int, date, date]]) -> list[int]:
    """Ids of live (draft or invited) rotations whose days overlap one of ``spans`` (employee pk, first, last)."""
    by_employee: dict[int, list[tuple[date, date]]] = defaultdict(list)
    for pk, first, last in spans:
        by_employee[pk].append((first, last))
    if not by_employee:
        return []
    hits: list[int] = []
    for rid, emp, r_start, r_end in session.execute(
        select(col(Rotation.id), col(Rotation.employee_id), col(Rotation.start), col(Rotation.end)).where(
            col(Rotation.employee_id).in_(list(by_employee)), col(Rotation.status).in_(LIVE_STATUSES)
        )
    ):
        if any(first <= r_end and last >= r_start for first, last in by_employee[emp]):
            hits.append(rid)
    return sorted(hits)
