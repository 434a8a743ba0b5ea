"""Planning from the database (SQLite and PostgreSQL): rules, stable re-planning, overrides, export."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta

import pytest
from sqlmodel import select

from frontline.core.errors import PlanningError
from frontline.core.policy import parse_policy
from frontline.rotations import export, overrides
from frontline.rotations.service import load_input, plan_rotations
from frontline.rotations.solver import solve
from frontline.rotations.weeks import holidays_between
from models import Absence, AuditEvent, Department, Employee, MentorPairing, PlanRun, Rotation, session_scope

H = date(2027, 1, 4)  # a Monday: the horizon start of every test
POLICY = parse_policy(
    {
        "support_department": "Support",
        "length_weeks": 2,
        "new_hire_within_weeks": 4,
        "cycle_months": 12,
        "seats_per_week": 3,
        "max_department_away_fraction": 0.25,
        "blackouts": [{"start": "2027-03-01", "end": "2027-03-07", "reason": "launch"}],
    }
)


def _company(engine) -> dict[str, int]:
    """Support (2), Engineering (8), Sales (4, one left, one exempt); absences; a future new hire."""
    ids: dict[str, int] = {}
    with session_scope(engine) as s:
        depts = {}
        for name, frac in (("Support", None), ("Engineering", None), ("Sales", 0.5)):
            d = Department(
                name=name, head_name=f"{name} Head", head_email=f"{name.lower()}@example.com", max_away_fraction=frac
            )
            s.add(d)
            s.flush()
            depts[name] = d.id

        def emp(eid, dept, **kw):
            e = Employee(
                employee_id=eid,
                name=eid,
                email=f"{eid.lower()}@example.com",
                department_id=depts[dept],
                hire_date=kw.pop("hire_date", date(2020, 1, 1)),
                timezone="Europe/Berlin",
                country="DE",
                **kw,
            )
            s.add(e)
            s.flush()
            ids[eid] = e.id

        emp("S1", "Support", is_mentor=True)
        emp("S2", "Support")
        for i in range(8):
            emp(f"E{i}", "Engineering", last_rotation=date(2026, 1, 1) + timedelta(days=20 * i) if i % 2 else None)
        emp("NH", "Engineering", hire_date=date(2027, 2, 10))
        emp("A1", "Sales")
        emp("A2", "Sales", last_rotation=date(2026, 6, 1))
        emp("GONE", "Sales", active=False, left_on=date(2026, 12, 1))
        emp("EX", "Sales", exempt_until=date(2028, 6, 30), exempt_reason="sabbatical")
        s.add(Absence(employee_id=ids["E0"], start=date(2027, 1, 1), end=date(2027, 2, 14), reason="PTO"))
        s.add(Absence(employee_id=ids["A1"], start=date(2027, 1, 11), end=date(2027, 1, 17), reason="PTO"))
    return ids


def _rotations(engine) -> dict[str, Rotation]:
    with session_scope(engine) as s:
        rows = s.exec(
            select(Rotation, Employee).where(Rotation.employee_id == Employee.id).where(Rotation.status != "cancelled")
        ).all()
        return {e.employee_id: r for r, e in rows}


def _plan(engine, **kw):
    with session_scope(engine) as s:
        return plan_rotations(s, POLICY, start=H, weeks=kw.pop("weeks", 26), **kw)


def _assert_rules(engine) -> None:
    with session_scope(engine) as s:
        rows = s.exec(
            select(Rotation, Employee).where(Rotation.employee_id == Employee.id).where(Rotation.status != "cancelled")
        ).all()
        absences = s.exec(select(Absence)).all()
        dept_of = {e.id: e.department_id for e in s.exec(select(Employee)).all()}
        dept_ids = {d.name: d.id for d in s.exec(select(Department)).all()}
    per_week: dict[date, int] = {}
    per_dept: dict[tuple[int, date], int] = {}
    for r, e in rows:
        assert r.start.weekday() == 0 and r.end == r.start + timedelta(days=13)
        assert r.start >= e.hire_date
        assert e.active and e.exempt_until is None
        for a in absences:
            assert not (a.employee_id == e.id and a.start <= r.end and a.end >= r.start), (e.employee_id, r.start)
        assert not (r.start <= date(2027, 3, 7) and r.end >= date(2027, 3, 1)), "blackout"
        for w in (r.start, r.start + timedelta(days=7)):
            per_week[w] = per_week.get(w, 0) + 1
            per_dept[(dept_of[e.id], w)] = per_dept.get((dept_of[e.id], w), 0) + 1
    assert max(per_week.values()) <= POLICY.seats_per_week
    # Engineering: max(1, floor(0.25 x 9 or 10 active)) = 2; Sales: max(1, floor(0.5 x its 2-3 active)) = 1
    caps = {dept_ids["Engineering"]: 2, dept_ids["Sales"]: 1}
    for (d, w), n in per_dept.items():
        assert n <= caps[d], (d, w, n)


# Due weeks of the fixture, worked out by hand: due cycle_months (12) after the last rotation, on the Monday
# on or after it; never rotated: due at the horizon start; the new hire: the Monday after the hire date.
EXPECTED_DUE = {
    **{f"E{i}": H for i in (0, 2, 4, 6)},
    "E1": date(2027, 1, 25),  # last rotation 2026-01-21
    "E3": date(2027, 3, 8),  # 2026-03-02
    "E5": date(2027, 4, 12),  # 2026-04-11
    "E7": date(2027, 5, 24),  # 2026-05-21
    "NH": date(2027, 2, 15),  # hired 2027-02-10
    "A1": H,
    "A2": date(2027, 6, 7),  # 2026-06-01
}


def test_plan_from_database(engine, settings):
    _company(engine)
    with session_scope(engine) as s:  # what the solver decides for this database, before anything is written
        expected = solve(load_input(s, POLICY, H, 26).inp)
    result = _plan(engine)
    rots = _rotations(engine)
    # everyone outside Support who has not left and is not exempt: 8 engineers, the new hire, A1, A2
    assert set(rots) == set(EXPECTED_DUE) == set(expected.assignments)
    assert result.planned == 11 and result.created == 11 and not result.unplaced and not expected.unplaced
    # the rotations written are the solver's plan: its start weeks, as 2-week drafts nobody was told about
    assert {k: r.start for k, r in rots.items()} == {k: H + timedelta(weeks=w) for k, w in expected.assignments.items()}
    for key, r in rots.items():
        assert (r.status, r.locked, r.announced_start, r.sequence) == ("draft", False, None, 0), key
        assert r.end == r.start + timedelta(days=13) and r.due == EXPECTED_DUE[key], key
        assert r.kind == ("new_hire" if key == "NH" else "cycle"), key
    assert sorted((c["employee_id"], c["action"], c["new_start"]) for c in result.changes) == sorted(
        (k, "created", r.start.isoformat()) for k, r in rots.items()
    )
    _assert_rules(engine)
    assert rots["NH"].start >= date(2027, 2, 10) and rots["E0"].start >= date(2027, 2, 15)  # after the absence
    assert result.skipped == {"left": 1, "support": 2, "exempt": 1}
    assert result.objective == pytest.approx(expected.objective) and result.gap is not None and result.gap < 1e-6
    with session_scope(engine) as s:
        run = s.get(PlanRun, result.run_id)
        assert run.planned == 11 and run.objective == pytest.approx(result.objective) and run.summary["created"] == 11
        event = s.exec(select(AuditEvent).where(AuditEvent.action == "plan.run")).one()
        assert event.subject_id == str(run.id) and event.details["created"] == 11
    # same inputs, same plan: nothing changes
    again = _plan(engine)
    assert (again.created, again.moved, again.removed, again.kept) == (0, 0, 0, 11)
    assert {k: r.start for k, r in _rotations(engine).items()} == {k: r.start for k, r in rots.items()}


def test_short_replan_leaves_drafts_after_its_horizon_alone(engine, settings):
    """Re-planning a few weeks must not withdraw (or duplicate) rotations planned later in the year."""
    _company(engine)
    _plan(engine)
    before = {k: r.start for k, r in _rotations(engine).items()}
    horizon_end = H + timedelta(weeks=4)
    later = {k for k, start in before.items() if start >= horizon_end}
    assert later, "the fixture should plan some rotations after the first four weeks"
    short = _plan(engine, weeks=4)
    assert short.removed == 0
    assert short.skipped.get("planned_after_horizon") == len(later)
    after = {k: r.start for k, r in _rotations(engine).items()}
    assert {k: after[k] for k in later} == {k: before[k] for k in later}
    with session_scope(engine) as s:  # still one live rotation per person
        owners = s.exec(select(Rotation.employee_id).where(Rotation.status != "cancelled")).all()
        assert len(owners) == len(set(owners))
    _assert_rules(engine)


def test_dry_run_writes_no_rotations(engine, settings):
    _company(engine)
    result = _plan(engine, dry_run=True)
    assert result.planned == 11 and result.dry_run
    assert _rotations(engine) == {}
    with session_scope(engine) as s:
        assert s.get(PlanRun, result.run_id).dry_run


def test_stable_replan_moves_only_what_must(engine, settings):
    ids = _company(engine)
    _plan(engine)
    before = {k: r.start for k, r in _rotations(engine).items()}
    with session_scope(engine) as s:
        # E3's planned weeks are now covered by PTO; A2 leaves; a new engineer joins
        s.add(Absence(employee_id=ids["E3"], start=before["E3"], end=before["E3"] + timedelta(days=3), reason="PTO"))
        # A2 already has a mentor: their rotation is cancelled (not deleted) so the pairing can be cancelled too
        s.add(MentorPairing(rotation_id=_rotations(engine)["A2"].id, mentor_id=ids["S1"]))
        a2 = s.get(Employee, ids["A2"])
        a2.active, a2.left_on = False, H
        s.add(a2)
        eng = s.exec(select(Department).where(Department.name == "Engineering")).one()
        s.add(
            Employee(
                employee_id="E9",
                name="E9",
                email="e9@example.com",
                department_id=eng.id,
                hire_date=date(2019, 1, 1),
                timezone="UTC",
                country="GB",
                last_rotation=date(2026, 3, 1),
            )
        )
    result = _plan(engine)
    after = {k: r.start for k, r in _rotations(engine).items()}
    assert "A2" not in after and "E9" in after
    assert any(c["employee_id"] == "A2" and c["action"] == "cancelled" and "left" in c["why"] for c in result.changes)
    assert after["E3"] != before["E3"]
    unchanged = {k for k in before if k in after and after[k] == before[k]}
    assert len(unchanged) >= len(before) - 3  # only what must move moves (E3, perhaps one it displaces)
    _assert_rules(engine)
    moved = {c["employee_id"]: c for c in result.changes if c["action"] == "moved"}
    assert "absence" in moved["E3"]["why"]
    with session_scope(engine) as s:
        e3 = _rotations(engine)["E3"]
        assert "absence" in e3.change_reason and str(before["E3"]) in e3.change_reason
        events = s.exec(select(AuditEvent).where(AuditEvent.action.in_(["rotation.moved", "rotation.cancelled"]))).all()
        assert {e.details["employee_id"] for e in events} >= {"E3", "A2"}
        assert all(e.reason for e in events)


def test_announced_and_locked_rotations_never_move(engine, settings):
    ids = _company(engine)
    _plan(engine)
    rots = _rotations(engine)
    with session_scope(engine) as s:
        inv = s.get(Rotation, rots["E1"].id)
        inv.status, inv.announced_start, inv.sequence = "invited", inv.start, 1
        s.add(inv)
        # an absence now overlaps the announced rotation: it still does not move (HR decides)
        s.add(Absence(employee_id=ids["E1"], start=inv.start, end=inv.start, reason="doctor"))
        overrides.lock(s, rots["E2"].id, "agreed with the team")
    _plan(engine)
    after = _rotations(engine)
    assert after["E1"].start == rots["E1"].start and after["E1"].status == "invited"
    assert after["E2"].start == rots["E2"].start and after["E2"].locked
    with session_scope(engine) as s:
        overrides.unlock(s, rots["E1"].id, "let the planner fix the clash")
    result = _plan(engine)
    after = _rotations(engine)
    assert after["E1"].start != rots["E1"].start and after["E1"].status == "draft"
    assert after["E1"].announced_start == rots["E1"].start  # the move will be announced as an update
    assert any(c["employee_id"] == "E1" and c["action"] == "moved" for c in result.changes)


def test_overrides_validated_and_audited(engine, settings):
    ids = _company(engine)
    _plan(engine)
    rots = _rotations(engine)
    with session_scope(engine) as s:
        with pytest.raises(PlanningError, match="reason is required"):
            overrides.move(s, POLICY, rots["E4"].id, date(2027, 6, 7), "  ")
        with pytest.raises(PlanningError, match="Monday"):
            overrides.move(s, POLICY, rots["E4"].id, date(2027, 6, 8), "wants June")
        with pytest.raises(PlanningError, match="absence"):
            overrides.move(s, POLICY, rots["E0"].id, date(2027, 1, 11), "asap")
        with pytest.raises(PlanningError, match="blackout"):
            overrides.move(s, POLICY, rots["E4"].id, date(2027, 3, 1), "launch week")
        with pytest.raises(PlanningError, match="before"):
            overrides.move(s, POLICY, rots["NH"].id, date(2027, 2, 1), "early")
        with pytest.raises(PlanningError, match="does not exist"):
            overrides.lock(s, 99999, "x")
        moved = overrides.move(s, POLICY, rots["E4"].id, date(2027, 6, 7), "wants June")
        assert moved.locked and moved.end == date(2027, 6, 20) and "wants June" in moved.change_reason
    with session_scope(engine) as s:
        a, b = overrides.swap(s, POLICY, rots["E5"].id, rots["E6"].id, "they traded")
        assert (a.start, b.start) == (rots["E6"].start, rots["E5"].start) and a.locked and b.locked
        d = overrides.defer(s, POLICY, overrides.upcoming_rotation(s, "E7").id, weeks=3, reason="project deadline")
        assert d.start == rots["E7"].start + timedelta(weeks=3)
        with pytest.raises(PlanningError, match="either"):
            overrides.defer(s, POLICY, d.id, reason="x")
        overrides.exempt(s, "A1", date(2027, 12, 31), "parental leave", today=H)
    with session_scope(engine) as s:
        assert s.get(Rotation, rots["A1"].id) is None  # a never-announced draft is withdrawn
        assert s.get(Employee, ids["A1"]).exempt_until == date(2027, 12, 31)
        actions = [(e.action, e.reason) for e in s.exec(select(AuditEvent).order_by(AuditEvent.id)).all()]
    for action, reason in [
        ("rotation.move", "wants June"),
        ("rotation.swap", "they traded"),
        ("rotation.defer", "project deadline"),
        ("employee.exempt", "parental leave"),
    ]:
        assert (action, reason) in actions
    # the planner keeps HR's decisions
    _plan(engine)
    after = _rotations(engine)
    assert after["E4"].start == date(2027, 6, 7) and "A1" not in after
    _assert_rules(engine)


def test_export_json_and_csv(engine, settings):
    _company(engine)
    _plan(engine)
    with session_scope(engine) as s:
        rows = export.export_rows(s)
    required = ["employee_id", "email", "department", "start", "end", "kind", "status", "locked"]
    data = json.loads(export.export_text(rows, "json"))
    assert isinstance(data, list) and len(data) == 11
    assert all(set(required) <= set(r) for r in data)
    assert [r["start"] for r in data] == sorted(r["start"] for r in data)
    nh = next(r for r in data if r["employee_id"] == "NH")
    assert (
        nh["kind"] == "new_hire"
        and nh["status"] == "draft"
        and nh["locked"] is False
        and nh["email"] == "nh@example.com"
    )
    parsed = list(csv.DictReader(io.StringIO(export.export_text(rows, "csv"))))
    assert len(parsed) == 11 and set(required) <= set(parsed[0])
    with pytest.raises(PlanningError):
        export.export_text(rows, "xml")
    # German public holidays inside a rotation are shown (Easter Monday 2027-03-29, Good Friday 2027-03-26)
    assert holidays_between("DE", date(2027, 3, 22), date(2027, 4, 4)) == [
        (date(2027, 3, 26), "Good Friday"),
        (date(2027, 3, 29), "Easter Monday"),
    ]


def test_cli_export_and_override(engine, settings):
    from typer.testing import CliRunner

    from frontline.cli import app

    settings.policy_path.write_text(
        'support_department = "Support"\nlength_weeks = 2\nseats_per_week = 3\nmax_department_away_fraction = 0.25\n'
        "new_hire_within_weeks = 4\n",
        encoding="utf-8",
    )
    _company(engine)
    _plan(engine)
    runner = CliRunner()
    out = runner.invoke(app, ["plan", "export", "--format", "json"])
    assert out.exit_code == 0, out.output
    assert len(json.loads(out.stdout)) == 11
    out = runner.invoke(app, ["plan", "lock", "E1"])
    assert out.exit_code != 0 and "--reason" in out.output
    out = runner.invoke(app, ["plan", "move", "E1", "2027-06-08", "--reason", "x"])
    assert out.exit_code == 1 and "Monday" in out.output
    out = runner.invoke(app, ["plan", "lock", "E1", "--reason", "fixed with the team"])
    assert out.exit_code == 0 and "locked" in out.output


@pytest.mark.prefect
def test_plan_flow(sqlite_engine, sqlite_settings, prefect_harness, capsys):
    from flows.plan import plan_rotations
    from frontline.cli.plan import _print_summary

    sqlite_settings.policy_path.write_text(
        'support_department = "Support"\nlength_weeks = 2\nseats_per_week = 3\nmax_department_away_fraction = 0.25\n'
        "new_hire_within_weeks = 4\n",
        encoding="utf-8",
    )
    _company(sqlite_engine)
    preview = plan_rotations(start=H, weeks=26, dry_run=True)
    _print_summary(preview)  # `frontline plan --dry-run` names every change: who, from, to, why
    printed = capsys.readouterr().out
    assert "changes that would be made:" in printed and not _rotations(sqlite_engine)
    assert len([c for c in preview["changes"] if c["action"] == "created"]) == 11
    nh = next(line for line in printed.splitlines() if line.startswith("NH NH "))
    assert "created" in nh and "new hire (hired 2027-02-10)" in nh
    out = plan_rotations(start=H, weeks=26)
    assert out["summary"]["planned"] == 11 and len(out["week_load"]) == 26
    assert len(_rotations(sqlite_engine)) == 11
    _print_summary(out)  # what `frontline plan` prints
    printed = capsys.readouterr().out
    assert "planned: 11 rotation(s), 1 new hire(s)" in printed and "gap 0.000%" in printed and "unplaced: 0" in printed
    assert "changes made:" in printed
    # an absence over E3's planned weeks: the dry run names the move, from where to where and why
    e3 = _rotations(sqlite_engine)["E3"]
    with session_scope(sqlite_engine) as s:
        s.add(Absence(employee_id=e3.employee_id, start=e3.start, end=e3.end, reason="surgery"))
    _print_summary(plan_rotations(start=H, weeks=26, dry_run=True))
    moved = [line for line in capsys.readouterr().out.splitlines() if line.startswith("E3 E3 ")]
    assert len(moved) == 1 and "moved" in moved[0] and e3.start.isoformat() in moved[0]
    assert "its weeks now overlap an absence" in moved[0]
    import httpx
    from prefect.settings import PREFECT_API_URL

    found = httpx.post(
        f"{PREFECT_API_URL.value()}/artifacts/filter",
        timeout=30,
        json={
            "artifacts": {"key": {"any_": ["rotation-plan", "rotation-plan-week-load"]}},
            "sort": "CREATED_DESC",
            "limit": 5,
            "offset": 0,
        },
    )
    found.raise_for_status()
    keys = {a["key"] for a in found.json()}
    assert keys == {"rotation-plan", "rotation-plan-week-load"}
    assert "planned" in str([a["data"] for a in found.json()])


def test_csv_export_cells_cannot_run_as_spreadsheet_formulas():
    row = {name: "" for name, _ in export.EXPORT_COLUMNS} | dict.fromkeys(export.MENTOR_COLUMNS, "")
    row |= {"employee_id": "E1", "department": '=HYPERLINK("http://evil.example")', "email": "@sum@example.com"}
    parsed = next(csv.DictReader(io.StringIO(export.export_text([row], "csv"))))
    assert parsed["department"] == '\'=HYPERLINK("http://evil.example")'
    assert parsed["email"] == "'@sum@example.com" and parsed["employee_id"] == "E1"
