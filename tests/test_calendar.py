"""iCalendar objects and iMIP layout, checked with icalendar, the strict ``ical`` parser and
recurring-ical-events; daylight-saving behaviour of weekly check-in series."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from zoneinfo import ZoneInfo

import pytest
import recurring_ical_events
from ical.calendar_stream import IcsCalendarStream
from icalendar import Calendar

from frontline.calendar.ics import (
    AllDayEvent,
    ItipObject,
    Person,
    TimedEvent,
    clean_name,
    feed_calendar,
    invite_message,
    itip_calendar,
)
from frontline.mentors.checkins import checkin_series
from models import Employee, MentorPairing, Rotation

ORG = Person("Frontline", "frontline@example.com")


def strict(ics: bytes):
    return IcsCalendarStream.calendar_from_ics(ics.decode())


def test_rotation_request_is_all_day_transparent_with_exclusive_end():
    obj = ItipObject(
        "REQUEST",
        AllDayEvent("rotation-7@example.com", "Rotation", date(2026, 3, 2), date(2026, 3, 29)),
        0,
        ORG,
        [Person('Doe, "Bob";\r\nInjected:x', "bob@example.com")],
    )
    ics = itip_calendar(obj).to_ical()
    text = ics.decode()
    assert "DTSTART;VALUE=DATE:20260302\r\n" in text and "DTEND;VALUE=DATE:20260330\r\n" in text
    assert "TRANSP:TRANSPARENT" in text and "METHOD:REQUEST" in text
    unfolded = text.replace("\r\n ", "")
    assert 'ATTENDEE;CN="Doe, Bob; Injected:x";' in unfolded  # quoted, quotes and CR/LF gone
    assert "PARTSTAT=NEEDS-ACTION" in unfolded and "RSVP=TRUE" in unfolded
    assert "ORGANIZER;CN=Frontline:mailto:frontline@example.com" in unfolded
    cal = Calendar.from_ical(ics)
    assert not any(c.errors for c in cal.walk())
    event = strict(ics).events[0]
    assert event.dtstart == date(2026, 3, 2) and event.dtend == date(2026, 3, 30)
    assert event.uid == "rotation-7@example.com" and event.sequence == 0
    # the all-day block covers exactly the 28 days of the rotation
    days = recurring_ical_events.of(cal).between(date(2026, 2, 1), date(2026, 5, 1))
    assert len(days) == 1 and (days[0]["DTEND"].dt - days[0]["DTSTART"].dt).days == 28


def test_cancel_carries_status_cancelled():
    obj = ItipObject(
        "CANCEL",
        AllDayEvent("rotation-7@example.com", "Rotation", date(2026, 3, 2), date(2026, 3, 29)),
        3,
        ORG,
        [Person("Bob", "bob@example.com")],
    )
    cal = Calendar.from_ical(itip_calendar(obj).to_ical())
    assert str(cal["METHOD"]) == "CANCEL"
    event = cal.walk("VEVENT")[0]
    assert str(event["STATUS"]) == "CANCELLED" and int(event["SEQUENCE"]) == 3


def test_invite_mime_layout_and_method_match():
    obj = ItipObject(
        "REQUEST",
        AllDayEvent("rotation-1@example.com", "Rotation", date(2026, 3, 2), date(2026, 3, 29)),
        1,
        ORG,
        [Person("Bob", "bob@example.com")],
    )
    msg = invite_message(obj, to=obj.attendees[0], subject="s", text="plain", html="<p>html</p>")
    parsed = message_from_bytes(msg.as_bytes(), policy=policy.default)
    layout = [(p.get_content_type(), p.get_filename()) for p in parsed.walk()]
    assert layout == [
        ("multipart/mixed", None),
        ("multipart/alternative", None),
        ("text/plain", None),
        ("text/html", None),
        ("text/calendar", None),
        ("application/ics", "invite.ics"),
    ]
    inline, attached = [p for p in parsed.walk() if p.get_content_type() in ("text/calendar", "application/ics")]
    assert inline.get_payload(decode=True) == attached.get_payload(decode=True)
    assert inline.get_param("method") == str(Calendar.from_ical(inline.get_payload(decode=True))["METHOD"]) == "REQUEST"
    assert attached.get_content_disposition() == "attachment"


def test_itip_needs_attendees_and_known_method():
    ev = AllDayEvent("u@x", "s", date(2026, 1, 5), date(2026, 1, 11))
    with pytest.raises(ValueError, match="attendee"):
        itip_calendar(ItipObject("REQUEST", ev, 0, ORG, []))
    with pytest.raises(ValueError, match="method"):
        itip_calendar(ItipObject("PUBLISH", ev, 0, ORG, [ORG]))
    with pytest.raises(ValueError, match="timezone-aware"):
        TimedEvent("u@x", "s", datetime(2026, 1, 5, 10), timedelta(minutes=30))
    assert clean_name('A\r\nB\x00"C"') == "A B C"


def _series(zone: str, start: date, weekday: int, utc_time: str):
    rotation = Rotation(id=1, employee_id=1, start=start, end=start + timedelta(days=27), kind="cycle", due=start)
    mentor = Employee(
        id=2,
        employee_id="m",
        name="M",
        email="m@example.com",
        department_id=1,
        hire_date=date(2020, 1, 1),
        timezone=zone,
        country="DE",
    )
    pairing = MentorPairing(id=1, rotation_id=1, mentor_id=2, checkin_weekday=weekday, checkin_time_utc=utc_time)
    return checkin_series(rotation, pairing, mentor, 30, ZoneInfo("UTC"))


@pytest.mark.parametrize(
    "zone, start, utc_time, local_hour, utc_hours",
    [
        # Europe/Berlin: summer time starts 29 March 2026 (CET +1 -> CEST +2)
        ("Europe/Berlin", date(2026, 3, 16), "09:00", 10, [9, 9, 8, 8]),
        # Europe/Berlin: summer time ends 25 October 2026
        ("Europe/Berlin", date(2026, 10, 12), "08:00", 10, [8, 8, 9, 9]),
        # America/New_York: daylight time starts 8 March 2026 (EST -5 -> EDT -4)
        ("America/New_York", date(2026, 2, 23), "15:00", 10, [15, 15, 14, 14]),
        # America/New_York: daylight time ends 1 November 2026
        ("America/New_York", date(2026, 10, 19), "14:00", 10, [14, 14, 15, 15]),
    ],
)
def test_weekly_checkins_keep_local_time_across_dst(zone, start, utc_time, local_hour, utc_hours):
    series = _series(zone, start, 2, utc_time)  # Wednesdays
    assert series.count == 4 and series.first.hour == local_hour
    assert series.kickoff is not None and series.kickoff.weekday() == 0 and series.kickoff.hour == local_hour
    event = TimedEvent(
        "checkins-1@example.com",
        "Check-in",
        series.first,
        timedelta(minutes=30),
        weekly_count=series.count,
        overrides=series.overrides("R / M"),
    )
    obj = ItipObject("REQUEST", event, 0, ORG, [Person("R", "r@example.com"), Person("M", "m@example.com")])
    ics = itip_calendar(obj).to_ical()
    text = ics.decode()
    assert f"DTSTART;TZID={zone}:" in text and f"TZID:{zone}" in text  # a VTIMEZONE for the TZID
    assert "RRULE:FREQ=WEEKLY;COUNT=4" in text
    for parsed in (Calendar.from_ical(ics),):
        occurrences = recurring_ical_events.of(parsed).between(start, start + timedelta(days=28))
        starts = sorted(o["DTSTART"].dt for o in occurrences)
        assert len(starts) == 4
        assert [s.astimezone(ZoneInfo(zone)).hour for s in starts] == [local_hour] * 4
        assert [s.astimezone(UTC).hour for s in starts] == utc_hours
        assert [s.weekday() for s in starts] == [0, 2, 2, 2]  # week 1: the kickoff on the first day
        titles = [str(o["SUMMARY"]) for o in sorted(occurrences, key=lambda o: o["DTSTART"].dt)]
        assert titles == ["Kickoff: R / M", "Check-in", "Check-in", "Wrap-up: R / M"]
        assert len({str(o["UID"]) for o in occurrences}) == 1
    # the strict parser agrees on the local time and zone of the series
    cal = strict(ics)
    ev = cal.events[0]
    assert ev.dtstart.tzinfo is not None and ev.dtstart.hour == local_hour
    assert [t.tz_id for t in cal.timezones] == [zone]
    occ = list(cal.timeline_tz(ZoneInfo(zone)))
    assert [o.dtstart.hour for o in occ] == [local_hour] * 4


def test_feed_has_no_method_and_refresh_hints():
    items = [AllDayEvent("feed-rotation-1@example.com", "Rotation", date(2026, 3, 2), date(2026, 3, 29))]
    ics = feed_calendar("Jane's rotations", items, sequences={"feed-rotation-1@example.com": 2}).to_ical()
    text = ics.decode()
    assert "METHOD" not in text and "ATTENDEE" not in text
    assert "REFRESH-INTERVAL;VALUE=DURATION:PT12H" in text and "X-PUBLISHED-TTL:PT12H" in text
    assert strict(ics).events[0].sequence == 2
