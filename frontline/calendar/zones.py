"""VTIMEZONE components: icalendar's ``Timezone.from_tzid(tzid, first_date=..., last_date=...)``, the same
component, without walking to the year 9999 for zones whose offset no longer changes.

icalendar finds a zone's transitions by stepping through time (64 days, then 32, ..., then 1 second)
until the offset changes. After a zone's last transition (Asia/Kolkata, Asia/Tokyo, UTC, America/Sao_Paulo
since 2019, ...) the offset never changes, so its first step size runs on until ``datetime`` overflows at
the year 9999: about 45,000 steps and 13 ms for each (zone, date range), a fifth of the 10k demo's invite
step. Here the walk is icalendar's, step for step, except that a segment starting after the zone's last
transition, in a zone whose rule after it has no daylight-saving time, is known to run to the end, which
is where icalendar's walk ends too (its overflow ``break``): the same starts, the same component.

The zone's last transition and rule are read with the standard library's pure-Python ``zoneinfo``
(from the same file the C implementation reads). Zones that are not ``zoneinfo.ZoneInfo`` objects are
walked in full. ``tests/test_ics_writer.py`` compares the bytes with icalendar's for many zones and ranges.
"""

from __future__ import annotations

import zoneinfo
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import _zoneinfo  # type: ignore[attr-defined]  # the pure-Python implementation

from icalendar import Timezone, TimezoneDaylight, TimezoneStandard
from icalendar.timezone import tzp

_STEPS: list[timedelta] = Timezone._from_tzinfo_skip_search  # icalendar's step sizes, largest first
_MARGIN = timedelta(days=2)  # more than any UTC offset: a local time this far after the last transition is after it


def from_tzid(tzid: str, first_date: date, last_date: date) -> Timezone:
    """``Timezone.from_tzid(tzid, first_date=first_date, last_date=last_date)`` (raises the same
    ``ValueError`` for a zone it does not know)."""
    zone = tzp.timezone(tzid)
    if zone is None:
        raise ValueError(f"Unkown timezone {tzid}.")
    return from_tzinfo(zone, tzid, first_date, last_date)


@lru_cache(maxsize=256)
def _constant_from(key: str) -> datetime | None:
    """The naive UTC time after which zone ``key``'s offset never changes again, or None when its rule
    after the last transition has daylight-saving time (or the zone cannot be read)."""
    try:
        zone = _zoneinfo.ZoneInfo.no_cache(key)
        after, transitions = zone._tz_after, zone._trans_utc
        constant = isinstance(after, _zoneinfo._ttinfo)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError, AttributeError):
        return None  # AttributeError: a Python whose private zoneinfo differs; icalendar's full walk then
    if not constant:
        return None  # a POSIX rule with DST: transitions every year, forever
    last = transitions[-1] if transitions else None
    if last is None:
        return datetime.min + _MARGIN
    return datetime.fromtimestamp(last, UTC).replace(tzinfo=None)


def _runs_to_the_end(zone: tzinfo, start: datetime) -> bool:
    """Whether the offset at ``start`` (local) holds for every later time (to ``datetime.max``)."""
    if type(zone) is not zoneinfo.ZoneInfo:
        return False
    after = _constant_from(zone.key)
    return after is not None and start.replace(tzinfo=None) - after > _MARGIN


_segment_ends: dict[tuple[tzinfo, datetime, int], datetime] = {}


def _segment_end(timezone: tzinfo, start: datetime, normalize: Any) -> datetime:
    """icalendar's search for the end of the segment that begins at ``start``: the last second with
    ``start``'s offset, stepping from 64 days down to 1 second. For a ``zoneinfo.ZoneInfo`` (whose offsets
    never change) it is kept per start, so ranges of the same zone that reach the same transition walk on
    from there once."""
    kept = type(timezone) is zoneinfo.ZoneInfo
    if kept:
        key = (timezone, start.replace(tzinfo=None), start.fold)
        found = _segment_ends.get(key)
        if found is not None:
            return found
    offset_to = start.utcoffset()
    end = start
    for add_offset in _STEPS:
        last_end = end
        end = normalize(end + add_offset)
        try:
            while end.utcoffset() == offset_to:
                last_end = end
                end = normalize(end + add_offset)
        except OverflowError:
            break  # icalendar: zoneinfo does not go all the way
        end = last_end
    if kept:
        if len(_segment_ends) >= 65536:
            _segment_ends.clear()
        _segment_ends[key] = end
    return end


def from_tzinfo(timezone: tzinfo, tzid: str, first_date: date, last_date: date) -> Timezone:
    """``Timezone.from_tzinfo`` of icalendar 7 (the same loop and component), with the walk of a segment
    that runs to the end skipped. Long because it is icalendar's function, kept as it is."""
    normalize = getattr(timezone, "normalize", lambda dt: dt)  # pytz compatibility
    first_datetime = datetime(first_date.year, first_date.month, first_date.day)
    last_datetime = datetime(last_date.year, last_date.month, last_date.day)
    if hasattr(timezone, "localize"):  # pytz compatibility
        first_datetime = timezone.localize(first_datetime)
        last_datetime = timezone.localize(last_datetime)
    else:
        first_datetime = first_datetime.replace(tzinfo=timezone)
        last_datetime = last_datetime.replace(tzinfo=timezone)
    offsets: dict[tuple[timedelta | None, timedelta | None, str, bool], list[datetime]] = defaultdict(list)
    start = first_datetime
    offset_to = None
    while start < last_datetime:
        offset_from = offset_to
        end = start
        offset_to = end.utcoffset()
        to_the_end = _runs_to_the_end(timezone, start)
        if not to_the_end:
            end = _segment_end(timezone, start, normalize)
        is_standard = start.dst() == timedelta()
        name = start.tzname()
        if name is None:
            name = str(offset_to)
        offsets[(offset_from, offset_to, name, is_standard)].append(start.replace(tzinfo=None))
        if to_the_end:
            break  # icalendar's walk overflows in this segment, and its next start is past last_datetime
        start = normalize(end + _STEPS[-1])
    tz = Timezone()
    tz.add("TZID", tzid)
    tz.add("COMMENT", f"This timezone only works from {first_date} to {last_date}.")
    for (offset_from, offset_to, tzname, is_standard), starts in offsets.items():
        first_start = min(starts)
        starts.remove(first_start)
        if first_start.date() == last_date:
            first_start = datetime(last_date.year, last_date.month, last_date.day)
        subcomponent = TimezoneStandard() if is_standard else TimezoneDaylight()
        if offset_from is None:
            offset_from = offset_to
        subcomponent.TZOFFSETFROM = offset_from
        subcomponent.TZOFFSETTO = offset_to
        subcomponent.add("TZNAME", tzname)
        subcomponent.DTSTART = first_start
        if starts:
            subcomponent.add("RDATE", starts)
        tz.add_component(subcomponent)
    return tz
