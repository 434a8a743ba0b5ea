"""Employees' preferred and unavailable weeks: soft wishes the planner honours below fairness and a new
hire's lateness (absences are the hard version).

Stored one row per (employee, Monday, kind, source) in :class:`models.WeekPreference`. ``source`` says who
stated it: the roster import writes ``roster`` rows (replacing that employee's ``roster`` rows of a kind
whenever the file has that column); an employee's change request writes ``request`` rows through
:func:`set_weeks` with ``source="request"``. The planner reads them all (:func:`weeks_by_employee`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

from sqlalchemy import delete
from sqlmodel import Session, col, select

from frontline.core.clock import monday
from models import WeekPreference

PREFERRED = "preferred"
UNAVAILABLE = "unavailable"
KINDS = (PREFERRED, UNAVAILABLE)
MAX_RANGE_WEEKS = 104


def parse_weeks(text: str) -> tuple[list[date], list[str]]:
    """``;``-separated weeks as their Mondays: ``YYYY-MM-DD`` (the week of that day), ``YYYY-Www`` (ISO week)
    or a range ``A..B`` of either (every week from A's to B's, at most two years). Returns (Mondays in
    order, one message per part that is not a week)."""
    weeks: set[date] = set()
    problems: list[str] = []
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        ends = [e.strip() for e in part.split("..")]
        if len(ends) > 2:
            problems.append(f"{part!r} is not a week or a range A..B")
            continue
        try:
            first, last = _week(ends[0]), _week(ends[-1])
        except ValueError:
            problems.append(f"{part!r} is not a week: use YYYY-MM-DD (its week), YYYY-Www or a range A..B")
            continue
        if last < first:
            problems.append(f"{part!r} ends before it starts")
            continue
        if (last - first).days // 7 >= MAX_RANGE_WEEKS:
            problems.append(f"{part!r} spans more than {MAX_RANGE_WEEKS} weeks")
            continue
        day = first
        while day <= last:
            weeks.add(day)
            day += timedelta(weeks=1)
    return sorted(weeks), problems


def _week(text: str) -> date:
    if len(text) == 10 and text[4] == "-" and text[7] == "-":
        return monday(date.fromisoformat(text))
    if len(text) in (8, 9) and text[4:6].upper() == "-W":
        return date.fromisocalendar(int(text[:4]), int(text[6:]), 1)
    raise ValueError(text)


def set_weeks(session: Session, employee_id: int, kind: str, weeks: Iterable[date], source: str) -> tuple[int, int]:
    """Make ``employee_id``'s ``kind`` weeks from ``source`` exactly ``weeks`` (their Mondays); rows of other
    sources stay. Returns (added, removed)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    wanted = {monday(w) for w in weeks}
    rows = session.exec(
        select(WeekPreference).where(
            col(WeekPreference.employee_id) == employee_id,
            col(WeekPreference.kind) == kind,
            col(WeekPreference.source) == source,
        )
    ).all()
    have = {r.week: r for r in rows}
    stale = [r.id for w, r in have.items() if w not in wanted and r.id is not None]
    if stale:
        session.execute(delete(WeekPreference).where(col(WeekPreference.id).in_(stale)))
    for w in sorted(wanted - set(have)):
        session.add(WeekPreference(employee_id=employee_id, week=w, kind=kind, source=source))
    session.flush()
    return len(wanted - set(have)), len(stale)


def weeks_by_employee(session: Session) -> dict[int, tuple[frozenset[date], frozenset[date]]]:
    """Employee id -> (preferred Mondays, unavailable Mondays), whatever the source."""
    found: dict[int, tuple[set[date], set[date]]] = {}
    for row in session.exec(select(WeekPreference)).all():
        pair = found.setdefault(row.employee_id, (set(), set()))
        pair[0 if row.kind == PREFERRED else 1].add(row.week)
    return {emp: (frozenset(p), frozenset(u)) for emp, (p, u) in found.items()}
