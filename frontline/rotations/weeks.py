"""Rotation weeks: dates <-> week indices of a planning horizon, a rotation's last day, public holidays.

A horizon starts on a Monday; week ``w`` is the week of Monday ``horizon + w weeks`` (``w`` may be
negative: weeks before the horizon). A rotation of ``length_weeks`` weeks runs from its Monday to the
Sunday ``length_weeks`` weeks later. The generic calendar helpers (``monday``, ``monday_on_or_after``,
``add_months``) are the organisation clock's, :mod:`frontline.core.clock`.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from datetime import date, timedelta
from functools import lru_cache


def _ceil_div(a: int, b: int) -> int:
    return -((-a) // b)


def week_of(horizon: date, day: date) -> int:
    """Index of the week that contains ``day`` (for a Monday: the week it starts)."""
    return (day - horizon).days // 7


def week_start(horizon: date, week: int) -> date:
    """The Monday of week ``week``."""
    return horizon + timedelta(weeks=week)


def first_week_on_or_after(horizon: date, day: date) -> int:
    """Index of the first week whose Monday is on or after ``day``."""
    return _ceil_div((day - horizon).days, 7)


def blocked_starts_for(horizon: date, length_weeks: int, start: date, end: date) -> range:
    """Start weeks whose rotation (Monday .. Sunday ``length_weeks`` later) overlaps ``start..end``."""
    lo = _ceil_div((start - horizon).days - 7 * length_weeks + 1, 7)
    hi = (end - horizon).days // 7
    return range(lo, hi + 1)


def rotation_end(start: date, length_weeks: int) -> date:
    """The last day (a Sunday) of a rotation that starts on Monday ``start``."""
    return start + timedelta(days=7 * length_weeks - 1)


@lru_cache(maxsize=512)
def _holiday_calendar(country: str, year: int) -> tuple[tuple[date, ...], tuple[str, ...]]:
    import holidays

    try:
        items = sorted(holidays.country_holidays(country, years=[year]).items())
    except (NotImplementedError, KeyError):
        items = []
    return tuple(d for d, _ in items), tuple(n for _, n in items)


def holidays_between(country: str | None, start: date, end: date) -> list[tuple[date, str]]:
    """Public holidays of ``country`` in ``start..end`` (shown on the plan; they reduce nothing)."""
    if not country:
        return []
    out = []
    for year in range(start.year, end.year + 1):
        days, names = _holiday_calendar(country.upper(), year)
        for i in range(bisect_left(days, start), bisect_right(days, end)):
            out.append((days[i], names[i]))
    return out


def weeks_late(start: date, due: date, new_hire: bool, new_hire_within_weeks: int) -> int:
    """Whole weeks a rotation starting on ``start`` is late (0 when on time or early): after the week of
    ``due`` for a cycle rotation; for a new hire (``due`` is the hire week) after ``new_hire_within_weeks``
    weeks past it, the planner's window. The plan summary, the plan view and the dashboard all use this."""
    due_monday = due - timedelta(days=due.weekday())
    if new_hire:
        due_monday += timedelta(weeks=new_hire_within_weeks)
    start_monday = start - timedelta(days=start.weekday())
    return max((start_monday - due_monday).days // 7, 0)
