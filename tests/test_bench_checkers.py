"""The benchmarks' independent checkers (``bench/company.py``) catch every hard-rule violation they claim to.

Every ``violations 0`` that ``bench/plan.py --company demo`` and ``bench/pair.py --company demo`` print (and
the README's tables repeat) comes from :func:`plan_violations` and :func:`pair_violations`: plain SQL and
Python over the database after the command, written from the README's rules. A checker that missed a rule
would print 0 whatever the product did, so here a small demo company is built, planned and paired exactly
as the benchmarks do it (the roster import, then ``frontline plan`` and ``frontline pair`` as commands), the
checkers must find nothing in what the product stored, and then each rule is broken once in a copy of the
database (or of the policy) and the checker must count exactly the rows that break it.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sqlite3
import sys
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _bench_company():
    spec = importlib.util.spec_from_file_location("bench_company", ROOT / "bench" / "company.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_company"] = module
    spec.loader.exec_module(module)
    return module


co = _bench_company()
TODAY: date = co.TODAY
NOW = "2027-01-01 00:00:00"


@pytest.fixture(scope="module")
def paired(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A 120-employee demo company, imported, planned and paired as the benchmarks do it."""
    cache = tmp_path_factory.mktemp("bench")
    old = co.CACHE
    co.CACHE = cache
    try:
        company = co.build(120, "base", seed=3)
        co.frontline(company, "plan", "--from", TODAY.isoformat(), name="plan")
        co.frontline(company, "pair", "--as-of", TODAY.isoformat(), name="pair")
        yield company
    finally:
        co.CACHE = old


@pytest.fixture
def copy(paired, tmp_path: Path):
    """A company in ``tmp_path`` with copies of the paired database and its policy."""
    shutil.copyfile(paired.db, tmp_path / "frontline.db")
    shutil.copyfile(paired.directory / "frontline.toml", tmp_path / "frontline.toml")
    return co.Company(tmp_path, paired.n, paired.variant)


def _sql(company, query: str, *args) -> list[tuple]:
    con = sqlite3.connect(company.db)
    try:
        rows = con.execute(query, args).fetchall()
        con.commit()
        return rows
    finally:
        con.close()


def _policy(company, old: str, new: str) -> None:
    path = company.directory / "frontline.toml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _add_rotation(company, employee: int, start: date, days: int = 27, status: str = "draft") -> int:
    """A rotation row as the product stores one; returns its id."""
    con = sqlite3.connect(company.db)
    try:
        cur = con.execute(
            'insert into rotation (employee_id, start, "end", due, kind, status, locked, sequence, created_at, '
            "updated_at) values (?, ?, ?, ?, 'cycle', ?, 0, 0, ?, ?)",
            (employee, str(start), str(start + timedelta(days=days)), str(start), status, NOW, NOW),
        )
        con.commit()
        assert cur.lastrowid is not None
        return cur.lastrowid
    finally:
        con.close()


def _add_pairing(company, rotation: int, mentor: int, status: str = "active") -> None:
    _sql(
        company,
        "insert into mentorpairing (rotation_id, mentor_id, status, sequence, created_at, updated_at) "
        "values (?, ?, ?, 0, ?, ?)",
        rotation,
        mentor,
        status,
        NOW,
        NOW,
    )


def _add_absence(company, employee: int, day: date) -> None:
    _sql(
        company,
        "insert into absence (employee_id, start, \"end\", reason, source) values (?, ?, ?, 'leave', 'roster')",
        employee,
        str(day),
        str(day),
    )


def _d(value) -> date:
    return date.fromisoformat(str(value)[:10])


def _a_draft(company) -> tuple[int, int, date, date]:
    """(rotation id, employee id, start, end) of the first draft rotation in the horizon."""
    rid, emp, start, end = _sql(
        company,
        "select id, employee_id, start, \"end\" from rotation where status = 'draft' and start >= ? "
        "order by id limit 1",
        TODAY.isoformat(),
    )[0]
    return rid, emp, _d(start), _d(end)


def _active_pairing(company) -> tuple[int, int, int, date, date]:
    """(pairing id, rotator's employee id, mentor id, start, end) of the first active pairing of a draft."""
    pid, emp, mentor, start, end = _sql(
        company,
        'select p.id, r.employee_id, p.mentor_id, r.start, r."end" from mentorpairing p '
        "join rotation r on r.id = p.rotation_id where p.status = 'active' and r.status = 'draft' order by p.id limit 1",
    )[0]
    return pid, emp, mentor, _d(start), _d(end)


def _weekly_counts(company) -> list[int]:
    """Rotations (not cancelled) touching each of the 52 weeks from TODAY: the test's own count."""
    rots = [(_d(s), _d(t)) for s, t in _sql(company, "select start, \"end\" from rotation where status != 'cancelled'")]
    weeks = [TODAY + timedelta(weeks=k) for k in range(52)]
    return [sum(1 for s, t in rots if s <= w + timedelta(days=6) and t >= w) for w in weeks]


# ---- what the product stored ------------------------------------------------------------------------


def test_the_products_plan_and_pairings_break_no_rule(paired) -> None:
    assert co.plan_violations(paired) == {}
    found = co.pair_violations(paired)
    assert {k for k in found if not k.startswith("_")} == set()
    assert found["_planned"] > 50 and found["_unpaired"] < found["_planned"] // 10


# ---- the plan's rules ---------------------------------------------------------------------------------


def test_a_start_that_is_not_a_monday(copy) -> None:
    rid, _emp, start, end = _a_draft(copy)
    _sql(
        copy,
        'update rotation set start = ?, "end" = ? where id = ?',
        str(start + timedelta(days=1)),
        str(end + timedelta(days=1)),
        rid,
    )
    assert co.plan_violations(copy).get("not a Monday") == 1


def test_a_rotation_of_the_wrong_length(copy) -> None:
    rid, _emp, _start, end = _a_draft(copy)
    _sql(copy, 'update rotation set "end" = ? where id = ?', str(end + timedelta(days=7)), rid)
    assert co.plan_violations(copy).get("wrong length") == 1


def test_a_rotation_over_the_persons_absence(copy) -> None:
    _rid, emp, start, _end = _a_draft(copy)
    day = start + timedelta(days=9)
    _add_absence(copy, emp, day)
    assert co.plan_violations(copy).get("absence") == 1


def test_a_rotation_in_a_blackout(copy) -> None:
    day = TODAY + timedelta(weeks=20, days=2)  # a Wednesday in the horizon
    _policy(copy, "[[blackouts]]", f'[[blackouts]]\nstart = {day}\nend = {day}\nreason = "audit"\n\n[[blackouts]]')
    inside = _sql(
        copy,
        "select count(*) from rotation where status != 'cancelled' and start >= ? and start <= ? and \"end\" >= ?",
        TODAY.isoformat(),
        str(day),
        str(day),
    )[0][0]
    assert inside > 0
    assert co.plan_violations(copy).get("blackout") == inside


def test_support_staff_on_rotation(copy) -> None:
    emp = _sql(
        copy,
        "select e.id from employee e join department d on d.id = e.department_id "
        "where d.name = 'Support' order by e.id limit 1",
    )[0][0]
    start = TODAY + timedelta(weeks=30)
    _add_rotation(copy, emp, start)
    assert co.plan_violations(copy).get("support rotates") == 1


def test_a_rotation_before_the_hire_week(copy) -> None:
    _rid, emp, start, _end = _a_draft(copy)
    _sql(copy, "update employee set hire_date = ? where id = ?", str(start + timedelta(days=14)), emp)
    assert co.plan_violations(copy).get("before hire week") == 1


def test_two_rotations_in_the_horizon(copy) -> None:
    _rid, emp, start, _end = _a_draft(copy)
    second = start + timedelta(weeks=26) if start < TODAY + timedelta(weeks=20) else start - timedelta(weeks=12)
    _add_rotation(copy, emp, second)
    assert co.plan_violations(copy).get("twice in horizon") == 1


def test_more_away_than_the_seats(copy) -> None:
    counts = _weekly_counts(copy)
    top = max(counts)
    _policy(copy, "seats_per_week = 12", f"seats_per_week = {top}")
    assert "seats" not in co.plan_violations(copy)  # at the seats: no violation
    _policy(copy, f"seats_per_week = {top}", f"seats_per_week = {top - 1}")
    assert co.plan_violations(copy).get("seats") == counts.count(top)


def test_more_of_a_department_away_than_its_cap(copy) -> None:
    _sql(copy, "update department set max_away_fraction = null")
    _policy(copy, "max_department_away_fraction = 0.2", "max_department_away_fraction = 0.001")  # cap 1 each
    rots = _sql(
        copy,
        'select e.department_id, r.start, r."end" from rotation r join employee e on e.id = r.employee_id '
        "where r.status != 'cancelled'",
    )
    over = 0
    for k in range(52):
        w = TODAY + timedelta(weeks=k)
        per_dept: dict[int, int] = {}
        for dept, s, t in rots:
            if _d(s) <= w + timedelta(days=6) and _d(t) >= w:
                per_dept[dept] = per_dept.get(dept, 0) + 1
        over += sum(1 for c in per_dept.values() if c > 1)
    assert over > 0
    assert co.plan_violations(copy).get("department cap") == over


# ---- the pairings' rules ------------------------------------------------------------------------------


def _pairings_of(company, mentor: int) -> list[tuple[date, date]]:
    return [
        (_d(s), _d(t))
        for s, t in _sql(
            company,
            'select r.start, r."end" from mentorpairing p join rotation r on r.id = p.rotation_id where '
            "p.mentor_id = ? and p.status = 'active' and r.status in ('draft', 'invited') and r.\"end\" >= ?",
            mentor,
            TODAY.isoformat(),
        )
    ]


def test_a_mentor_from_the_rotators_own_department(copy) -> None:
    _pid, emp, mentor, _s, _e = _active_pairing(copy)
    support = _sql(copy, "select department_id from employee where id = ?", mentor)[0][0]
    _sql(copy, "update employee set department_id = ? where id = ?", support, emp)
    assert co.pair_violations(copy).get("own department") == 1


def test_no_shared_language(copy) -> None:
    _pid, emp, _mentor, _s, _e = _active_pairing(copy)
    _sql(copy, "update employee set languages = ? where id = ?", json.dumps(["xx"]), emp)
    assert co.pair_violations(copy).get("no shared language") == 1


def test_time_zones_too_far_apart(copy) -> None:
    _pid, emp, mentor, start, _e = _active_pairing(copy)
    mzone = _sql(copy, "select timezone from employee where id = ?", mentor)[0][0]
    noon = datetime(start.year, start.month, start.day, 12)
    offset = noon.replace(tzinfo=ZoneInfo(mzone)).utcoffset()
    m_off = 0.0 if offset is None else offset.total_seconds() / 3600
    far = "Pacific/Kiritimati" if m_off < 0 else "Etc/GMT+12"  # +14 or -12: more than 6 hours from any mentor here
    _sql(copy, "update employee set timezone = ? where id = ?", far, emp)
    assert co.pair_violations(copy).get("time zones too far apart") == 1


def test_a_mentor_the_person_had_before(copy) -> None:
    _pid, emp, mentor, _s, _e = _active_pairing(copy)
    past = _add_rotation(copy, emp, TODAY - timedelta(weeks=60), status="done")
    _add_pairing(copy, past, mentor, status="done")
    assert co.pair_violations(copy).get("mentor had before") == 1


def test_a_mentor_absent_during_the_rotation(copy) -> None:
    _pid, _emp, mentor, start, _e = _active_pairing(copy)
    day = start + timedelta(days=3)
    _add_absence(copy, mentor, day)
    expected = sum(1 for s, t in _pairings_of(copy, mentor) if s <= day <= t)
    assert expected >= 1
    assert co.pair_violations(copy).get("mentor absent") == expected


def test_a_mentor_over_the_weekly_seats(copy) -> None:
    _pid, _emp, mentor, start, _e = _active_pairing(copy)
    capacity = _sql(copy, "select mentor_capacity from employee where id = ?", mentor)[0][0]
    week = start - timedelta(days=start.weekday())
    taken = sum(1 for s, t in _pairings_of(copy, mentor) if s <= week + timedelta(days=6) and t >= week)
    assert 1 <= taken <= capacity
    for _ in range(capacity - taken + 1):  # one more rotation than the mentor has seats, that week only
        emp = _sql(
            copy,
            "select e.id from employee e join department d on d.id = e.department_id "
            "where d.name != 'Support' and e.id not in (select employee_id from rotation) order by e.id limit 1",
        )
        _add_pairing(copy, _add_rotation(copy, emp[0][0], week, days=6), mentor)
    assert co.pair_violations(copy).get("mentor over weekly seats") == 1


def test_a_mentor_over_the_annual_cap(copy) -> None:
    per_mentor = _sql(
        copy,
        "select p.mentor_id, count(*) from mentorpairing p join rotation r on r.id = p.rotation_id where "
        "p.status = 'active' and r.status in ('draft', 'invited') and r.\"end\" >= ? group by p.mentor_id",
        TODAY.isoformat(),
    )
    top = max(c for _m, c in per_mentor)
    _policy(copy, "annual_cap = 21", f"annual_cap = {top}")
    assert "mentor over annual cap" not in co.pair_violations(copy)  # at the cap: no violation
    _policy(copy, f"annual_cap = {top}", f"annual_cap = {top - 1}")
    assert co.pair_violations(copy).get("mentor over annual cap") == sum(1 for _m, c in per_mentor if c == top)


def test_a_mentor_who_left(copy) -> None:
    _pid, _emp, mentor, _s, _e = _active_pairing(copy)
    _sql(copy, "update employee set active = 0 where id = ?", mentor)
    assert co.pair_violations(copy).get("not an active support mentor") == len(_pairings_of(copy, mentor))


def test_a_rotation_left_without_a_mentor_is_counted(copy, paired) -> None:
    pid, _emp, _mentor, _s, _e = _active_pairing(copy)
    _sql(copy, "update mentorpairing set status = 'replaced' where id = ?", pid)
    assert co.pair_violations(copy)["_unpaired"] == co.pair_violations(paired)["_unpaired"] + 1
