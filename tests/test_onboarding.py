"""Event-driven onboarding: who counts as a new hire to onboard, and when events are (not) emitted."""

from __future__ import annotations

from datetime import date, timedelta

from frontline.events import emit_new_hires, employee_id_from_resource, onboarding_candidates, resource_id


def _people(engine, today: date):
    from models import Department, Employee, session_scope

    with session_scope(engine) as s:
        support = Department(name="Support", head_name="S", head_email="s@example.com")
        eng = Department(name="Engineering", head_name="E", head_email="e@example.com")
        s.add_all([support, eng])
        s.flush()

        def emp(eid, dept, hired, **kw):
            s.add(Employee(employee_id=eid, name=eid, email=f"{eid}@example.com", department_id=dept.id,
                           hire_date=hired, timezone="Europe/Berlin", country="DE", **kw))

        emp("NEW", eng, today - timedelta(days=3))
        emp("FUTURE", eng, today + timedelta(days=20))
        emp("OLD", eng, today - timedelta(weeks=60))
        emp("ROTATED", eng, today - timedelta(days=3), last_rotation=today - timedelta(days=1))
        emp("SUPPORTER", support, today - timedelta(days=3))
        emp("GONE", eng, today - timedelta(days=3), active=False)


def test_onboarding_candidates_are_recent_non_support_hires(settings, engine, tmp_path):
    from pathlib import Path

    from models import session_scope

    example = Path(__file__).resolve().parent.parent / "frontline.example.toml"
    settings.policy_path.write_text(example.read_text())
    today = date(2026, 11, 24)
    _people(engine, today)
    ids = ["NEW", "FUTURE", "OLD", "ROTATED", "SUPPORTER", "GONE", "UNKNOWN"]
    with session_scope(engine) as s:
        assert onboarding_candidates(s, ids, today=today) == ["NEW", "FUTURE"]
        assert onboarding_candidates(s, [], today=today) == []


def test_no_event_without_a_prefect_api(monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    # outside a flow run and without an API there is no server to react: nothing is emitted (and no DB is read)
    assert emit_new_hires(["E1", "E2"]) == 0


def test_resource_ids_round_trip():
    assert resource_id("E-1.2") == "frontline.employee.E-1.2"
    assert employee_id_from_resource("frontline.employee.E-1.2") == "E-1.2"
    assert employee_id_from_resource("E7") == "E7"
