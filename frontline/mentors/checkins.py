"""When a rotator and their mentor meet: the weekly check-in slot and the meetings it gives.

:func:`choose_checkin` picks a 30-minute slot (``checkin_minutes``) on a Tuesday-Friday, inside both
people's working hours (``working_hours``, local) in *every* week of the rotation, avoiding the
mentor's other check-ins. It is stored like the invites job reads it: the weekday and HH:MM **in UTC
of the first week's occurrence** (``MentorPairing.checkin_weekday``, ``checkin_time_utc``); the series
then keeps the *mentor's local* time across daylight-saving changes.

:func:`events_for` / :func:`checkin_events` turn a pairing's slot into its meetings (kickoff, weekly
check-ins, wrap-up); :func:`checkin_series` is the same as one weekly calendar series with the kickoff
and wrap-up as overrides (what the invites and the calendar feeds send).
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from functools import lru_cache
from operator import itemgetter
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlmodel import Session

from frontline.core import clock
from models import Employee, MentorPairing, Rotation

SLOT_WEEKDAYS = (1, 2, 3, 4)  # Tuesday..Friday in the mentor's zone (Monday is the kickoff)
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class Span(Protocol):
    """A rotation's first and last day (a :class:`models.Rotation`, or the dates once announced)."""

    @property
    def start(self) -> date: ...

    @property
    def end(self) -> date: ...


def zone(name: str | None, fallback: ZoneInfo | None = None) -> ZoneInfo:
    """The IANA zone ``name``; ``fallback`` (else UTC) when it is empty or unknown."""
    return (_known_zone(name) if name else None) or fallback or ZoneInfo("UTC")


@lru_cache(maxsize=4096)
def _known_zone(name: str) -> ZoneInfo | None:
    """``ZoneInfo(name)``, or None when unknown (kept: ZoneInfo's own cache holds only a few strongly)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _weeks(start: date, end: date) -> int:
    """Weeks a rotation [start, end] touches, counting from its first day (at least 1)."""
    return max(1, ((end - start).days + 7) // 7)


def _half_hours(hours: tuple[int, int]) -> list[time]:
    """Every half hour from the start of the working hours to the last one before their end."""
    return [time(half // 2, 30 * (half % 2)) for half in range(hours[0] * 2, hours[1] * 2)]


def _valid_at(local: datetime, minutes: int, rotator_zone: tzinfo, hours: tuple[int, int]) -> bool:
    """``local`` (aware, mentor zone) is a real time inside both people's working hours on a weekday."""
    utc = local.astimezone(UTC)
    if utc.astimezone(local.tzinfo).replace(tzinfo=None) != local.replace(tzinfo=None):
        return False  # does not exist (skipped by a DST change)
    h0, h1 = hours
    for t in (local, utc.astimezone(rotator_zone)):
        end = t + timedelta(minutes=minutes)
        if t.weekday() > 4 or end.date() != t.date():
            return False
        if t.time() < time(h0) or (end.hour, end.minute) > (h1, 0):
            return False
    return True


def choose_checkin(
    start: date,
    end: date,
    mentor_tz: str,
    rotator_tz: str,
    *,
    minutes: int = 30,
    hours: tuple[int, int] = (9, 17),
    taken: Set[tuple[int, str]] = frozenset(),
) -> tuple[int, str] | None:
    """A weekly slot for a rotation ``[start, end]``: ``(weekday, "HH:MM")`` of the first occurrence
    in UTC, or None when no Tuesday-Friday time is inside both working hours in every week.

    Candidates are mentor-local Tuesday-Friday times on the half hour; each must be valid in every
    week (the local time is kept, so DST changes are checked week by week), and on the first Monday
    at the same time (the kickoff). ``taken`` holds the mentor's other slots (mentor-local weekday,
    "HH:MM"), avoided when possible. Preference: both people's local times close to 13:00, then the
    earlier weekday. The candidates are ranked once per (dates, zones, length, hours)
    (:func:`ranked_slots`); a pairing takes the first one not ``taken``, else the first."""
    ranked = ranked_slots(start, end, mentor_tz, rotator_tz, minutes, hours)
    if not ranked:
        return None
    for key, slot in ranked:
        if key not in taken:
            return slot
    return ranked[0][1]


_Cell = tuple[bool, float, tuple[int, str]]  # valid, closeness to 13:00 (both sides), UTC (weekday, "HH:MM")


def _steady_offset(tz: ZoneInfo, monday: date) -> timedelta | None:
    """The zone's UTC offset through the week of ``monday`` (from the Sunday before to the Sunday after),
    or None when it changes in that time (a daylight-saving week)."""
    before = datetime.combine(monday - timedelta(days=1), time(0), tzinfo=tz).utcoffset()
    after = datetime.combine(monday + timedelta(days=7), time(0), tzinfo=tz).utcoffset()
    return before if before == after else None


@lru_cache(maxsize=100_000)
def _week_offset(name: str, monday: date) -> timedelta | None:
    """:func:`_steady_offset` of the zone ``name``."""
    return _steady_offset(zone(name), monday)


def _week_table(
    mentor_tz: str, rotator_tz: str, monday: date, minutes: int, hours: tuple[int, int]
) -> tuple[_Cell, ...]:
    """Every candidate (Tuesday-Friday x half hour, in :func:`choose_checkin`'s order) in the week of
    ``monday``: valid for both people, closeness of both local times to 13:00, and the time in UTC.
    Shared by every rotation of these two zones that covers this week, and, when neither zone changes
    its offset that week, by every week and pair of zones with the same two offsets (the table depends
    on nothing else then)."""
    m_off, r_off = _week_offset(mentor_tz, monday), _week_offset(rotator_tz, monday)
    if m_off is not None and r_off is not None:
        return _offset_table(m_off, r_off, minutes, hours)
    return _zone_week_table(mentor_tz, rotator_tz, monday, minutes, hours)


@lru_cache(maxsize=4096)
def _offset_table(m_off: timedelta, r_off: timedelta, minutes: int, hours: tuple[int, int]) -> tuple[_Cell, ...]:
    """:func:`_week_table` for two fixed offsets (any week: the table does not depend on the date then;
    computed on the week of 2024-01-01)."""
    return _table(timezone(m_off), timezone(r_off), date(2024, 1, 1), minutes, hours)


@lru_cache(maxsize=200_000)
def _zone_week_table(
    mentor_tz: str, rotator_tz: str, monday: date, minutes: int, hours: tuple[int, int]
) -> tuple[_Cell, ...]:
    """:func:`_week_table` in a week when one of the zones changes its offset: the days on which neither
    zone changes (:func:`_steady_day`) are taken from the shared table of their two offsets, the others
    computed from the zones."""
    mz, rz = zone(mentor_tz), zone(rotator_tz)
    per_day = len(_half_hours(hours))
    out: list[_Cell] = []
    for i, weekday in enumerate(SLOT_WEEKDAYS):
        day = monday + timedelta(days=weekday)
        offsets = _steady_day(mz, rz, day)
        if offsets is None:
            out.extend(_day_cells(mz, rz, day, minutes, hours))
        else:
            out.extend(_offset_table(offsets[0], offsets[1], minutes, hours)[i * per_day : (i + 1) * per_day])
    return tuple(out)


def _steady_day(mz: tzinfo, rz: tzinfo, day: date) -> tuple[timedelta, timedelta] | None:
    """Both zones' UTC offsets through the mentor-local ``day`` (its midnight to the next), or None when
    either changes in that time."""
    first = datetime.combine(day, time(0), tzinfo=mz)
    last = datetime.combine(day + timedelta(days=1), time(0), tzinfo=mz)
    m0, m1 = first.utcoffset(), last.utcoffset()
    r0, r1 = first.astimezone(rz).utcoffset(), last.astimezone(rz).utcoffset()
    if m0 is None or r0 is None or m0 != m1 or r0 != r1:
        return None
    return m0, r0


def _table(mz: tzinfo, rz: tzinfo, monday: date, minutes: int, hours: tuple[int, int]) -> tuple[_Cell, ...]:
    out: list[_Cell] = []
    for weekday in SLOT_WEEKDAYS:
        out.extend(_day_cells(mz, rz, monday + timedelta(days=weekday), minutes, hours))
    return tuple(out)


def _day_cells(mz: tzinfo, rz: tzinfo, day: date, minutes: int, hours: tuple[int, int]) -> list[_Cell]:
    """The candidates of one day (mentor-local half hours), as :func:`_week_table` lists them."""
    out: list[_Cell] = []
    for local_t in _half_hours(hours):
        occ = datetime.combine(day, local_t, tzinfo=mz)
        r_local = occ.astimezone(rz)
        closeness = abs(occ.hour + occ.minute / 60 - 13) + abs(r_local.hour + r_local.minute / 60 - 13)
        utc = occ.astimezone(UTC)
        out.append((_valid_at(occ, minutes, rz, hours), closeness, (utc.weekday(), f"{utc:%H:%M}")))
    return out


@lru_cache(maxsize=50_000)
def _kickoff_table(
    mentor_tz: str, rotator_tz: str, day: date, minutes: int, hours: tuple[int, int]
) -> tuple[bool, ...]:
    """Per half hour: the kickoff at that mentor-local time on ``day`` suits both people (the shared
    table of the two offsets when neither zone changes its offset that day, as :func:`_zone_week_table`)."""
    mz, rz = zone(mentor_tz), zone(rotator_tz)
    offsets = _steady_day(mz, rz, day)
    if offsets is not None:
        return _offset_kickoff_table(offsets[0], offsets[1], day.weekday(), minutes, hours)
    return _kickoff(mz, rz, day, minutes, hours)


@lru_cache(maxsize=4096)
def _offset_kickoff_table(
    m_off: timedelta, r_off: timedelta, weekday: int, minutes: int, hours: tuple[int, int]
) -> tuple[bool, ...]:
    """:func:`_kickoff_table` for two fixed offsets (a day of a week when neither zone changes its offset:
    it depends on nothing but the weekday then; computed in the week of 2024-01-01)."""
    return _kickoff(timezone(m_off), timezone(r_off), date(2024, 1, 1) + timedelta(days=weekday), minutes, hours)


def _kickoff(mz: tzinfo, rz: tzinfo, day: date, minutes: int, hours: tuple[int, int]) -> tuple[bool, ...]:
    return tuple(_valid_at(datetime.combine(day, t, tzinfo=mz), minutes, rz, hours) for t in _half_hours(hours))


_TableKey = tuple[timedelta, timedelta] | tuple[str, str, date]  # two steady offsets, or two zones and a Monday


@lru_cache(maxsize=100_000)
def _table_key(mentor_tz: str, rotator_tz: str, monday: date) -> _TableKey:
    """What the week's table (:func:`_week_table`) depends on: the two offsets when both are steady that week."""
    m_off, r_off = _week_offset(mentor_tz, monday), _week_offset(rotator_tz, monday)
    if m_off is not None and r_off is not None:
        return (m_off, r_off)
    return (mentor_tz, rotator_tz, monday)


@lru_cache(maxsize=65536)  # 100k employees: 89k pairings, far fewer (start, end, two zones)
def ranked_slots(
    start: date, end: date, mentor_tz: str, rotator_tz: str, minutes: int, hours: tuple[int, int]
) -> tuple[tuple[tuple[int, str], tuple[int, str]], ...]:
    """Every valid candidate of :func:`choose_checkin` as (mentor-local key, UTC slot), best first
    (kickoff possible, closeness to 13:00 for both, weekday; ties in candidate order). Built from the
    per-week tables of the two zones (:func:`_week_table`), so a company computes each (mentor zone,
    rotator zone, week) once, not once per pairing; and ranked once per what the ranking depends on (the
    weeks' tables, the kickoff's table, where the rotation starts and ends in its weeks): every rotation of
    the same length and weekdays whose zones keep the same two offsets shares it. Kept per (dates, zones,
    length, hours) too: a company's pairings share a few thousand of those."""
    first_monday = clock.monday(start)
    keys = tuple(
        _table_key(mentor_tz, rotator_tz, first_monday + timedelta(weeks=k)) for k in range(_weeks(start, end))
    )
    week0 = keys[0]
    if len(week0) == 2:  # a steady first week: the kickoff depends on the two offsets and the weekday alone
        kickoff = _offset_kickoff_table(week0[0], week0[1], start.weekday(), minutes, hours)
    else:
        kickoff = _kickoff_table(mentor_tz, rotator_tz, start, minutes, hours)
    return _ranked(keys, kickoff, (start - first_monday).days, (end - first_monday).days, minutes, hours)


@lru_cache(maxsize=65536)
def _ranked(
    keys: tuple[_TableKey, ...],
    kickoff: tuple[bool, ...],
    first: int,
    last: int,
    minutes: int,
    hours: tuple[int, int],
) -> tuple[tuple[tuple[int, str], tuple[int, str]], ...]:
    """:func:`ranked_slots` for the weeks' table keys, the kickoff's table, and the rotation's first and last
    day counted from its first Monday. A candidate must be valid in every week its weekday falls in: the
    AND of the weeks' validity bits (:func:`_valid_bits`, once per distinct table), not a cell by cell check;
    the ranking then depends on those bits and each weekday's first week alone (:func:`_ranked_bits`)."""
    per_day = len(_labels(hours))
    masks: list[int] = []
    firsts: list[_TableKey | None] = []
    for i, weekday in enumerate(SLOT_WEEKDAYS):
        # the weeks k with first <= 7k + weekday <= last
        weeks = range(max(0, -((weekday - first) // 7)), min(len(keys) - 1, (last - weekday) // 7) + 1)
        mask = (1 << per_day) - 1 if weeks else 0
        for key in {keys[k] for k in weeks}:
            mask &= _valid_bits(key, minutes, hours)[i]
        masks.append(mask)
        firsts.append(keys[weeks[0]] if mask else None)
    return _ranked_bits(tuple(firsts), tuple(masks), kickoff, minutes, hours)


@lru_cache(maxsize=65536)
def _ranked_bits(
    firsts: tuple[_TableKey | None, ...],
    masks: tuple[int, ...],
    kickoff: tuple[bool, ...],
    minutes: int,
    hours: tuple[int, int],
) -> tuple[tuple[tuple[int, str], tuple[int, str]], ...]:
    """:func:`_ranked` for each weekday's first week's table key (None: no candidate that weekday) and valid
    half hours (bits)."""
    labels = _labels(hours)
    per_day = len(labels)
    found: list[tuple[bool, float, int, int, tuple[int, str], tuple[int, str]]] = []
    for i, weekday in enumerate(SLOT_WEEKDAYS):
        mask, key = masks[i], firsts[i]
        if key is None:
            continue
        cells = _table_of(key, minutes, hours)
        base = i * per_day
        for h in range(per_day):
            if mask >> h & 1:
                _valid, closeness, utc_slot = cells[base + h]
                found.append((not kickoff[h], closeness, weekday, len(found), (weekday, labels[h]), utc_slot))
    found.sort()  # (kickoff possible, closeness, weekday), ties in candidate order (unique: never compared further)
    return tuple(map(itemgetter(4, 5), found))


def _table_of(key: _TableKey, minutes: int, hours: tuple[int, int]) -> tuple[_Cell, ...]:
    """The week's table (:func:`_week_table`) for its key (:func:`_table_key`)."""
    if len(key) == 2:
        return _offset_table(key[0], key[1], minutes, hours)
    return _zone_week_table(key[0], key[1], key[2], minutes, hours)


@lru_cache(maxsize=65536)
def _valid_bits(key: _TableKey, minutes: int, hours: tuple[int, int]) -> tuple[int, ...]:
    """Per weekday (:data:`SLOT_WEEKDAYS`), the week's valid half hours as bits (bit ``h``: the ``h``-th)."""
    cells = _table_of(key, minutes, hours)
    per_day = len(_labels(hours))
    return tuple(sum(1 << h for h in range(per_day) if cells[i * per_day + h][0]) for i in range(len(SLOT_WEEKDAYS)))


@lru_cache(maxsize=64)
def _labels(hours: tuple[int, int]) -> tuple[str, ...]:
    """The working hours' half hours as "HH:MM"."""
    return tuple(f"{t:%H:%M}" for t in _half_hours(hours))


def first_slot_utc(start: date, pairing: MentorPairing) -> datetime | None:
    """The first week's check-in of a rotation starting on ``start``, in UTC (None without a slot)."""
    if pairing.checkin_weekday is None or not pairing.checkin_time_utc:
        return None
    return slot_start_utc(start, (pairing.checkin_weekday, pairing.checkin_time_utc))


def slot_start_utc(start: date, slot: tuple[int, str]) -> datetime:
    """The first occurrence on or after ``start`` of a slot (UTC weekday, "HH:MM"), in UTC."""
    weekday, hhmm = slot
    hh, _, mm = hhmm.partition(":")
    day = start + timedelta(days=(weekday - start.weekday()) % 7)
    return datetime.combine(day, time(int(hh), int(mm or 0)), tzinfo=UTC)


def slot_local(rotation: Span, pairing: MentorPairing, mentor_tz: str) -> datetime | None:
    """The first week's check-in as an aware datetime in the mentor's zone (None without a slot)."""
    first = first_slot_utc(rotation.start, pairing)
    return None if first is None else first.astimezone(zone(mentor_tz))


def slot_key(local: datetime) -> tuple[int, str]:
    """A slot as (mentor-local weekday, "HH:MM"): what :func:`choose_checkin` avoids when ``taken``."""
    return local.weekday(), f"{local:%H:%M}"


@dataclass(frozen=True)
class CheckInEvent:
    kind: str  # kickoff | checkin | wrapup
    start: datetime  # aware, in ``tzid``
    end: datetime
    tzid: str  # the mentor's IANA zone: the series keeps this local time across DST changes


def checkin_events(
    session: Session, pairing: MentorPairing, minutes: int | None = None, hours: tuple[int, int] | None = None
) -> list[CheckInEvent]:
    """The meetings of a pairing, for calendar invites to both people (mentor and rotator).

    * ``kickoff``: on the rotation's first day (its Monday) at the slot's mentor-local time when that is
      inside both working hours, else the first half hour that is (falls back to the slot time);
    * ``checkin``: weekly at the slot, in weeks 2 .. n-1 of an n-week rotation (week 1 has the kickoff);
    * ``wrapup``: at the slot in the last week (the survey goes out that week).

    Every event keeps the same *local* time in the mentor's zone (``tzid``) across daylight-saving
    changes: ``start``/``end`` are aware datetimes in that zone (an iCalendar writer should emit
    ``DTSTART;TZID=<tzid>`` with a VTIMEZONE, or convert each to UTC itself). The slot is stored on the
    pairing as weekday + HH:MM in UTC of the first week's occurrence (see :func:`choose_checkin`).
    Empty when the pairing has no slot. ``minutes``/``hours`` default to ``policy.mentoring``.
    """
    rotation = session.get(Rotation, pairing.rotation_id)
    mentor = session.get(Employee, pairing.mentor_id)
    rotator = session.get(Employee, rotation.employee_id) if rotation else None
    if rotation is None or mentor is None or rotator is None:
        return []
    if minutes is None or hours is None:
        from frontline.core.policy import load_policy

        m = load_policy().mentoring
        minutes = m.checkin_minutes if minutes is None else minutes
        hours = (m.working_hours[0], m.working_hours[1]) if hours is None else hours
    return events_for(rotation.start, rotation.end, pairing, mentor.timezone, rotator.timezone, minutes, hours)


def events_for(
    start: date,
    end: date,
    pairing: MentorPairing,
    mentor_tz: str,
    rotator_tz: str,
    minutes: int,
    hours: tuple[int, int],
) -> list[CheckInEvent]:
    """:func:`checkin_events` without the database."""
    mz, rz = zone(mentor_tz), zone(rotator_tz)
    first_utc = first_slot_utc(start, pairing)
    if first_utc is None:
        return []
    first = first_utc.astimezone(mz)
    tzid = mz.key
    local_t = first.time()
    dur = timedelta(minutes=minutes)
    kickoff = datetime.combine(start, local_t, tzinfo=mz)
    if not _valid_at(kickoff, minutes, rz, hours):
        candidates = (datetime.combine(start, t, tzinfo=mz) for t in _half_hours(hours))
        kickoff = next((c for c in candidates if _valid_at(c, minutes, rz, hours)), kickoff)
    events = [CheckInEvent("kickoff", kickoff, kickoff + dur, tzid)]
    slots = [datetime.combine(first.date() + timedelta(weeks=k), local_t, tzinfo=mz) for k in range(_weeks(start, end))]
    slots = [s for s in slots if s.date() <= end]
    for k, s in enumerate(slots):
        if k == len(slots) - 1:
            events.append(CheckInEvent("wrapup", s, s + dur, tzid))
        elif k >= 1:
            events.append(CheckInEvent("checkin", s, s + dur, tzid))
    return events


@dataclass(frozen=True)
class CheckinSeries:
    first: datetime  # aware, in the local zone the series keeps
    count: int
    minutes: int
    kickoff: datetime | None = None  # replaces the first week's occurrence (rotation's first day)

    @property
    def when(self) -> str:
        """The weekly slot in the zone the series keeps (the mentor's), e.g. "Wednesdays at 10:00 (Europe/Berlin)"."""
        return self.when_in(self.first.tzinfo)

    def weekly(self) -> list[datetime]:
        """The weekly occurrences at the slot (the first week's is replaced by the kickoff when there is one)."""
        weeks = range(1, self.count) if self.count > 1 and self.kickoff is not None else range(self.count)
        return [self.first + timedelta(weeks=k) for k in weeks]  # wall-clock arithmetic: keeps the local time

    def when_in(self, tz: tzinfo | None) -> str:
        """The weekly slot as a recipient in ``tz`` reads it, e.g. "Wednesdays at 04:00 (America/New_York)".

        The series keeps the mentor's local time, so where the two zones change daylight saving time on
        different days the recipient's time moves during the rotation; each change is named with the date
        it starts: "Wednesdays at 04:00 (America/New_York); at 05:00 from Wednesday 1 April 2026"."""
        local = [o.astimezone(tz) for o in self.weekly()] or [self.first.astimezone(tz)]
        head = local[0]
        parts = [f"{WEEKDAY_NAMES[head.weekday()]}s at {head:%H:%M} ({zone_key(head)})"]
        previous = head
        for moment in local[1:]:
            if (moment.weekday(), moment.time()) != (previous.weekday(), previous.time()):
                day = "" if moment.weekday() == previous.weekday() else f"{WEEKDAY_NAMES[moment.weekday()]}s "
                parts.append(f"{day}at {moment:%H:%M} from {longdate(moment.date())}")
            previous = moment
        return "; ".join(parts)

    def overrides(self, names: str) -> tuple[tuple[int, datetime | None, str], ...]:
        """Week 1 is the kickoff, the last week the wrap-up (as :func:`checkin_events`)."""
        if self.count < 2:
            return ()
        return ((0, self.kickoff, f"Kickoff: {names}"), (self.count - 1, None, f"Wrap-up: {names}"))


def longdate(day: date) -> str:
    """E.g. "Wednesday 18 March 2026"."""
    return f"{WEEKDAY_NAMES[day.weekday()]} {day.day} {day:%B %Y}"


def zone_key(moment: datetime) -> str:
    """The IANA name of an aware datetime's zone (``str`` of it for a zone that is not a ZoneInfo)."""
    tz = moment.tzinfo
    return tz.key if isinstance(tz, ZoneInfo) else str(tz)


def checkin_series(
    rotation: Span,
    pairing: MentorPairing,
    mentor: Employee,
    minutes: int,
    org_tz: ZoneInfo,
    rotator: Employee | None = None,
    hours: tuple[int, int] = (9, 17),
) -> CheckinSeries | None:
    """The weekly check-in series of a pairing, or None when the pairing has no slot.

    The pairing stores its slot as weekday + HH:MM UTC for the rotation's first week. The series keeps
    the *local* time that slot has in the mentor's time zone (the organisation's zone ``org_tz`` when
    the mentor's is unknown), so it does not move by an hour when daylight saving starts or ends during
    the rotation. The kickoff (first day) comes from :func:`events_for`, which owns the meeting rules;
    in the calendar it replaces the first week's occurrence and the last occurrence is the wrap-up.
    """
    first_utc = first_slot_utc(rotation.start, pairing)
    if first_utc is None:
        return None
    first = first_utc.astimezone(zone(mentor.timezone, org_tz))
    count = 0
    while first.date() + timedelta(weeks=count) <= rotation.end:
        count += 1
    if count == 0:
        return None
    meetings = events_for(
        rotation.start,
        rotation.end,
        pairing,
        mentor.timezone,
        rotator.timezone if rotator else mentor.timezone,
        minutes,
        hours,
    )
    kickoff = next((m.start for m in meetings if m.kind == "kickoff"), None)
    return CheckinSeries(first=first, count=count, minutes=minutes, kickoff=kickoff)
