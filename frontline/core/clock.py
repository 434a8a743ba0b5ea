"""The organisation's clock: the one place that says what "now", "today" and "this week" are.

Frontline stores aware UTC datetimes and reasons in whole days and ISO weeks of the organisation's
time zone (``FRONTLINE_TIMEZONE``). Rotations run Monday to Sunday. Every "today" in the code comes
from :func:`today`; code that must be testable on a fixed day takes ``today``/``as_of`` as an argument
and falls back to this clock only when it is not given.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo


def org_tz() -> ZoneInfo:
    """The organisation's time zone (settings)."""
    from frontline.core.settings import get_settings

    return get_settings().tz


def utcnow() -> datetime:
    """Aware UTC now (what the tables store)."""
    return datetime.now(UTC)


def now() -> datetime:
    """Aware now in the organisation's time zone."""
    return datetime.now(org_tz())


def today() -> date:
    """Today in the organisation's time zone."""
    return now().date()


def aware(value: datetime | str | None) -> datetime | None:
    """A datetime as aware UTC: SQLite hands back naive UTC datetimes (and text for aggregates)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def monday(day: date) -> date:
    """The Monday of ``day``'s week (on or before ``day``)."""
    return day - timedelta(days=day.weekday())


def monday_on_or_after(day: date) -> date:
    """``day`` if it is a Monday, else the next Monday."""
    return day + timedelta(days=(7 - day.weekday()) % 7)


def add_months(day: date, months: int) -> date:
    """``day`` moved by whole calendar months (the 31st becomes the month's last day)."""
    y, m = divmod(day.month - 1 + months, 12)
    year, month = day.year + y, m + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def iso_week(day: date) -> str:
    """``day``'s ISO week as ``YYYY-Www``."""
    year, num, _ = day.isocalendar()
    return f"{year}-W{num:02d}"


# Days a person can mean in a plan or a query: far enough for any horizon, near enough that adding a
# horizon of weeks or going back to a Monday never leaves the calendar (9999-12-31 + 1 week is an
# OverflowError, 0001-01-01 minus a day too).
EARLIEST_DATE = date(1900, 1, 1)
LATEST_DATE = date(2999, 12, 31)


def parse_day(value: str) -> date:
    """A day written YYYY-MM-DD, from :data:`EARLIEST_DATE` to :data:`LATEST_DATE`; ``ValueError`` saying
    what is wrong otherwise (callers add the field's name)."""
    try:
        day = date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)") from None
    if not EARLIEST_DATE <= day <= LATEST_DATE:
        raise ValueError(f"{value} is out of range (from {EARLIEST_DATE} to {LATEST_DATE})")
    return day
