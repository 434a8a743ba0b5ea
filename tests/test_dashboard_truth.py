"""The dashboard's Overdue figure agrees with the plan (issue 16): everyone whose planned start is after
their due week (a new hire: after the onboarding window), plus everyone past due whom the plan could not
place; lateness is measured to the planned start, so it does not grow while the plan stands."""

from __future__ import annotations

from datetime import date, timedelta

from sqlmodel import Session, select
from test_planning import POLICY, H, _company

from frontline.core.clock import add_months, monday
from frontline.rotations.dashboard import participation
from frontline.rotations.service import plan_rotations
from models import Department, Employee, Rotation, session_scope


def _crowd(engine, n: int) -> None:
    """More Engineering people, all due now: with three seats a week some start weeks after their due week."""
    with session_scope(engine) as s:
        eng = s.exec(select(Department).where(Department.name == "Engineering")).one()
        for i in range(n):
            s.add(
                Employee(
                    employee_id=f"C{i:02d}",
                    name=f"Crowd {i}",
                    email=f"c{i}@example.com",
                    department_id=eng.id,
                    hire_date=date(2019, 1, 1),
                    timezone="Europe/Berlin",
                    country="DE",
                    last_rotation=date(2025, 6, 2) + timedelta(weeks=i),
                )
            )


def _expected_from_the_plan(engine, unplaced: list[str], today: date) -> dict[str, int | None]:
    """Independently of the dashboard: employee_id -> weeks late, from the planned rotations and the
    plan's unplaced people (None: nothing planned)."""
    late: dict[str, int | None] = {}
    with Session(engine) as s:
        rows = s.exec(select(Rotation, Employee).where(Rotation.employee_id == Employee.id)).all()
        people = {e.employee_id: e for e in s.exec(select(Employee)).all()}
    for r, e in rows:
        if r.status == "cancelled":
            continue
        window = POLICY.new_hire_within_weeks if r.kind == "new_hire" else 0
        weeks = (r.start - r.due).days // 7 - window  # due is a Monday, so is start
        if weeks > 0:
            late[e.employee_id] = weeks
    for key in unplaced:
        e = people[key]
        past_due = e.last_rotation is None or add_months(e.last_rotation, POLICY.cycle_months) <= today
        new_hire_window = e.hire_date + timedelta(weeks=POLICY.new_hire_within_weeks) > today
        if past_due and not new_hire_window:
            late[key] = None
    return late


def _dashboard(engine, today: date) -> dict:
    with Session(engine) as s:
        ids = [d.id for d in s.exec(select(Department)).all() if d.name != POLICY.support_department]
        return participation(s, ids, POLICY, today)


def test_overdue_agrees_with_the_plan_and_is_measured_to_the_planned_start(sqlite_engine, sqlite_settings):
    engine = sqlite_engine
    _company(engine)
    _crowd(engine, 14)
    with session_scope(engine) as s:
        result = plan_rotations(s, POLICY, start=H, weeks=10)
    today = H - timedelta(days=3)  # the Friday before the horizon: every planned rotation is still ahead
    expected = _expected_from_the_plan(engine, [u["employee_id"] for u in result.unplaced], today)
    assert any(v is not None for v in expected.values()), "the instance must make someone start late"
    assert any(v is None for v in expected.values()), "the instance must leave someone overdue unplaced"

    part = _dashboard(engine, today)
    shown = {o["employee"].employee_id: o for o in part["overdue"]}
    assert set(shown) == set(expected), (set(shown) ^ set(expected), expected)
    assert part["total"]["overdue"] == len(expected) == len(shown)
    for key, weeks in expected.items():
        if weeks is not None:
            assert shown[key]["weeks_late"] == weeks, key
            assert shown[key]["planned"] is not None and monday(shown[key]["planned"]) == shown[key]["planned"]
        else:
            assert shown[key]["planned"] is None
    assert part["total"]["unplanned"] == sum(1 for v in expected.values() if v is None)
    # the plan's own summary says the same: "N late" are the planned ones, the unplaced are listed apart
    assert result.late == sum(1 for v in expected.values() if v is not None)
    assert part["total"]["overdue"] == result.late + len([v for v in expected.values() if v is None])

    # a week earlier, same plan: the lateness is the planned start's, not today's (it does not grow by itself)
    later = _dashboard(engine, today - timedelta(weeks=1))
    planned_late = {o["employee"].employee_id: o["weeks_late"] for o in later["overdue"] if o["planned"]}
    assert planned_late == {k: v for k, v in expected.items() if v is not None}
