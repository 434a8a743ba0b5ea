"""The planner's bulk writer (``models.db.bulk_insert``) stores exactly what the ORM stores, on SQLite and
PostgreSQL; bad rows write nothing; the plan summary and the CLI's change list (issue 13, planner part)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlmodel import select

from frontline.rotations.service import PlanResult
from models import Department, Employee, Rotation, session_scope
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
