import csv
import time
from collections import Counter
from datetime import date
from zoneinfo import ZoneInfo

from frontline.demo.synth import (
    ABSENCE_COLUMNS,
    DEPARTMENT_COLUMNS,
    EMPLOYEE_COLUMNS,
    SUPPORT,
    generate_company,
    write_csvs,
)

TODAY = date(2026, 11, 24)


def test_same_seed_same_company_and_different_seed_differs():
    a = generate_company(400, seed=3, today=TODAY)
    b = generate_company(400, seed=3, today=TODAY)
    c = generate_company(400, seed=4, today=TODAY)
    assert a.employees == b.employees and a.departments == b.departments and a.absences == b.absences
    assert a.employees != c.employees


def test_company_is_realistic():
    company = generate_company(1000, today=TODAY)
    emps = company.employees
    assert len(emps) == 1000
    assert set(emps[0]) == set(EMPLOYEE_COLUMNS)
    assert 8 <= len(company.departments) <= 15
    assert {d["department"] for d in company.departments} == {e["department"] for e in emps}
    by_dept = Counter(e["department"] for e in emps)
    assert 0.07 <= by_dept[SUPPORT] / 1000 <= 0.11
    mentors = [e for e in emps if e["mentor"]]
    assert mentors and all(e["department"] == SUPPORT and 1 <= e["mentor_capacity"] <= 3 for e in mentors)
    assert all(e["mentor_capacity"] == 0 for e in emps if not e["mentor"])
    assert len({e["employee_id"] for e in emps}) == len({e["email"].lower() for e in emps}) == 1000
    assert any(not e["name"].isascii() for e in emps)
    assert any("\u4e00" <= ch <= "\u9fff" for e in emps for ch in e["name"])  # CJK
    for e in emps:
        ZoneInfo(e["timezone"])
        assert len(e["country"]) == 2 and e["country"].isupper()
        assert e["email"].isascii() and "@" in e["email"]
        assert e["languages"] and e["skills"]
        if e["last_rotation"] is not None:
            assert e["hire_date"] < e["last_rotation"] <= TODAY
            assert (TODAY - e["last_rotation"]).days <= 18 * 31
    tz_country = {(e["timezone"], e["country"]) for e in emps}
    assert ("Europe/Berlin", "DE") in tz_country and ("Asia/Tokyo", "JP") in tz_country
    assert ("Europe/Berlin", "US") not in tz_country
    future = [e for e in emps if e["hire_date"] > TODAY]
    assert 0.06 <= len(future) / 1000 <= 0.14
    assert all((e["hire_date"] - TODAY).days <= 366 for e in future)
    away = {a["employee_id"] for a in company.absences}
    assert 0.24 <= len(away) / 1000 <= 0.36
    for a in company.absences:
        assert a["end"] >= a["start"]
    assert any(7 <= (a["end"] - a["start"]).days + 1 <= 21 and a["reason"] == "PTO" for a in company.absences)


def test_tiny_companies_are_consistent():
    for n in (1, 2, 5, 17):
        company = generate_company(n, today=TODAY)
        assert len(company.employees) == n
        assert {d["department"] for d in company.departments} == {e["department"] for e in company.employees}
        assert SUPPORT in {d["department"] for d in company.departments}


def test_write_csvs(tmp_path):
    company = generate_company(50, today=TODAY)
    paths = write_csvs(company, tmp_path / "roster")
    assert set(paths) == {"departments", "employees", "absences"}
    with paths["employees"].open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == EMPLOYEE_COLUMNS
    assert len(rows) == 50
    first = company.employees[0]
    assert rows[0]["name"] == first["name"]
    assert rows[0]["hire_date"] == first["hire_date"].isoformat()
    assert rows[0]["languages"] == ";".join(first["languages"])
    assert {r["mentor"] for r in rows} <= {"yes", "no"}
    assert all(r["mentor_capacity"] == "" for r in rows if r["mentor"] == "no")
    with paths["departments"].open(encoding="utf-8") as fh:
        assert fh.readline().strip() == ",".join(DEPARTMENT_COLUMNS)
    with paths["absences"].open(encoding="utf-8") as fh:
        assert fh.readline().strip() == ",".join(ABSENCE_COLUMNS)


def test_100k_employees_in_a_few_seconds():
    started = time.process_time()  # CPU time: the machine may be busy with other work
    company = generate_company(100_000, today=TODAY)
    elapsed = time.process_time() - started
    assert len(company.employees) == 100_000
    assert len({e["email"] for e in company.employees}) == 100_000
    assert elapsed < 30, f"took {elapsed:.1f} s of CPU (about 1.5 s on a 2026 laptop core)"


def test_generated_csvs_are_a_valid_roster_that_round_trips(tmp_path):
    from frontline.people.roster_csv import parse_roster

    for seed in (1, 2, 3):
        company = generate_company(250, seed=seed, today=TODAY)
        paths = write_csvs(company, tmp_path / str(seed))
        parsed = parse_roster(paths["departments"], paths["employees"], paths["absences"])
        assert [
            {
                "department": d.name,
                "head_name": d.head_name,
                "head_email": d.head_email,
                "max_away_fraction": d.max_away_fraction,
            }
            for d in parsed.departments
        ] == company.departments
        assert [
            {
                "employee_id": e.employee_id,
                "name": e.name,
                "email": e.email,
                "department": e.department,
                "title": e.title,
                "hire_date": e.hire_date,
                "timezone": e.timezone,
                "country": e.country,
                "languages": e.languages,
                "skills": e.skills,
                "mentor": e.is_mentor,
                "mentor_capacity": e.mentor_capacity,
                "last_rotation": e.last_rotation,
                "manager_email": e.manager_email,
                "preferred_weeks": list(e.preferred_weeks or ()),
                "unavailable_weeks": list(e.unavailable_weeks or ()),
            }
            for e in parsed.employees
        ] == company.employees
        assert [
            {"employee_id": a.employee_id, "start": a.start, "end": a.end, "reason": a.reason} for a in parsed.absences
        ] == company.absences
