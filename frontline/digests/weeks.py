"""The digest's period: one ISO week (``2027-W05``) in the organisation time zone, Monday 00:00 to the
next Monday 00:00 local time. Generic calendar helpers (``iso_week``, ``monday``) are in
:mod:`frontline.core.clock`; these parse and shift the digest's week names."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from frontline.core import clock
from frontline.core.clock import iso_week
from frontline.core.errors import DigestError

_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


def parse_week(week: str) -> tuple[int, int]:
    m = _WEEK.match(week.strip())
    if not m:
        raise DigestError(f"week {week!r}: expected ISO week like 2027-W05")
    year, num = int(m.group(1)), int(m.group(2))
    try:
        date.fromisocalendar(year, num, 1)
    except ValueError:
        raise DigestError(f"week {week!r}: {year} has no ISO week {num}") from None
    return year, num


def week_monday(week: str) -> date:
    year, num = parse_week(week)
    return date.fromisocalendar(year, num, 1)


def shift_week(week: str, weeks: int) -> str:
    return iso_week(week_monday(week) + timedelta(weeks=weeks))


def week_window(week: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of the week in UTC: local Monday 00:00 to the next local Monday 00:00."""
    monday = week_monday(week)
    start = datetime.combine(monday, time(0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(monday + timedelta(days=7), time(0), tzinfo=tz).astimezone(UTC)
    return start, end


def last_completed_week(now: datetime | None = None, tz: ZoneInfo | None = None) -> str:
    """The ISO week before the one containing ``now`` (organisation time zone)."""
    tz = tz or clock.org_tz()
    now = now or clock.utcnow()
    return iso_week(now.astimezone(tz).date() - timedelta(days=7))
