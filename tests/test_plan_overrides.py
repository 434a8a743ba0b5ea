"""HR gives an unplaced person a rotation (`plan add`), and every refused move, defer or add names the
nearest weeks that fit and the rotations that would make the wanted week fit (service and CLI; the console
dialogs are in tests/test_override_browser.py)."""

from __future__ import annotations

from datetime import date

import pytest
from sqlmodel import select

from frontline.core import clock
from frontline.core.errors import OverrideRefused, PlanningError
from frontline.core.policy import parse_policy
from frontline.rotations import overrides
from models import Absence, AuditEvent, Department, Employee, Rotation, session_scope

TODAY = date(2027, 1, 4)  # a Monday
POLICY = parse_policy(
    {
        "support_department": "Support",
        "length_weeks": 2,
        "seats_per_week": 2,
        "max_department_away_fraction": 0.25,
        "new_hire_within_weeks": 4,
        "cycle_months": 12,
    }
)
POLICY_TOML = (
    'support_department = "Support"\nlength_weeks = 2\nseats_per_week = 2\nmax_department_away_fraction = 0.25\n'
    "new_hire_within_weeks = 4\ncycle_months = 12\n"
)


def _company(engine) -> dict[str, int]:
    """Sales (A, B, C, D: at most 1 away), Engineering (X, Y: at most 1 away), 2 seats, 2-week rotations.
    A 2027-02-01, B 2027-02-15 and X 2027-02-01 are planned (drafts); C has no rotation; D is absent in March."""
    ids: dict[str, int] = {}
    with session_scope(engine) as s:
        depts = {}
        for name in ("Support", "Sales", "Engineering"):
            d = Department(name=name, head_name=f"{name} Head", head_email=f"{name.lower()}@example.com")
            s.add(d)
            s.flush()
            depts[name] = d.id
        for eid, dept in (("S1", "Support"), ("A", "Sales"), ("B", "Sales"), ("C", "Sales"), ("D", "Sales")):
            ids[eid] = _emp(s, eid, depts[dept])
        for eid in ("X", "Y"):
            ids[eid] = _emp(s, eid, depts["Engineering"])
        for eid, start in (("A", date(2027, 2, 1)), ("B", date(2027, 2, 15)), ("X", date(2027, 2, 1))):
            rot = Rotation(
                employee_id=ids[eid], start=start, end=start.replace(day=start.day + 13), kind="cycle", due=start
            )
            s.add(rot)
            s.flush()
            ids[f"rot_{eid}"] = rot.id
        s.add(Absence(employee_id=ids["D"], start=date(2027, 3, 1), end=date(2027, 3, 14), reason="PTO"))
    return ids


def _emp(s, eid: str, dept_id: int) -> int:
    e = Employee(
        employee_id=eid,
        name=f"Person {eid}",
        email=f"{eid.lower()}@example.com",
        department_id=dept_id,
        hire_date=date(2020, 1, 1),
        timezone="Europe/Berlin",
        country="DE",
        last_rotation=date(2025, 6, 2),
    )
    s.add(e)
    s.flush()
    return e.id


def test_add_for_an_unplaced_person_is_checked_locked_and_audited(engine, settings):
    ids = _company(engine)
    with session_scope(engine) as s:
        with pytest.raises(OverrideRefused) as refused:
            overrides.add(s, POLICY, "C", date(2027, 2, 1), "promised to the team", today=TODAY)
        exc = refused.value
        assert "seats taken" in exc.problem or "away" in exc.problem
        # weeks that keep Sales at one away (A 02-01..02-14, B 02-15..02-28) and the seats at two, nearest first
        assert exc.alternatives == ["2027-01-04", "2027-01-11", "2027-01-18"]
        # only A's leaving makes 2027-02-01 fit (X leaving frees a seat, but Sales would still have A away)
        assert [(p["employee_id"], p["how"]) for p in exc.partners] == [("A", "room")]
        assert "nearest weeks that fit: 2027-01-04, 2027-01-11, 2027-01-18" in str(exc)
    with session_scope(engine) as s:
        rot = overrides.add(s, POLICY, "C", date(2027, 1, 18), "promised to the team", today=TODAY)
        assert (rot.start, rot.end, rot.locked, rot.status, rot.kind) == (
            date(2027, 1, 18),
            date(2027, 1, 31),
            True,
            "draft",
            "cycle",
        )
        assert rot.due == date(2026, 6, 1)  # 12 months after the last rotation (2025-06-02), as a Monday
    with session_scope(engine) as s:
        events = s.exec(select(AuditEvent).where(AuditEvent.action == "rotation.add")).all()
        assert [(e.reason, e.subject_id) for e in events] == [("promised to the team", str(rot.id))]
        with pytest.raises(PlanningError, match="already has rotation"):
            overrides.add(s, POLICY, "C", date(2027, 3, 1), "again", today=TODAY)
        with pytest.raises(PlanningError, match="support department"):
            overrides.add(s, POLICY, "S1", date(2027, 3, 1), "x", today=TODAY)
        with pytest.raises(PlanningError, match="in the past"):
            overrides.add(s, POLICY, "Y", date(2026, 12, 28), "x", today=TODAY)
        with pytest.raises(OverrideRefused, match="absence") as absent:
            overrides.add(s, POLICY, "D", date(2027, 3, 1), "x", today=TODAY)
        assert absent.value.partners == []  # nobody's leaving helps against an absence
        assert absent.value.alternatives and "2027-03-01" not in absent.value.alternatives
    assert ids


def test_refused_defer_names_later_weeks_and_who_makes_room(engine, settings):
    ids = _company(engine)
    with session_scope(engine) as s:
        with pytest.raises(OverrideRefused) as refused:
            overrides.defer(s, POLICY, ids["rot_A"], weeks=1, reason="project", today=TODAY)
        exc = refused.value
        assert "department Sales" in exc.problem
        assert exc.alternatives == ["2027-03-01", "2027-03-08", "2027-03-15"]  # later than the current start
        assert [(p["employee_id"], p["how"]) for p in exc.partners] == [("B", "room")]
        assert s.get(Rotation, ids["rot_A"]).start == date(2027, 2, 1)  # unchanged


def test_refused_move_names_the_swap_partner(engine, settings):
    ids = _company(engine)
    with session_scope(engine) as s:
        with pytest.raises(OverrideRefused) as refused:
            overrides.move(s, POLICY, ids["rot_A"], date(2027, 2, 15), "conference", today=TODAY)
        exc = refused.value
        assert [(p["employee_id"], p["how"], p["rotation_id"]) for p in exc.partners] == [("B", "swap", ids["rot_B"])]
        assert f"frontline plan swap {ids['rot_A']} {ids['rot_B']}" in str(exc)
        # the suggestion works: the swap the message names is allowed
        a, b = overrides.swap(s, POLICY, ids["rot_A"], ids["rot_B"], "conference")
        assert (a.start, b.start) == (date(2027, 2, 15), date(2027, 2, 1))


def test_exemption_is_a_hard_rule_of_overrides(engine, settings):
    ids = _company(engine)
    with session_scope(engine) as s:
        e = s.get(Employee, ids["C"])
        e.exempt_until, e.exempt_reason = date(2027, 2, 28), "parental leave"
        s.add(e)
        s.flush()
        with pytest.raises(OverrideRefused, match="exempt until 2027-02-28") as refused:
            overrides.add(s, POLICY, "C", date(2027, 1, 11), "x", today=TODAY)
        assert refused.value.alternatives[0] >= "2027-03-01"


def test_cli_add_and_refused_defer(engine, settings, monkeypatch):
    from typer.testing import CliRunner

    from frontline.cli import app

    monkeypatch.setattr(clock, "today", lambda: TODAY)
    settings.policy_path.write_text(POLICY_TOML, encoding="utf-8")
    ids = _company(engine)
    runner = CliRunner()
    out = runner.invoke(app, ["plan", "add", "C", "2027-02-01", "--reason", "promised"])
    assert out.exit_code == 1
    assert "nearest weeks that fit: 2027-01-04, 2027-01-11, 2027-01-18" in out.output
    assert "A Person A" in out.output and "moves or is deferred first" in out.output
    out = runner.invoke(app, ["plan", "add", "C", "2027-01-18", "--reason", "promised"])
    assert out.exit_code == 0, out.output
    assert "2027-01-18..2027-01-31" in out.output and "locked" in out.output
    out = runner.invoke(app, ["plan", "defer", "A", "--weeks", "1", "--reason", "project"])
    assert out.exit_code == 1
    assert "nearest weeks that fit: 2027-03-01, 2027-03-08, 2027-03-15" in out.output
    out = runner.invoke(app, ["plan", "move", str(ids["rot_A"]), "2027-02-15", "--reason", "conference"])
    assert out.exit_code == 1 and f"frontline plan swap {ids['rot_A']} {ids['rot_B']}" in out.output
