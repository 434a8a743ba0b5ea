"""Roster import: parsing, every kind of bad row, all-or-nothing, upserts and leavers (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import MetaData, select
from sqlmodel import Session

from frontline.core.errors import RosterError
from frontline.people.roster import apply_roster, import_roster
from frontline.people.roster_csv import parse_roster
from models import Absence, AuditEvent, Department, Employee, MentorPairing, Rotation, session_scope

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TODAY = date(2026, 11, 24)

DEPARTMENTS = """department,head_name,head_email,max_away_fraction
Support,Zoë Ångström,zoe.angstrom@example.com,
Engineering,José Núñez,jose.nunez@example.com,0.1
"""
EMPLOYEES = """employee_id,name,email,department,title,hire_date,timezone,country,languages,skills,mentor,mentor_capacity,last_rotation
E001,Zoë Ångström,zoe.angstrom@example.com,Support,Lead,2019-03-01,Europe/Stockholm,SE,en;sv,billing,yes,3,
E002,José Núñez,jose.nunez@example.com,Engineering,Manager,2018-09-03,Europe/Madrid,ES,es;en,python,no,,2025-10-06
E003,佐藤太郎,taro.sato@example.com,Engineering,Engineer,2020-01-06,Asia/Tokyo,JP,ja,go,no,,
"""
ABSENCES = """employee_id,start,end,reason
E002,2027-03-01,2027-03-12,PTO
"""


def write(tmp_path: Path, departments=DEPARTMENTS, employees=EMPLOYEES, absences=ABSENCES):
    paths = {}
    for name, text in (("departments", departments), ("employees", employees), ("absences", absences)):
        if text is not None:
            paths[name] = tmp_path / f"{name}.csv"
            paths[name].write_text(text, encoding="utf-8")
    return paths


def sub(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.mkdir(exist_ok=True)
    return path


def dump(engine) -> dict[str, list[tuple]]:
    """Every row of every table (including alembic_version), in primary-key order."""
    meta = MetaData()
    meta.reflect(bind=engine)
    out = {}
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            order = list(table.primary_key.columns) or list(table.columns)
            out[table.name] = [tuple(r) for r in conn.execute(table.select().order_by(*order))]
    return out


def run_import(engine, paths, today=TODAY, actor="test"):
    with session_scope(engine) as session:
        return import_roster(
            session, paths["departments"], paths["employees"], paths.get("absences"), actor=actor, today=today
        )


# --- a good roster ------------------------------------------------------------------------------


def test_examples_round_trip_with_unicode_and_bom(engine):
    assert (EXAMPLES / "departments.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    result = run_import(engine, {k: EXAMPLES / f"{k}.csv" for k in ("departments", "employees", "absences")})
    assert (result.departments_created, result.employees_created, result.absences) == (4, 8, 3)
    # a first import creates everyone, but only E008 (hired 2027-02-01, after the import day) is a new hire:
    # everyone else was hired years before the policy's 8-week new-hire window
    assert result.new_hire_ids == ["E008"] and result.new_hires == 1 and result.counts()["new_hires"] == 1
    assert "8 new / " in result.summary() and "1 new hire(s)" in result.summary()

    import csv

    with (EXAMPLES / "employees.csv").open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    with (EXAMPLES / "departments.csv").open(encoding="utf-8-sig", newline="") as fh:
        dept_rows = list(csv.DictReader(fh))
    with Session(engine) as s:
        depts = {d.id: d for d in s.exec(select(Department)).scalars()}
        back = {
            d.name: [d.name, d.head_name, d.head_email, "" if d.max_away_fraction is None else str(d.max_away_fraction)]
            for d in depts.values()
        }
        assert back == {r["department"]: list(r.values()) for r in dept_rows}
        emps = {e.employee_id: e for e in s.exec(select(Employee)).scalars()}
        for r in rows:
            e = emps[r["employee_id"]]
            assert [
                e.employee_id,
                e.name,
                e.email,
                depts[e.department_id].name,
                e.title,
                e.hire_date.isoformat(),
                e.timezone,
                e.country,
                ";".join(e.languages),
                ";".join(e.skills),
                "yes" if e.is_mentor else "no",
                str(e.mentor_capacity) if e.is_mentor else "",
                e.last_rotation.isoformat() if e.last_rotation else "",
                e.manager_email or "",
            ] == list(r.values())
            assert e.active and e.left_on is None
        assert emps["E003"].name == "佐藤太郎" and depts[emps["E005"].department_id].head_name == "Nguyễn Thị Mai"
        spans = sorted((a.start, a.end, a.reason) for a in s.exec(select(Absence)).scalars())
        assert spans[0] == (date(2027, 1, 18), date(2027, 1, 29), "PTO")
        assert len(spans) == 3
        events = s.exec(select(AuditEvent).where(AuditEvent.action == "roster.import")).scalars().all()
        assert len(events) == 1 and events[0].actor == "test"
        assert events[0].details["employees_created"] == 8 and events[0].details["absences"] == 3


def test_uploaded_text_and_bytes_parse_like_files(tmp_path):
    paths = write(tmp_path)
    from_files = parse_roster(paths["departments"], paths["employees"], paths["absences"])
    uploaded = parse_roster(
        ("departments.csv", "\ufeff" + DEPARTMENTS),
        ("employees.csv", b"\xef\xbb\xbf" + EMPLOYEES.encode()),
        ("absences.csv", ABSENCES.replace("\n", "\r\n").encode()),
    )
    assert uploaded.departments == from_files.departments
    assert uploaded.employees == from_files.employees
    assert uploaded.absences == from_files.absences
    assert uploaded.files == {
        "departments": "departments.csv",
        "employees": "employees.csv",
        "absences": "absences.csv",
    }


def test_optional_columns_and_lenient_header(tmp_path):
    parsed = parse_roster(
        ("d.csv", " Department , head_name,HEAD_EMAIL\nSupport,A,a@example.com\n\n"),
        (
            "e.csv",
            "employee_id,name,email,department,hire_date,timezone,country,mentor\n"
            "X1,Ann,Ann@Example.com,support,2020-01-01,UTC,de,yes\n",
        ),
        None,
    )
    e = parsed.employees[0]
    assert (e.email, e.department, e.country, e.is_mentor, e.mentor_capacity, e.title) == (
        "ann@example.com",
        "Support",
        "DE",
        True,
        1,
        "",
    )
    assert parsed.absences is None and parsed.departments[0].max_away_fraction is None


# --- bad rows: every kind, exact message, database untouched ------------------------------------

H = "employee_id,name,email,department,title,hire_date,timezone,country,languages,skills,mentor,mentor_capacity,last_rotation"
GOOD = "E009,Ann Lee,ann.lee@example.com,Engineering,Engineer,2021-05-01,Europe/Berlin,DE,en,go,no,,"


def _emp(**changes):
    cells = dict(zip(H.split(","), GOOD.split(","), strict=True))
    cells.update(changes)
    return EMPLOYEES + ",".join(cells.values()) + "\n"


BAD_CASES = {
    "missing column": (
        {"employees": EMPLOYEES.replace(",email,", ",").replace("zoe.angstrom@example.com,", "", 1)},
        "employees",
        1,
        "email",
        "missing column",
    ),
    "unknown column": (
        {"departments": DEPARTMENTS.replace("max_away_fraction", "max_away")},
        "departments",
        1,
        "max_away",
        "unknown column (expected: department,head_name,head_email,max_away_fraction)",
    ),
    "bad date": (
        {"employees": _emp(hire_date="2021-02-30")},
        "employees",
        5,
        "hire_date",
        "'2021-02-30' is not an ISO 8601 date (YYYY-MM-DD)",
    ),
    "bad last_rotation": (
        {"employees": _emp(last_rotation="03/04/2025")},
        "employees",
        5,
        "last_rotation",
        "'03/04/2025' is not an ISO 8601 date (YYYY-MM-DD)",
    ),
    "bad email": (
        {"employees": _emp(email="ann.lee(at)example.com")},
        "employees",
        5,
        "email",
        "'ann.lee(at)example.com' is not a valid e-mail address",
    ),
    "bad head email": (
        {"departments": DEPARTMENTS.replace("jose.nunez@example.com", "jose.nunez@")},
        "departments",
        3,
        "head_email",
        "'jose.nunez@' is not a valid e-mail address",
    ),
    "unknown time zone": (
        {"employees": _emp(timezone="Europe/Atlantis")},
        "employees",
        5,
        "timezone",
        "unknown IANA time zone 'Europe/Atlantis' (e.g. Europe/Berlin)",
    ),
    "unknown department": (
        {"employees": _emp(department="Marketing")},
        "employees",
        5,
        "department",
        "unknown department 'Marketing' (not in {departments})",
    ),
    "duplicate id": (
        {"employees": _emp(employee_id="E002")},
        "employees",
        5,
        "employee_id",
        "duplicate employee_id 'E002' (first on row 3)",
    ),
    "duplicate email": (
        {"employees": _emp(email="Taro.Sato@example.com")},
        "employees",
        5,
        "email",
        "duplicate email 'taro.sato@example.com' (first on row 4)",
    ),
    "duplicate department": (
        {"departments": DEPARTMENTS + "engineering,X,x@example.com,\n"},
        "departments",
        4,
        "department",
        "duplicate department 'engineering' (first on row 3)",
    ),
    "capacity on a non-mentor": (
        {"employees": _emp(mentor_capacity="2")},
        "employees",
        5,
        "mentor_capacity",
        "capacity 2 given but mentor is no (leave it empty)",
    ),
    "bad mentor flag": ({"employees": _emp(mentor="maybe")}, "employees", 5, "mentor", "'maybe' is not yes or no"),
    "bad capacity": (
        {"employees": _emp(mentor="yes", mentor_capacity="two")},
        "employees",
        5,
        "mentor_capacity",
        "'two' is not a whole number",
    ),
    "bad country": (
        {"employees": _emp(country="DEU")},
        "employees",
        5,
        "country",
        "'DEU' is not a two-letter country code (ISO 3166-1, e.g. DE)",
    ),
    "bad language": (
        {"employees": _emp(languages="en;English")},
        "employees",
        5,
        "languages",
        "'English' is not a language code such as en or pt-BR",
    ),
    "empty required value": ({"employees": _emp(name="")}, "employees", 5, "name", "required value is empty"),
    "fraction out of range": (
        {"departments": DEPARTMENTS.replace("0.1", "1.5")},
        "departments",
        3,
        "max_away_fraction",
        "1.5 is not greater than 0 and at most 1 (e.g. 0.1 = 10%)",
    ),
    "fraction not a number": (
        {"departments": DEPARTMENTS.replace("0.1", "10%")},
        "departments",
        3,
        "max_away_fraction",
        "'10%' is not a number (a fraction such as 0.1)",
    ),
    "end before start": (
        {"absences": ABSENCES + "E003,2027-03-12,2027-03-01,PTO\n"},
        "absences",
        3,
        "end",
        "end 2027-03-01 is before start 2027-03-12",
    ),
    "unknown employee in absences": (
        {"absences": ABSENCES + "E999,2027-03-01,2027-03-12,PTO\n"},
        "absences",
        3,
        "employee_id",
        "unknown employee 'E999' (not in {employees})",
    ),
    "bad absence date": (
        {"absences": ABSENCES + "E003,2027-3-1,2027-03-12,PTO\n"},
        "absences",
        3,
        "start",
        "'2027-3-1' is not an ISO 8601 date (YYYY-MM-DD)",
    ),
    "too many values": (
        {"employees": _emp().replace("Ann Lee", "Ann,Lee")},
        "employees",
        5,
        "(row)",
        "14 values but the header has 13 columns",
    ),
    "no employees at all": (
        {"employees": H + "\n\n", "absences": None},
        "employees",
        2,
        "(file)",
        "no employees (a full import must list everyone who works here)",
    ),
    "blank lines count as rows": (
        {"employees": EMPLOYEES + "\n\n" + _emp(country="X").split("\n")[-2] + "\n"},
        "employees",
        7,
        "country",
        "'X' is not a two-letter country code (ISO 3166-1, e.g. DE)",
    ),
}


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_each_bad_row_is_reported_and_nothing_is_written(case, engine, tmp_path):
    run_import(
        engine, write(sub(tmp_path, "good"))
    )  # an earlier good import: the bad one must leave it exactly as it is
    before = dump(engine)

    overrides, file_key, row, column, message = BAD_CASES[case]
    paths = write(
        sub(tmp_path, "bad"), **{"departments": DEPARTMENTS, "employees": EMPLOYEES, "absences": ABSENCES, **overrides}
    )
    with pytest.raises(RosterError) as info:
        run_import(engine, paths)
    expected = f"{paths[file_key]}:{row}: {column}: " + message.format(**{k: str(v) for k, v in paths.items()})
    assert expected in info.value.problems, info.value.problems
    assert dump(engine) == before


def test_every_problem_is_listed_at_once(tmp_path):
    paths = write(
        tmp_path,
        departments=DEPARTMENTS.replace("0.1", "2"),
        employees=_emp(country="DEU", timezone="Mars/Olympus", hire_date="soon")
        + "E010,Bo,bo@example,Nowhere,,2020-01-01,UTC,DE,en,,no,1,\n",
        absences=ABSENCES + "E002,2027-05-10,2027-05-01,PTO\n",
    )
    with pytest.raises(RosterError) as info:
        parse_roster(paths["departments"], paths["employees"], paths["absences"])
    d, e, a = (str(paths[k]) for k in ("departments", "employees", "absences"))
    assert info.value.problems == [
        f"{d}:3: max_away_fraction: 2.0 is not greater than 0 and at most 1 (e.g. 0.1 = 10%)".replace("2.0", "2"),
        f"{e}:5: hire_date: 'soon' is not an ISO 8601 date (YYYY-MM-DD)",
        f"{e}:5: timezone: unknown IANA time zone 'Mars/Olympus' (e.g. Europe/Berlin)",
        f"{e}:5: country: 'DEU' is not a two-letter country code (ISO 3166-1, e.g. DE)",
        f"{e}:6: email: 'bo@example' is not a valid e-mail address",
        f"{e}:6: mentor_capacity: capacity 1 given but mentor is no (leave it empty)",
        f"{e}:6: department: unknown department 'Nowhere' (not in {d})",
        f"{a}:3: end: end 2027-05-01 is before start 2027-05-10",
    ]
    assert str(info.value).startswith("8 problem(s) in the roster:")


def test_unreadable_inputs(tmp_path):
    with pytest.raises(RosterError) as info:
        parse_roster(tmp_path / "nope.csv", ("e.csv", b"employee_id,name\nE1,J\xe9r\xf4me\n"), ("a.csv", ""))
    assert info.value.problems == [
        f"{tmp_path / 'nope.csv'}:1: (file): file not found",
        "e.csv:2: (file): not UTF-8 text (byte 21); save the file as UTF-8",
        "a.csv:1: (header): the file is empty; the first line must be the header: employee_id,start,end,reason",
    ]


def test_email_of_someone_outside_the_import_is_refused_before_writing(engine, tmp_path):
    run_import(engine, write(tmp_path))
    before = dump(engine)
    # E003 leaves and a new person takes over their address in the same import.
    employees = EMPLOYEES.replace("E003,", "E004,")
    paths = write(sub(tmp_path, "x"), employees=employees)
    with pytest.raises(RosterError) as info:
        run_import(engine, paths)
    assert info.value.problems == [
        f"{paths['employees']}:4: email: 'taro.sato@example.com' belongs to employee 'E003', who is not in this "
        "import (a leaver keeps their address)"
    ]
    assert dump(engine) == before


# --- re-import: upserts, leavers, rotations ------------------------------------------------------


def _rotation(session, employee_pk: int, start: date, status: str = "invited") -> Rotation:
    rot = Rotation(
        employee_id=employee_pk, start=start, end=start + timedelta(days=27), kind="cycle", status=status, due=start
    )
    session.add(rot)
    session.flush()
    return rot


def test_reimport_upserts_marks_leavers_and_cancels_their_future_rotations(engine, tmp_path):
    first = run_import(engine, write(tmp_path))
    assert (first.employees_created, first.employees_left) == (3, 0)

    with session_scope(engine) as s:
        ids = {e.employee_id: e.id for e in s.exec(select(Employee)).scalars()}
        future = _rotation(s, ids["E003"], TODAY + timedelta(days=6))
        past = _rotation(s, ids["E003"], TODAY - timedelta(days=60), status="done")
        running = _rotation(s, ids["E003"], TODAY - timedelta(days=6))
        other = _rotation(s, ids["E002"], TODAY + timedelta(days=13))
        s.add(MentorPairing(rotation_id=future.id, mentor_id=ids["E001"]))
        rot_ids = {"future": future.id, "past": past.id, "running": running.id, "other": other.id}

    # E003 is gone, E002 changed title and department head changed, E004 is new; E002's PTO replaced.
    employees = EMPLOYEES.replace(",Manager,", ",Director,").splitlines()
    employees = (
        "\n".join(employees[:3])
        + "\nE004,Ólafur Jónsson,olafur@example.com,Engineering,,2027-01-04,Atlantic/Reykjavik,IS,is;en,,no,,\n"
    )
    paths = write(
        sub(tmp_path, "2"),
        departments=DEPARTMENTS.replace("José Núñez,", "Chloé Dubois,"),
        employees=employees,
        absences="employee_id,start,end,reason\nE002,2027-04-05,2027-04-09,PTO\nE004,2027-02-01,2027-02-05,\n",
    )
    result = run_import(engine, paths)
    assert (result.departments_created, result.departments_updated, result.departments_unchanged) == (0, 1, 1)
    assert (result.employees_created, result.employees_updated, result.employees_unchanged, result.employees_left) == (
        1,
        1,
        1,
        1,
    )
    assert result.new_hire_ids == ["E004"] and result.left_ids == ["E003"]
    assert result.rotations_cancelled == 1
    assert (result.absences, result.absences_added, result.absences_removed) == (2, 2, 1)

    with Session(engine) as s:
        emps = {e.employee_id: e for e in s.exec(select(Employee)).scalars()}
        assert set(emps) == {"E001", "E002", "E003", "E004"}  # never deleted
        assert (emps["E003"].active, emps["E003"].left_on) == (False, TODAY)
        assert emps["E002"].title == "Director" and emps["E002"].active
        rots = {k: s.get(Rotation, v) for k, v in rot_ids.items()}
        assert rots["future"].status == "cancelled"
        assert "employee left" in rots["future"].change_reason
        assert (rots["past"].status, rots["running"].status, rots["other"].status) == ("done", "invited", "invited")
        pairing = s.exec(select(MentorPairing)).scalars().one()
        assert pairing.status == "cancelled"
        spans = sorted((a.employee_id, a.start) for a in s.exec(select(Absence)).scalars())
        assert spans == [(emps["E002"].id, date(2027, 4, 5)), (emps["E004"].id, date(2027, 2, 1))]

    # The leaver comes back: active again, counted as updated; an unchanged re-import changes nothing.
    third = run_import(
        engine,
        write(sub(tmp_path, "3"), employees=EMPLOYEES + employees.splitlines()[-1] + "\n", absences=None),
        today=TODAY + timedelta(days=1),
    )
    assert (third.employees_updated, third.employees_left, third.employees_unchanged) == (2, 0, 2)
    with Session(engine) as s:
        e3 = s.exec(select(Employee).where(Employee.employee_id == "E003")).scalars().one()
        assert (e3.active, e3.left_on) == (True, None)
        assert len(s.exec(select(Absence)).scalars().all()) == 2  # no absences file: absences untouched
    before = dump(engine)
    again = run_import(
        engine,
        write(tmp_path / "3", employees=EMPLOYEES + employees.splitlines()[-1] + "\n", absences=None),
        today=TODAY + timedelta(days=1),
    )
    assert (again.employees_updated, again.employees_unchanged, again.employees_created) == (0, 4, 0)
    after = dump(engine)
    assert {k: v for k, v in after.items() if k != "auditevent"} == {
        k: v for k, v in before.items() if k != "auditevent"
    }
    assert len(after["auditevent"]) == len(before["auditevent"]) + 1


def test_last_rotation_never_moves_backwards_and_emails_can_swap(engine, tmp_path):
    run_import(engine, write(tmp_path))
    employees = (
        EMPLOYEES.replace("2025-10-06", "")  # HR export lost the date: keep ours
        .replace("zoe.angstrom@example.com", "TMP")
        .replace("jose.nunez@example.com", "zoe.angstrom@example.com")
        .replace("TMP", "jose.nunez@example.com")
    )
    result = run_import(engine, write(sub(tmp_path, "2"), employees=employees))
    assert result.employees_updated == 2
    with Session(engine) as s:
        emps = {e.employee_id: e for e in s.exec(select(Employee)).scalars()}
        assert emps["E002"].last_rotation == date(2025, 10, 6)
        assert emps["E001"].email == "jose.nunez@example.com" and emps["E002"].email == "zoe.angstrom@example.com"


def test_apply_uses_the_organisation_today_by_default(settings, tmp_path):
    from frontline.core.clock import today as _today
    from models import get_engine

    engine = get_engine()
    with session_scope(engine) as s:
        apply_roster(s, parse_roster(*write(tmp_path).values()))
    with session_scope(engine) as s:
        apply_roster(
            s,
            parse_roster(
                *write(
                    sub(tmp_path, "2"), employees="\n".join(EMPLOYEES.splitlines()[:3]) + "\n", absences=None
                ).values()
            ),
        )
    with Session(engine) as s:
        e3 = s.exec(select(Employee).where(Employee.employee_id == "E003")).scalars().one()
        assert e3.left_on == _today()


def test_leaver_whose_rotation_starts_on_the_import_day_has_it_cancelled(engine, tmp_path):
    """A rotation starting on the import day has not run yet: like one starting later, it is cancelled
    (so the rotator and mentor get a CANCEL instead of a kickoff with someone who left)."""
    run_import(engine, write(tmp_path))
    with session_scope(engine) as s:
        ids = {e.employee_id: e.id for e in s.exec(select(Employee)).scalars()}
        starting = _rotation(s, ids["E003"], TODAY).id
    employees = "\n".join(EMPLOYEES.splitlines()[:3]) + "\n"
    result = run_import(engine, write(sub(tmp_path, "2"), employees=employees))
    assert result.left_ids == ["E003"] and result.rotations_cancelled == 1
    with Session(engine) as s:
        assert s.get(Rotation, starting).status == "cancelled"
