"""What the plan timeline shows for a window of weeks: who is planned when, who is away, and the loads.

The seat load counts every live rotation (whatever department a viewer may see): the seats are shared.
The department load counts the rotations of the departments asked for.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date

from sqlmodel import Session, col, select

from frontline.rotations.weeks import week_of
from models import Absence, Employee, Rotation


@dataclass
class PlanWindow:
    """The rows behind the timeline of ``start..end`` (inclusive)."""

    start: date
    end: date
    employees: list[Employee]  # active, in the departments asked for, by name
    rotations: list[Rotation]  # every live rotation overlapping the window, of any department

    def headcount(self) -> dict[int | None, int]:
        """Department id -> active employees (the department caps depend on it)."""
        counts: dict[int | None, int] = defaultdict(int)
        for e in self.employees:
            counts[e.department_id] += 1
        return counts

    def rotations_by_employee(self) -> dict[int | None, list[Rotation]]:
        grouped: dict[int | None, list[Rotation]] = defaultdict(list)
        for r in self.rotations:
            grouped[r.employee_id].append(r)
        return grouped


@dataclass
class WeekLoads:
    seats: list[int]  # people on rotation in each week of the window
    away: dict[int | None, list[int]]  # department id -> its people on rotation in each week


def plan_window(session: Session, department_ids: Collection[int | None], start: date, end: date) -> PlanWindow:
    employees = session.exec(
        select(Employee)
        .where(col(Employee.active).is_(True), col(Employee.department_id).in_(list(department_ids) or [-1]))
        .order_by(col(Employee.name), col(Employee.id))
    ).all()
    rotations = session.exec(
        select(Rotation).where(Rotation.status != "cancelled", col(Rotation.start) <= end, col(Rotation.end) >= start)
    ).all()
    return PlanWindow(start, end, list(employees), list(rotations))


def absences_between(session: Session, start: date, end: date) -> dict[int | None, list[Absence]]:
    """Employee id -> their absences overlapping ``start..end``."""
    grouped: dict[int | None, list[Absence]] = defaultdict(list)
    for a in session.exec(select(Absence).where(col(Absence.start) <= end, col(Absence.end) >= start)).all():
        grouped[a.employee_id].append(a)
    return grouped


def week_loads(window: PlanWindow, weeks: int) -> WeekLoads:
    """People on rotation per week of the window, in all and per department of ``window.employees``."""
    department_of = {e.id: e.department_id for e in window.employees}
    seats = [0] * weeks
    away: dict[int | None, list[int]] = defaultdict(lambda: [0] * weeks)
    for r in window.rotations:
        first = max(0, week_of(window.start, r.start))
        last = min(weeks - 1, week_of(window.start, r.end))
        for w in range(first, last + 1):
            seats[w] += 1
            if r.employee_id in department_of:
                away[department_of[r.employee_id]][w] += 1
    return WeekLoads(seats, dict(away))
