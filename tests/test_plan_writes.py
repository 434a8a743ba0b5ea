"""The planner's bulk writer (``models.db.bulk_insert``) stores exactly what the ORM stores, on SQLite and
PostgreSQL; bad rows write nothing; the plan summary and the CLI's change list (issue 13, planner part)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlmodel import select

from frontline.core.policy import parse_policy
from frontline.rotations.service import PlanResult, plan_rotations
from models import Absence, Department, Employee, Rotation, session_scope
from models.db import bulk_insert

COLUMNS = 'employee_id, start, "end", kind, status, locked, due, sequence, announced_start, change_reason, created_at, updated_at'


def _people(engine, n: int) -> list[int]:
    with session_scope(engine) as s:
        d = Department(name="Eng", head_name="H", head_email="h@example.com")
        s.add(d)
        s.flush()
        ids = []
        for i in range(n):
            e = Employee(
                employee_id=f"E{i}",
                name=f"E{i}",
                email=f"e{i}@example.com",
                department_id=d.id,
                hire_date=date(2020, 1, 1),
                timezone="UTC",
                country="DE",
            )
            s.add(e)
            s.flush()
            ids.append(e.id)
    return ids


def _rows(ids: list[int]) -> list[dict]:
    """Rotation rows as the planner writes them: repeated and distinct dates, a timestamp with and without
    microseconds, both kinds, locked true and false."""
    stamps = [datetime(2027, 1, 4, 9, 30, 0, tzinfo=UTC), datetime(2027, 1, 4, 9, 30, 0, 123456, tzinfo=UTC)]
    out = []
    for k, eid in enumerate(ids):
        start = date(2027, 1, 4) + timedelta(weeks=k % 5)
        out.append(
            {
                "employee_id": eid,
                "start": start,
                "end": start + timedelta(days=27),
                "kind": "new_hire" if k % 3 == 0 else "cycle",
                "status": "draft",
                "locked": k % 4 == 0,
                "due": start - timedelta(weeks=k % 2),
                "sequence": 0,
                "created_at": stamps[k % 2],
                "updated_at": stamps[(k + 1) % 2],
            }
        )
    return out


def _stored(engine) -> list[tuple]:
    """The rotation rows as the database holds them (raw driver values: text on SQLite), without ids."""
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(f"select {COLUMNS} from rotation order by employee_id"))]


def test_bulk_insert_stores_exactly_what_the_orm_stores(engine):
    ids = _people(engine, 12)
    rows = _rows(ids)
    with session_scope(engine) as s:
        for row in rows:
            s.add(Rotation(**row))
    by_orm = _stored(engine)
    with session_scope(engine) as s:
        for r in s.exec(select(Rotation)).all():
            s.delete(r)
    assert _stored(engine) == []
    with session_scope(engine) as s:
        assert bulk_insert(s, Rotation.__table__, rows) == len(rows)
    by_bulk = _stored(engine)
    assert len(by_bulk) == len(rows)
    assert by_bulk == by_orm
    with session_scope(engine) as s:  # and the ORM reads them back as the values given
        back = {r.employee_id: r for r in s.exec(select(Rotation)).all()}
        for row in rows:
            got = back[row["employee_id"]]
            assert {k: getattr(got, k) for k in ("start", "end", "kind", "locked", "due")} == {
                k: row[k] for k in ("start", "end", "kind", "locked", "due")
            }


def test_bulk_insert_refuses_bad_rows_and_writes_nothing(engine):
    ids = _people(engine, 3)
    rows = _rows(ids)
    odd = [*rows[:2], {k: v for k, v in rows[2].items() if k != "due"}]
    with session_scope(engine) as s, pytest.raises(ValueError, match=r"rotation: row 2 has keys"):
        bulk_insert(s, Rotation.__table__, odd)
    with session_scope(engine) as s, pytest.raises(ValueError, match=r"no column\(s\) colour"):
        bulk_insert(s, Rotation.__table__, [{**r, "colour": "red"} for r in rows])
    missing = [{k: v for k, v in r.items() if k not in ("status", "sequence")} for r in rows]
    with session_scope(engine) as s, pytest.raises(ValueError, match=r"give the column\(s\) sequence, status"):
        bulk_insert(s, Rotation.__table__, missing)
    assert _stored(engine) == []


def test_summary_leaves_out_the_per_rotation_lists_and_is_json():
    result = PlanResult(
        run_id=3,
        horizon_start=date(2027, 1, 4),
        weeks=52,
        dry_run=False,
        planned=2,
        new_hires=1,
        late=0,
        unplaced=[{"employee_id": "X"}],
        objective=1.5,
        lower_bound=1.5,
        gap=0.0,
        solve_seconds=0.1,
        changes=[{"employee_id": "A"}],
        week_load=[{"week": "2027-01-04"}],
        holidays=[{"employee_id": "A"}, {"employee_id": "A"}, {"employee_id": "B"}],
        skipped={"left": 1},
        stats={"method": "lp"},
    )
    s = result.summary()
    assert not {"unplaced", "changes", "week_load", "holidays"} & set(s)
    assert s["horizon_start"] == "2027-01-04" and s["unplaced_count"] == 1 and s["holiday_rotations"] == 2
    assert s["skipped"] == {"left": 1} and s["stats"] == {"method": "lp"} and s["objective"] == 1.5
    s["skipped"]["left"] = 9  # a copy: the result is not changed through the summary
    assert result.skipped == {"left": 1}


POLICY_TABLE = {
    "support_department": "Support",
    "length_weeks": 2,
    "new_hire_within_weeks": 4,
    "cycle_months": 12,
    "seats_per_week": 4,
    "max_department_away_fraction": 0.25,
}
POLICY = parse_policy(POLICY_TABLE)
H = date(2027, 1, 4)


def _company(engine, n: int = 40) -> None:
    """Support (1) and Engineering/Sales (n): due at different times, some new hires, a few absences."""
    with session_scope(engine) as s:
        depts = {}
        for name in ("Support", "Engineering", "Sales"):
            d = Department(name=name, head_name="H", head_email=f"{name.lower()}@example.com")
            s.add(d)
            s.flush()
            depts[name] = d.id
        s.add(
            Employee(
                employee_id="S0",
                name="S0",
                email="s0@example.com",
                department_id=depts["Support"],
                hire_date=date(2020, 1, 1),
                timezone="UTC",
                country="DE",
            )
        )
        for i in range(n):
            e = Employee(
                employee_id=f"P{i:03d}",
                name=f"P{i}",
                email=f"p{i}@example.com",
                department_id=depts["Engineering" if i % 3 else "Sales"],
                hire_date=date(2027, 1, 20) if i % 7 == 0 else date(2021, 1, 1),
                last_rotation=None if i % 5 == 0 else date(2026, 1, 1) + timedelta(days=9 * i),
                timezone="UTC",
                country="DE",
            )
            s.add(e)
            s.flush()
            if i % 6 == 1:
                s.add(Absence(employee_id=e.id, start=H + timedelta(days=7 * i), end=H + timedelta(days=7 * i + 9)))


def _table(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text(
                    'select id, employee_id, start, "end", kind, status, due, change_reason, updated_at from rotation order by id'
                )
            )
        ]


def test_replan_rewrites_nothing_and_corrects_only_a_stale_draft(engine, settings):
    """A re-run keeps every draft without writing it (the writer reads plain rows; no row is touched); a draft
    whose stored kind no longer matches is the only row rewritten."""
    _company(engine)
    with session_scope(engine) as s:
        first = plan_rotations(s, POLICY, start=H, weeks=26)
    assert first.created == first.planned > 20
    stored = _table(engine)
    with session_scope(engine) as s:
        again = plan_rotations(s, POLICY, start=H, weeks=26)
    assert (again.created, again.moved, again.removed, again.kept) == (0, 0, 0, first.planned)
    assert again.changes == [] and _table(engine) == stored
    victim = stored[3]
    wrong = "new_hire" if victim[4] == "cycle" else "cycle"
    with engine.begin() as conn:
        conn.execute(text("update rotation set kind = :k where id = :i"), {"k": wrong, "i": victim[0]})
    with session_scope(engine) as s:
        third = plan_rotations(s, POLICY, start=H, weeks=26)
    assert (third.created, third.moved, third.removed, third.kept) == (0, 0, 0, first.planned)
    now = _table(engine)
    assert [r for r in now if r[0] != victim[0]] == [r for r in stored if r[0] != victim[0]]
    fixed = next(r for r in now if r[0] == victim[0])
    assert fixed[:4] == victim[:4] and fixed[4] == victim[4] and fixed[8] != victim[8]


def test_a_stored_rotation_holds_its_seat_in_every_week_it_touches(engine, settings):
    """A fixed rotation need not run Monday to Sunday (a stored past one, here Wednesday to Tuesday over five
    calendar weeks): the planner keeps its seat in all five, as the independent checker counts them."""
    one_seat = parse_policy({**POLICY_TABLE, "seats_per_week": 1})
    with session_scope(engine) as s:
        d = Department(name="Eng", head_name="H", head_email="h@example.com")
        sup = Department(name="Support", head_name="H", head_email="s@example.com")
        s.add_all([d, sup])
        s.flush()
        people = {}
        for key in ("OLD", "NEW"):
            e = Employee(
                employee_id=key,
                name=key,
                email=f"{key.lower()}@example.com",
                department_id=d.id,
                hire_date=date(2020, 1, 1),
                last_rotation=date(2025, 12, 1),
                timezone="UTC",
                country="DE",
            )
            s.add(e)
            s.flush()
            people[key] = e.id
        start = date(2026, 12, 30)  # a Wednesday: the rotation touches the weeks of 12-28 .. 2027-01-25
        s.add(
            Rotation(
                employee_id=people["OLD"],
                start=start,
                end=start + timedelta(days=27),
                kind="cycle",
                status="done",
                due=start,
            )
        )
    with session_scope(engine) as s:
        plan_rotations(s, one_seat, start=H, weeks=26)
    with session_scope(engine) as s:
        new = s.exec(select(Rotation).where(Rotation.employee_id == people["NEW"])).one()
    assert new.start == date(2027, 2, 1)  # the first Monday after the old rotation's last week (2027-01-25)


def test_cli_no_flow_prints_the_changes_it_made(engine, settings):
    """``frontline plan --no-flow`` names every change as the flow path does (it printed "nothing changed")."""
    from typer.testing import CliRunner

    from frontline.cli import app

    settings.policy_path.write_text(
        'support_department = "Support"\nlength_weeks = 2\nseats_per_week = 4\nmax_department_away_fraction = 0.25\n'
        "new_hire_within_weeks = 4\n",
        encoding="utf-8",
    )
    _company(engine, 12)
    out = CliRunner().invoke(app, ["plan", "--from", H.isoformat(), "--weeks", "26", "--no-flow"])
    assert out.exit_code == 0, out.output
    assert "changes made:" in out.output and "nothing changed" not in out.output
    created = [line for line in out.output.splitlines() if " created " in line]
    with session_scope(engine) as s:
        assert len(created) == len(s.exec(select(Rotation)).all()) > 5
    again = CliRunner().invoke(app, ["plan", "--from", H.isoformat(), "--weeks", "26", "--no-flow"])
    assert again.exit_code == 0 and "nothing changed" in again.output
