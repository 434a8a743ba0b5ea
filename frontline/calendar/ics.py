"""iCalendar objects and iMIP mail for rotations and mentor check-ins (RFC 5545 / 5546 / 6047).

* A rotation is one all-day VEVENT spanning the whole rotation: ``DTSTART;VALUE=DATE`` on the first day,
  an *exclusive* ``DTEND;VALUE=DATE`` (last day + 1), ``TRANSP:TRANSPARENT`` so it does not block
  free/busy.
* Check-ins (kickoff, weekly check-ins, wrap-up) are timed events in a real time zone with a
  ``VTIMEZONE`` for every ``TZID`` (``Calendar.add_missing_timezones``); a weekly series is one VEVENT
  with an ``RRULE`` in the local zone, so it keeps its local wall-clock time across daylight-saving
  changes.
* Each emailed object is an iTIP ``REQUEST`` or ``CANCEL`` with the configured sender as ``ORGANIZER``
  (``mailto:``), the recipient as ``ATTENDEE`` (``PARTSTAT=NEEDS-ACTION;RSVP=TRUE``, ``CN`` quoted, with
  CR/LF/quotes/control characters removed), a stable ``UID`` derived from database keys, the
  ``SEQUENCE`` kept in the database, and a fresh ``DTSTAMP``. One iTIP object (one UID) per email.
* :func:`invite_message` builds the CalConnect layout: ``multipart/mixed`` → ``multipart/alternative``
  (text, HTML, ``text/calendar; method=X``) + the same bytes as an ``invite.ics`` attachment
  (``application/ics``); the MIME ``method`` always equals the object's ``METHOD``.
* :func:`feed_calendar` builds the METHOD-less subscription feed (no attendees).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from email.utils import parseaddr
from functools import lru_cache

from icalendar import Calendar, Event, Timezone, vCalAddress

from frontline.calendar import zones
from frontline.core import clock
from frontline.core.text import one_line
from frontline.mail import address
from frontline.mail.mime import shaped
from frontline.mail.policy import CONTENT_MANAGER, MAIL_POLICY, encode_base64, encode_text

PRODID = "-//Frontline//Frontline support rotations//EN"


@dataclass(frozen=True)
class Person:
    name: str
    email: str


@dataclass(frozen=True)
class TimedEvent:
    """A timed meeting in the time zone of ``start`` (an aware datetime with a ZoneInfo tzinfo).
    ``weekly_count`` makes it a weekly series of that many occurrences (RRULE in local time)."""

    uid: str
    summary: str
    start: datetime
    duration: timedelta
    description: str = ""
    weekly_count: int | None = None
    # changed occurrences of the series, same UID (RECURRENCE-ID overrides): (occurrence index from 0,
    # new start or None to keep the time, summary). E.g. the first week's slot moved to the kickoff.
    overrides: tuple[tuple[int, datetime | None, str], ...] = ()

    def __post_init__(self):
        if self.start.tzinfo is None:
            raise ValueError(f"{self.uid}: check-in times must be timezone-aware (floating times are not allowed)")


@dataclass(frozen=True)
class AllDayEvent:
    uid: str
    summary: str
    first_day: date
    last_day: date  # inclusive; DTEND is last_day + 1
    description: str = ""
    url: str | None = None

    def __post_init__(self):
        if self.last_day < self.first_day:
            raise ValueError(f"{self.uid}: last day {self.last_day} is before first day {self.first_day}")


@dataclass
class ItipObject:
    """One iTIP message: a method and the VEVENT(s) of ONE UID."""

    method: str  # REQUEST | CANCEL
    event: AllDayEvent | TimedEvent
    sequence: int
    organizer: Person
    attendees: list[Person] = field(default_factory=list)


def clean_name(name: str) -> str:
    """A display name safe for a CN parameter or a mail header: no control characters (CR/LF included),
    line separators (U+2028, U+2029, U+0085) or double quotes."""
    return one_line((name or "").replace('"', ""))


@lru_cache(maxsize=64)
def sender_domain(sender: str) -> str:
    return parseaddr(sender)[1].rpartition("@")[2] or "frontline.invalid"


def rotation_uid(rotation_id: int, sender: str) -> str:
    return f"rotation-{rotation_id}@{sender_domain(sender)}"


def checkins_uid(rotation_id: int, sender: str) -> str:
    return f"checkins-{rotation_id}@{sender_domain(sender)}"


def _address(person: Person, *, attendee: bool) -> vCalAddress:
    addr = vCalAddress(f"mailto:{person.email}")
    name = clean_name(person.name)
    if name:
        addr.params["CN"] = name  # icalendar quotes it when it contains , ; :
    if attendee:
        addr.params["CUTYPE"] = "INDIVIDUAL"
        addr.params["ROLE"] = "REQ-PARTICIPANT"
        addr.params["PARTSTAT"] = "NEEDS-ACTION"
        addr.params["RSVP"] = "TRUE"
    return addr


def _vevents(item: AllDayEvent | TimedEvent, *, sequence: int, stamp: datetime) -> list[Event]:
    """The VEVENTs of one UID: the event (or series master) and any RECURRENCE-ID overrides."""
    events = [_vevent(item, sequence=sequence, stamp=stamp)]
    if isinstance(item, TimedEvent) and item.weekly_count and item.weekly_count > 1:
        for index, new_start, summary in item.overrides:
            if not 0 <= index < item.weekly_count:
                raise ValueError(f"{item.uid}: override {index} is outside the {item.weekly_count} occurrences")
            original = _occurrence(item.start, index)
            start = new_start or original
            override = Event.new(
                uid=item.uid,
                summary=summary,
                start=start,
                end=start + item.duration,
                stamp=stamp,
                sequence=sequence,
                description=item.description or None,
                recurrence_id=original,
            )
            override.add("transp", "OPAQUE")
            events.append(override)
    return events


def _occurrence(first: datetime, index: int) -> datetime:
    """The ``index``-th weekly occurrence at the same local wall-clock time (DST-safe)."""
    local = first.replace(tzinfo=None) + timedelta(weeks=index)
    return local.replace(tzinfo=first.tzinfo)


def _vevent(item: AllDayEvent | TimedEvent, *, sequence: int, stamp: datetime) -> Event:
    if isinstance(item, AllDayEvent):
        event = Event.new(
            uid=item.uid,
            summary=item.summary,
            start=item.first_day,
            end=item.last_day + timedelta(days=1),
            stamp=stamp,
            sequence=sequence,
            description=item.description or None,
            url=item.url,
        )
        event.add("transp", "TRANSPARENT")
    else:
        event = Event.new(
            uid=item.uid,
            summary=item.summary,
            start=item.start,
            end=item.start + item.duration,
            stamp=stamp,
            sequence=sequence,
            description=item.description or None,
        )
        event.add("transp", "OPAQUE")
        if item.weekly_count and item.weekly_count > 1:
            event.add("rrule", {"FREQ": "WEEKLY", "COUNT": item.weekly_count})
    return event


def _span(item: AllDayEvent | TimedEvent) -> tuple[date, date]:
    if isinstance(item, AllDayEvent):
        return item.first_day, item.last_day
    last = item.start + timedelta(weeks=max(0, (item.weekly_count or 1) - 1)) + item.duration
    return item.start.date(), last.date()


def _with_timezones(cal: Calendar, items) -> None:
    """Add the VTIMEZONE of every zone the events use (what ``Calendar.add_missing_timezones`` does, in
    the same order), each built once per (zone, first day, last day) and process (see :func:`_timezone`)."""
    timed = [i for i in items if isinstance(i, TimedEvent)]
    if timed:
        spans = [_span(i) for i in timed]
        first = min(s for s, _ in spans) - timedelta(days=366)
        last = max(e for _, e in spans) + timedelta(days=366)
        at = len(cal.timezones)
        for tzid in cal.get_missing_tzids():
            component = _timezone(tzid, first, last)
            if component is not None:
                cal.subcomponents.insert(at, component)
                at += 1


@lru_cache(maxsize=4096)
def _timezone(tzid: str, first: date, last: date) -> Timezone | None:
    """The VTIMEZONE of ``tzid`` with its transitions from ``first`` to ``last``: building one walks the
    zone's rules (about a quarter of the time an invite took); a batch of invites shares a few zones
    and start weeks. The component is shared between messages and never changed after this."""
    try:
        return zones.from_tzid(tzid, first, last)  # Timezone.from_tzid's component, faster
    except ValueError:  # a zone icalendar does not know: left out, as add_missing_timezones does
        return None


def itip_calendar(obj: ItipObject, *, stamp: datetime | None = None) -> Calendar:
    """The iCalendar object for an iTIP REQUEST or CANCEL."""
    method = obj.method.upper()
    if method not in {"REQUEST", "CANCEL"}:
        raise ValueError(f"unsupported iTIP method {obj.method!r}")
    if not obj.attendees:
        raise ValueError(f"{obj.event.uid}: an iTIP {method} needs at least one attendee")
    stamp = stamp or clock.utcnow()
    cal = Calendar.new(prodid=PRODID, method=method)
    del cal["UID"]  # keep the object minimal: the event UID is the one that matters
    events = _vevents(obj.event, sequence=obj.sequence, stamp=stamp)
    if method == "CANCEL":
        events = events[:1]  # cancelling the master cancels the whole series, overrides included
    for event in events:
        event.add("organizer", _address(obj.organizer, attendee=False))
        for person in obj.attendees:
            event.add("attendee", _address(person, attendee=True))
        event.add("status", "CANCELLED" if method == "CANCEL" else "CONFIRMED")
        cal.add_component(event)
    _with_timezones(cal, [obj.event])
    return cal


def invite_message(
    obj: ItipObject,
    *,
    to: Person,
    subject: str,
    text: str,
    html: str,
    stamp: datetime | None = None,
) -> EmailMessage:
    """The iMIP email for one recipient (``multipart/mixed`` as described in the module docstring)."""
    ics = _itip_bytes(obj, stamp) if stamp is not None else itip_calendar(obj).to_ical()
    method = obj.method.upper()
    policy = MAIL_POLICY
    leading = [
        ("To", address(clean_name(to.name), to.email)),
        ("Subject", one_line(subject)),
        ("From", _format_person(obj.organizer)),
    ]

    def build() -> EmailMessage:
        msg = EmailMessage(policy=policy)
        for name, value in leading:
            msg[name] = value
        msg.set_content(text)  # text/plain
        msg.add_alternative(html, subtype="html")
        msg.add_alternative(  # the same CRLF bytes as the attachment
            ics,
            maintype="text",
            subtype="calendar",
            params={"method": method, "charset": "UTF-8"},
            cte="base64",
        )
        msg.make_mixed()
        msg.add_attachment(ics, maintype="application", subtype="ics", filename="invite.ics")
        return msg

    if policy.content_manager is not CONTENT_MANAGER:
        return build()
    text_cte, text_payload = encode_text(text, policy)
    html_cte, html_payload = encode_text(html, policy)
    ics_payload = encode_base64(ics, policy)
    payloads = [text_payload, html_payload, ics_payload, ics_payload]
    return shaped(policy, ("invite", method, text_cte, html_cte), leading, payloads, build)


def _itip_bytes(obj: ItipObject, stamp: datetime) -> bytes:
    """``itip_calendar(obj, stamp=stamp).to_ical()``, built once for the recipients of the same object
    (a check-in REQUEST goes to rotator and mentor with the same attendees)."""
    return _itip_bytes_of(obj.method, obj.event, obj.sequence, obj.organizer, tuple(obj.attendees), stamp)


@lru_cache(maxsize=64)
def _itip_bytes_of(
    method: str,
    event: AllDayEvent | TimedEvent,
    sequence: int,
    organizer: Person,
    attendees: tuple[Person, ...],
    stamp: datetime,
) -> bytes:
    obj = ItipObject(method, event, sequence, organizer, list(attendees))
    written = itip_bytes(obj, stamp)
    return written if written is not None else itip_calendar(obj, stamp=stamp).to_ical()


# --- the .ics text written directly ------------------------------------------------------------------
# ``itip_calendar(obj, stamp=stamp).to_ical()`` builds an icalendar object tree per message and folds
# every line a character at a time: about a third of an invite's time. :func:`itip_bytes` writes the same
# bytes from the fixed layout of an iTIP object (``tests/test_ics_writer.py`` compares the two on hostile
# names and texts, long lines and many zones; ``tests/test_bulk_mail.py`` on whole outboxes).

_FOLD_AT = 74  # icalendar's _foldline: at most 74 octets a line before "CRLF SPACE" (RFC 5545: 75)
_ESCAPED_AT_END = (ord("\\"), ord("^"))  # not left last on a folded line (icalendar issue #1501)


def _fold(line: str) -> bytes:
    """One content line folded as icalendar folds it: UTF-8, at most 74 octets before each fold, never
    inside a character, and a backslash or caret that ends a full line moved to the next one."""
    data = line.encode("utf-8")
    if len(data) <= _FOLD_AT:
        return data
    chunks = []
    start, end = 0, len(data)
    while end - start > _FOLD_AT:
        cut = start + _FOLD_AT
        while data[cut] & 0xC0 == 0x80:  # a UTF-8 continuation byte: cut before its character
            cut -= 1
        if data[cut - 1] in _ESCAPED_AT_END and cut - start > 1:
            cut -= 1
        chunks.append(data[start:cut])
        start = cut
    chunks.append(data[start:])
    return b"\r\n ".join(chunks)


def _text(value: str) -> str:
    """RFC 5545 TEXT escaping, in icalendar's order (``\\N`` read as a newline first; CR LF, LF and CR each
    become ``\\n``)."""
    return (
        value.replace("\\N", "\n")
        .replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\n")
    )


def _cn(name: str) -> str:
    """A CN parameter value as icalendar writes it: RFC 6868 escapes (``^`` ``^^``, newline ``^n``,
    ``"`` ``^'``), then double quotes when it holds a space, ``'``, ``,``, ``;``, ``:`` or ``’``."""
    value = name.replace("^", "^^").replace("\r\n", "^n").replace("\r", "^n").replace("\n", "^n")
    value = value.replace('"', "^'")
    if any(c in value for c in " ',;:\u2019"):
        return f'"{value}"'
    return value


_ATTENDEE_PARAMS = "CUTYPE=INDIVIDUAL;PARTSTAT=NEEDS-ACTION;ROLE=REQ-PARTICIPANT;RSVP=TRUE"


def _address_line(prop: str, person: Person, *, attendee: bool) -> bytes:
    """ORGANIZER or ATTENDEE as :func:`_address` makes it (parameters in icalendar's sorted order)."""
    name = clean_name(person.name)
    params = [f"CN={_cn(name)}"] if name else []
    if attendee:
        params.append(_ATTENDEE_PARAMS)
    head = ";".join([prop, *params])
    return _fold(f"{head}:mailto:{person.email}")


@lru_cache(maxsize=256)
def _zone_form(tzinfo) -> tuple[str, bool] | None:
    """How icalendar writes a date-time in ``tzinfo``: its parameters (``;TZID=...`` or nothing) and
    whether the value ends in ``Z``; asked of icalendar once per zone. None for a zone without a plain
    ``TZID`` (written by icalendar itself then)."""
    from icalendar import vDDDTypes

    prop = vDDDTypes(datetime(2026, 1, 1, 12, tzinfo=tzinfo))
    params = prop.params.to_ical().decode()
    utc = prop.to_ical().endswith(b"Z")
    if utc and not params:
        return "", True
    if not utc and params.startswith("TZID=") and ";" not in params and '"' not in params:
        return ";" + params, False
    return None


def _when(prop: str, value: date | datetime) -> str | None:
    if not isinstance(value, datetime):
        return f"{prop};VALUE=DATE:{value.year:04}{value.month:02}{value.day:02}"
    form = _zone_form(value.tzinfo)
    if form is None:
        return None
    params, utc = form
    stamp = f"{value.year:04}{value.month:02}{value.day:02}T{value.hour:02}{value.minute:02}{value.second:02}"
    return f"{prop}{params}:{stamp}{'Z' if utc else ''}"


def _vevent_lines(
    obj: ItipObject, start, end, stamp: str, summary: str, recurrence_id: datetime | None, master: bool
) -> list[bytes] | None:
    """One VEVENT of :func:`itip_calendar`, in icalendar's property order (SUMMARY, DTSTART, DTEND,
    DTSTAMP, UID, RECURRENCE-ID, SEQUENCE, RRULE, then the rest by name). None when a time needs
    icalendar's own writing. Long because it is the property list itself, one line each."""
    item = obj.event
    lines = [_when("DTSTART", start), _when("DTEND", end)]
    recurrence = _when("RECURRENCE-ID", recurrence_id) if recurrence_id is not None else ""
    if None in lines or recurrence is None:
        return None
    out = [b"BEGIN:VEVENT", _fold("SUMMARY:" + _text(summary))]
    out += [_fold(line) for line in lines if line]
    out += [stamp.encode(), _fold("UID:" + _text(item.uid))]
    if recurrence:
        out.append(_fold(recurrence))
    out.append(f"SEQUENCE:{obj.sequence}".encode())
    if master and isinstance(item, TimedEvent) and item.weekly_count and item.weekly_count > 1:
        out.append(f"RRULE:FREQ=WEEKLY;COUNT={item.weekly_count}".encode())
    out += [_address_line("ATTENDEE", person, attendee=True) for person in obj.attendees]
    if item.description:
        out.append(_fold("DESCRIPTION:" + _text(item.description)))
    out.append(_address_line("ORGANIZER", obj.organizer, attendee=False))
    out.append(b"STATUS:CANCELLED" if obj.method.upper() == "CANCEL" else b"STATUS:CONFIRMED")
    if isinstance(item, AllDayEvent):
        out.append(b"TRANSP:TRANSPARENT")
        if item.url:
            out.append(_fold("URL:" + item.url))
    else:
        out.append(b"TRANSP:OPAQUE")
    out.append(b"END:VEVENT")
    return out


@lru_cache(maxsize=4096)
def _timezone_bytes(tzid: str, first: date, last: date) -> bytes:
    """The VTIMEZONE block :func:`_with_timezones` adds, as bytes (built once per zone and date range)."""
    component = _timezone(tzid, first, last)
    return component.to_ical() if component is not None else b""


def itip_bytes(obj: ItipObject, stamp: datetime) -> bytes | None:
    """``itip_calendar(obj, stamp=stamp).to_ical()``, written directly; None for what the direct writer
    does not cover (a stamp not in UTC, zones without a plain TZID, overrides in another zone), which
    icalendar then writes. Long because it is the calendar's layout, event by event."""
    method = obj.method.upper()
    if method not in {"REQUEST", "CANCEL"} or not obj.attendees:
        return None  # itip_calendar raises the error
    item = obj.event
    dtstamp = _when("DTSTAMP", stamp)
    if dtstamp is None or not dtstamp.endswith("Z"):
        return None
    events: list[list[bytes] | None]
    zone_block = b""
    if isinstance(item, AllDayEvent):
        end_day = item.last_day + timedelta(days=1)
        events = [_vevent_lines(obj, item.first_day, end_day, dtstamp, item.summary, None, True)]
    else:
        events = [_vevent_lines(obj, item.start, item.start + item.duration, dtstamp, item.summary, None, True)]
        if item.weekly_count and item.weekly_count > 1:
            for index, new_start, summary in item.overrides:
                if not 0 <= index < item.weekly_count:
                    return None  # _vevents raises the error
                if method == "CANCEL":
                    continue  # cancelling the master cancels the whole series, overrides included
                original = _occurrence(item.start, index)
                start = new_start or original
                if start.tzinfo is not item.start.tzinfo:
                    return None
                events.append(_vevent_lines(obj, start, start + item.duration, dtstamp, summary, original, False))
        form = _zone_form(item.start.tzinfo)
        if form is not None and not form[1]:
            tzid = form[0].removeprefix(";TZID=")
            first, last = _span(item)
            zone_block = _timezone_bytes(tzid, first - timedelta(days=366), last + timedelta(days=366))
    head = [b"BEGIN:VCALENDAR", b"VERSION:2.0", _fold("PRODID:" + _text(PRODID)), b"METHOD:" + method.encode()]
    body: list[bytes] = []
    for lines in events:
        if lines is None:
            return None
        body += lines
    return b"\r\n".join(head) + b"\r\n" + zone_block + b"\r\n".join(body) + b"\r\nEND:VCALENDAR\r\n"


def _format_person(person: Person) -> str:
    return str(address(clean_name(person.name), person.email))


def feed_calendar(
    name: str,
    items: list[AllDayEvent | TimedEvent],
    *,
    sequences: dict[str, int] | None = None,
    refresh: timedelta = timedelta(hours=12),
) -> Calendar:
    """A subscription feed (no METHOD, no attendees) with REFRESH-INTERVAL and X-PUBLISHED-TTL.
    ``sequences`` (UID -> SEQUENCE) lets clients notice changed events."""
    stamp = clock.utcnow()
    cal = Calendar.new(prodid=PRODID, name=name)  # NAME and X-WR-CALNAME
    del cal["UID"]
    ttl = _duration(refresh)
    cal.add("refresh-interval", refresh, parameters={"VALUE": "DURATION"})
    cal["X-PUBLISHED-TTL"] = ttl
    for item in items:
        for event in _vevents(item, sequence=(sequences or {}).get(item.uid, 0), stamp=stamp):
            cal.add_component(event)
    _with_timezones(cal, items)
    return cal


def _duration(value: timedelta) -> str:
    from icalendar import vDuration

    return vDuration(value).to_ical().decode()


def organizer_from_settings() -> Person:
    from frontline.core.settings import get_settings

    name, addr = parseaddr(get_settings().mail_from)
    return Person(name=name or "Frontline", email=addr)
