"""The .ics text of invites is written directly (``frontline.calendar.ics.itip_bytes``): byte for byte what
icalendar writes for the same iTIP object (``itip_calendar(...).to_ical()``), on names and texts with
RFC 5545 and RFC 6868 specials, CR/LF, non-ASCII and long lines that fold inside multi-byte characters and
next to escapes, all-day and timed events, weekly series with overrides across daylight-saving changes,
in many zones; and what it writes parses with the strict ``ical`` parser."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from ical.calendar_stream import IcsCalendarStream
from icalendar.parser.string import _foldline

from frontline.calendar import ics
from frontline.calendar.ics import AllDayEvent, ItipObject, Person, TimedEvent, itip_bytes, itip_calendar

ZONES = [
    "Europe/Berlin",
    "America/New_York",
    "Asia/Tokyo",
    "UTC",
    "Australia/Sydney",
    "Europe/London",
    "America/Sao_Paulo",
    "Asia/Kolkata",
    "Pacific/Chatham",
    "America/St_Johns",
    "Africa/Casablanca",
    "Etc/GMT+5",
]
PIECES = [
    "Zoë",
    "Ångström",
    "Doe, Jane",
    "a;b",
    "x:y",
    "O'Brien",
    "O’Brien",
    'say "hi"',
    "back\\slash",
    "\\N",
    "caret^",
    "line\r\nbreak",
    "cr\ronly",
    "lf\nonly",
    "\u2028sep",
    "tab\there",
    "日本語の名前",
    "emoji 🎉",
    "e\u0301",
    " ",
    ",",
    ";",
    "\\",
    "^",
    "mailto:x",
    "https://x.example/a?b=1;c=2,d",
]


def _text(rng: random.Random, longest: int) -> str:
    out = ""
    while len(out) < rng.randint(0, longest):
        out += rng.choice(PIECES) + rng.choice(["", " ", "x" * rng.randint(1, 40)])
    return out


def _object(rng: random.Random) -> ItipObject:
    people = [Person(_text(rng, 90), f"p{rng.randint(0, 9)}@example.com") for _ in range(rng.randint(1, 3))]
    organizer = Person(rng.choice(["Frontline", "Frontline Ø", "HR, Support", _text(rng, 40)]), "hr@example.com")
    uid = rng.choice(["rotation-7@example.com", "checkins-12@example.com", "u;1,\\x@e"])
    sequence = rng.randint(0, 12)
    method = rng.choice(["REQUEST", "CANCEL"])
    summary, description = _text(rng, 160), rng.choice(["", _text(rng, 400)])
    if rng.random() < 0.4:
        first = date(2026, 1, 1) + timedelta(days=rng.randint(0, 500))
        url = rng.choice([None, "https://frontline.example/observe/7?t=a;b,c" + "x" * rng.randint(0, 80)])
        event = AllDayEvent(uid, summary, first, first + timedelta(days=rng.randint(0, 40)), description, url)
    else:
        tz = ZoneInfo(rng.choice(ZONES))
        start = datetime(2026, 1, 1, rng.randint(0, 23), rng.choice([0, 15, 30, 45]), tzinfo=tz)
        start += timedelta(days=rng.randint(0, 500))  # wall-clock days: across DST changes
        count = rng.choice([None, 1, 2, 4, 8])
        overrides: list[tuple[int, datetime | None, str]] = []
        if count and count > 1:
            overrides.append((0, start - timedelta(days=1, hours=rng.randint(0, 3)), _text(rng, 60)))
            overrides.append((count - 1, None, _text(rng, 60)))
        minutes = timedelta(minutes=rng.choice([30, 45, 60]))
        event = TimedEvent(uid, summary, start, minutes, description, count, tuple(overrides))
    return ItipObject(method, event, sequence, organizer, people)


@pytest.mark.parametrize("seed", range(8))
def test_written_ics_is_what_icalendar_writes(seed):
    rng = random.Random(seed)
    written = 0
    for _ in range(150):
        obj = _object(rng)
        stamp = datetime(2026, 3, 2, 8, 30, rng.randint(0, 59), tzinfo=UTC)
        fast = itip_bytes(obj, stamp)
        assert fast is not None, obj  # every object Frontline makes is written directly
        assert fast == itip_calendar(obj, stamp=stamp).to_ical(), obj
        assert all(len(line) <= 75 for line in fast.split(b"\r\n"))
        written += 1
    assert written == 150


def test_written_ics_parses_with_the_strict_parser():
    rng = random.Random(99)
    for _ in range(60):
        obj = _object(rng)
        fast = itip_bytes(obj, datetime(2026, 3, 2, 8, 30, tzinfo=UTC))
        assert fast is not None
        calendar = IcsCalendarStream.calendar_from_ics(fast.decode())
        assert calendar.events[0].uid == obj.event.uid
        said = obj.event.summary.replace("\\N", "\n").replace("\r\n", "\n").replace("\r", "\n")
        assert (calendar.events[0].summary or "") == said  # a literal \N is a newline to icalendar


def test_folds_at_the_width_icalendar_uses():
    for length in range(60, 160):
        for filler in ("x", "é", "🎉", "\\", "^", ";"):
            line = "SUMMARY:" + filler * length
            assert ics._fold(line) == _foldline(line).encode(), (filler, length)


def test_what_the_writer_does_not_cover_is_left_to_icalendar():
    naive_override = TimedEvent(
        "u@x",
        "s",
        datetime(2026, 3, 3, 10, tzinfo=ZoneInfo("Europe/Berlin")),
        timedelta(minutes=30),
        weekly_count=3,
        overrides=((1, datetime(2026, 3, 10, 11), "moved"),),
    )
    obj = ItipObject("REQUEST", naive_override, 0, Person("F", "f@x"), [Person("A", "a@x")])
    assert itip_bytes(obj, datetime(2026, 3, 2, tzinfo=UTC)) is None
    assert itip_bytes(obj, datetime(2026, 3, 2, tzinfo=ZoneInfo("Europe/Berlin"))) is None


def test_vtimezone_is_what_icalendar_builds_in_every_zone():
    """``zones.from_tzid`` (the walk without the steps to the year 9999 after a zone's last transition) is
    icalendar's ``Timezone.from_tzid``, byte for byte, in every zone the standard library knows, over ranges
    like the invites' (a year either side of the events) and ranges that start before, around and long after
    a zone's last transition."""
    from zoneinfo import available_timezones

    from icalendar import Timezone

    from frontline.calendar import zones

    rng = random.Random(14)
    for tzid in sorted(available_timezones()):
        first = date(1960, 1, 1) + timedelta(days=rng.randrange(0, 30000))
        last = first + timedelta(days=rng.choice([0, 1, 366, 800, 1500]))
        expected = Timezone.from_tzid(tzid, first_date=first, last_date=last).to_ical()
        assert zones.from_tzid(tzid, first, last).to_ical() == expected, (tzid, first, last)
    for tzid in ["Asia/Kolkata", "America/Sao_Paulo", "UTC", "Etc/GMT+5", "Asia/Tokyo", "Europe/Moscow"]:
        for first in [date(1940, 3, 1), date(2019, 1, 1), date(2019, 11, 2), date(2025, 6, 1), date(9990, 1, 1)]:
            last = first + timedelta(days=800)
            expected = Timezone.from_tzid(tzid, first_date=first, last_date=last).to_ical()
            assert zones.from_tzid(tzid, first, last).to_ical() == expected, (tzid, first, last)
    # ranges of one zone that share transitions (the walk from a transition on is kept per start)
    for tzid in ["Europe/Berlin", "America/New_York", "Australia/Sydney", "Pacific/Chatham", "Africa/Casablanca"]:
        for _ in range(25):
            first = date(2025, 1, 1) + timedelta(days=rng.randrange(0, 120))
            last = first + timedelta(days=rng.randrange(366, 900))
            expected = Timezone.from_tzid(tzid, first_date=first, last_date=last).to_ical()
            assert zones.from_tzid(tzid, first, last).to_ical() == expected, (tzid, first, last)
    with pytest.raises(ValueError):
        zones.from_tzid("Nowhere/Atlantis", date(2026, 1, 1), date(2027, 1, 1))
