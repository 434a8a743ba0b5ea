"""Preferred and unavailable weeks: roster columns (errors name file, row and column), storage that other
writers (change requests) share, and the planner honouring them."""

from __future__ import annotations

from datetime import date

import pytest
from sqlmodel import select

from frontline.core.errors import RosterError
from frontline.core.policy import parse_policy
from frontline.people.preferences import parse_weeks, set_weeks, weeks_by_employee
from frontline.people.roster import apply_roster
from frontline.people.roster_csv import parse_roster
from frontline.rotations.service import plan_rotations
from models import Employee, Rotation, WeekPreference, session_scope

TODAY = date(2027, 1, 4)
DEPARTMENTS = """department,head_name,head_email
Support,Sam Lead,sam@example.com
Sales,Hanna Head,hanna@example.com
"""
HEADER = "employee_id,name,email,department,hire_date,timezone,country,last_rotation"


def _write(tmp_path, employees: str):
    (tmp_path / "departments.csv").write_text(DEPARTMENTS, encoding="utf-8")
    (tmp_path / "employees.csv").write_text(employees, encoding="utf-8")
    return tmp_path / "departments.csv", tmp_path / "employees.csv"


def test_parse_weeks_forms():
    weeks, problems = parse_weeks("2027-03-10; 2027-W12 ;2027-04-05..2027-04-18;;")
    assert weeks == [date(2027, 3, 8), date(2027, 3, 22), date(2027, 4, 5), date(2027, 4, 12)] and not problems
    assert parse_weeks("2027-W02..2027-W03")[0] == [date(2027, 1, 11), date(2027, 1, 18)]
    _, problems = parse_weeks("2027-13-01;2027-05-01..2027-04-01;next week;2027-01-04..2031-01-01")
    assert problems == [
        "'2027-13-01' is not a week: use YYYY-MM-DD (its week), YYYY-Www or a range A..B",
        "'2027-05-01..2027-04-01' ends before it starts",
        "'next week' is not a week: use YYYY-MM-DD (its week), YYYY-Www or a range A..B",
        "'2027-01-04..2031-01-01' spans more than 104 weeks",
    ]


def test_bad_weeks_name_file_row_and_column(tmp_path):
    departments, employees = _write(
        tmp_path,
        HEADER + ",preferred_weeks,unavailable_weeks\n"
        "A1,Ann,ann@example.com,Sales,2020-01-01,Europe/Berlin,DE,,2027-03-08,\n"
        "A2,Bob,bob@example.com,Sales,2020-01-01,Europe/Berlin,DE,,,2027-02-30\n",
    )
    with pytest.raises(RosterError) as refused:
        parse_roster(departments, employees)
    [problem] = refused.value.problems
    assert problem == (
        f"{employees}:3: unavailable_weeks: '2027-02-30' is not a week: use YYYY-MM-DD (its week), YYYY-Www "
        "or a range A..B"
    )


def test_roster_columns_are_stored_replaced_and_planned_around(engine, settings, tmp_path):
    departments, employees = _write(
        tmp_path,
        HEADER + ",preferred_weeks,unavailable_weeks\n"
        "S1,Sam,sam@example.com,Support,2020-01-01,Europe/Berlin,DE,,,\n"
        "A1,Ann,ann@example.com,Sales,2020-01-01,Europe/Berlin,DE,2026-01-05,,2027-01-04..2027-01-17\n"
        "A2,Bob,bob@example.com,Sales,2020-01-01,Europe/Berlin,DE,2026-01-05,2027-02-01,\n",
    )
    with session_scope(engine) as s:
        result = apply_roster(s, parse_roster(departments, employees), today=TODAY)
        assert (result.preference_weeks_added, result.preference_weeks_removed) == (3, 0)
        ids = {e.employee_id: e.id for e in s.exec(select(Employee)).all()}
        set_weeks(s, ids["A1"], "preferred", [date(2027, 3, 3)], source="request")  # e.g. a change request
    with session_scope(engine) as s:
        prefs = weeks_by_employee(s)
        assert prefs[ids["A1"]] == (frozenset({date(2027, 3, 1)}), frozenset({date(2027, 1, 4), date(2027, 1, 11)}))
        assert prefs[ids["A2"]] == (frozenset({date(2027, 2, 1)}), frozenset())
        policy = parse_policy({"support_department": "Support", "length_weeks": 1, "seats_per_week": 5})
        plan_rotations(s, policy, start=TODAY, weeks=10, today=TODAY)
        starts = {
            e.employee_id: r.start
            for r, e in s.exec(select(Rotation, Employee).where(Rotation.employee_id == Employee.id)).all()
        }
    # both due in the week of 2027-01-11 (12 months after 2026-01-05): Ann is unavailable until 2027-01-17
    # (one week late costs less than an unavailable week; her requested week is far too late); Bob's
    # preferred week is three weeks late (9 > 1): on time
    assert starts == {"A1": date(2027, 1, 18), "A2": date(2027, 1, 11)}
    # a re-import without the columns leaves them; with empty columns clears the roster's, not the request's
    departments, employees = _write(
        tmp_path,
        HEADER + "\nS1,Sam,sam@example.com,Support,2020-01-01,Europe/Berlin,DE,\n"
        "A1,Ann,ann@example.com,Sales,2020-01-01,Europe/Berlin,DE,2026-01-05\n"
        "A2,Bob,bob@example.com,Sales,2020-01-01,Europe/Berlin,DE,2026-01-05\n",
    )
    with session_scope(engine) as s:
        apply_roster(s, parse_roster(departments, employees), today=TODAY)
        assert len(s.exec(select(WeekPreference)).all()) == 4
    departments, employees = _write(
        tmp_path,
        HEADER + ",preferred_weeks,unavailable_weeks\nS1,Sam,sam@example.com,Support,2020-01-01,Europe/Berlin,DE,,,\n"
        "A1,Ann,ann@example.com,Sales,2020-01-01,Europe/Berlin,DE,2026-01-05,,\n"
        "A2,Bob,bob@example.com,Sales,2020-01-01,Europe/Berlin,DE,2026-01-05,,\n",
    )
    with session_scope(engine) as s:
        apply_roster(s, parse_roster(departments, employees), today=TODAY)
        left = [(r.employee_id, r.week, r.source) for r in s.exec(select(WeekPreference)).all()]
    assert left == [(ids["A1"], date(2027, 3, 1), "request")]
