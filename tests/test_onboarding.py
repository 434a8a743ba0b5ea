"""Event-driven onboarding: who counts as a new hire to onboard, and when events are (not) emitted."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from frontline.people.events import emit_new_hires, employee_id_from_resource, onboarding_candidates, resource_id


def _people(engine, today: date):
    from models import Department, Employee, session_scope

    with session_scope(engine) as s:
        support = Department(name="Support", head_name="S", head_email="s@example.com")
        eng = Department(name="Engineering", head_name="E", head_email="e@example.com")
        s.add_all([support, eng])
        s.flush()

        def emp(eid, dept, hired, **kw):
            s.add(
                Employee(
                    employee_id=eid,
                    name=eid,
                    email=f"{eid}@example.com",
                    department_id=dept.id,
                    hire_date=hired,
                    timezone="Europe/Berlin",
                    country="DE",
                    **kw,
                )
            )

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
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    # outside a flow run and without an API there is no server to react: nothing is emitted (and no DB is read,
    # so the unconfigured database URL is never touched). restore_defaults also undoes a session test harness.
    monkeypatch.setenv("FRONTLINE_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/nothing")
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        assert emit_new_hires(["E1", "E2"]) == 0


def test_resource_ids_round_trip():
    assert resource_id("E-1.2") == "frontline.employee.E-1.2"
    assert employee_id_from_resource("frontline.employee.E-1.2") == "E-1.2"
    assert employee_id_from_resource("E7") == "E7"


def _policy(settings, **overrides):
    from pathlib import Path

    from frontline.core.policy import load_policy

    example = Path(__file__).resolve().parent.parent / "frontline.example.toml"
    text = example.read_text()
    for key, value in overrides.items():
        import re

        text = re.sub(rf"^{key} = .*$", f"{key} = {value}", text, flags=re.M)
    settings.policy_path.write_text(text)
    return load_policy()


def test_plan_new_hire_adds_one_rotation_and_moves_nobody(settings, engine):
    from sqlmodel import select

    from frontline.rotations.onboarding import plan_new_hire
    from models import AuditEvent, Employee, Rotation, session_scope

    today = date(2026, 11, 24)  # a Tuesday; the horizon starts Monday 2026-11-30
    # one seat per week: the new hire must go around the existing drafts, which must not move
    policy = _policy(settings, seats_per_week=1)
    _people(engine, today)
    with session_scope(engine) as s:
        old = s.exec(select(Employee).where(Employee.employee_id == "OLD")).one()
        taken = [date(2026, 12, 28)]
        for start in taken:
            s.add(
                Rotation(
                    employee_id=old.id,
                    start=start,
                    end=start + timedelta(weeks=4, days=-1),
                    kind="cycle",
                    status="draft",
                    due=start,
                )
            )
    with session_scope(engine) as s:
        out = plan_new_hire(s, policy, "NEW", today=today)
    assert out["status"] == "planned", out
    start = date.fromisoformat(out["start"])
    assert start.weekday() == 0 and start >= today
    # the blackout 2026-12-21..2027-01-03 blocks every start up to 2026-12-28 (4-week rotations), and OLD's
    # draft holds the single seat 2026-12-28..2027-01-24: without it the answer would be 2027-01-04
    assert start == date(2027, 1, 25), start
    with session_scope(engine) as s:
        rows = s.exec(select(Rotation).order_by(Rotation.start)).all()
        assert (
            sorted(
                r.start
                for r in rows
                if r.employee_id != s.exec(select(Employee.id).where(Employee.employee_id == "NEW")).one()
            )
            == taken
        ), "nobody else moved"
        assert s.exec(select(AuditEvent).where(AuditEvent.action == "rotation.created")).all()
    with session_scope(engine) as s:
        again = plan_new_hire(s, policy, "NEW", today=today)
    assert again["status"] == "already_planned" and again["rotation_id"] == out["rotation_id"]
    with session_scope(engine) as s:
        assert plan_new_hire(s, policy, "SUPPORTER", today=today)["status"] == "not_planned"


@pytest.mark.prefect
def test_onboard_new_hire_flow_end_to_end(sqlite_settings, sqlite_engine, prefect_harness):
    """The real flow run (under the test Prefect server): plan + pair + invite + deliver for one person,
    idempotent on a second run, with meaningful run names."""
    from pathlib import Path

    from prefect.client.orchestration import get_client
    from sqlmodel import select

    from flows.onboarding import onboard_new_hire
    from models import AuditEvent, Department, Employee, MentorPairing, OutboundMessage, Rotation, session_scope

    example = Path(__file__).resolve().parent.parent / "frontline.example.toml"
    sqlite_settings.policy_path.write_text(example.read_text())
    today = date(2027, 3, 3)  # the flow runs "as of" this day, whatever the machine's calendar says
    with session_scope(sqlite_engine) as s:
        support = Department(name="Support", head_name="S", head_email="s@example.com")
        eng = Department(name="Engineering", head_name="E", head_email="e@example.com")
        s.add_all([support, eng])
        s.flush()
        common = dict(timezone="Europe/Berlin", country="DE", languages=["en"])
        s.add(
            Employee(
                employee_id="M1",
                name="Mia Mentor",
                email="mia@example.com",
                department_id=support.id,
                hire_date=date(2020, 1, 6),
                is_mentor=True,
                mentor_capacity=2,
                **common,
            )
        )
        s.add(
            Employee(
                employee_id="N1",
                name="Nora New",
                email="nora@example.com",
                department_id=eng.id,
                hire_date=today - timedelta(days=2),
                **common,
            )
        )

    state = onboard_new_hire("frontline.employee.N1", as_of=today, return_state=True)
    out = state.result()
    assert out["employee_id"] == "N1" and out["plan"]["status"] == "planned", out
    assert out["pairing"]["mentor"] == "M1" and out["invites"]["queued"] >= 1 and out["mail"]["sent"] >= 1
    with get_client(sync_client=True) as client:
        assert client.read_flow_run(state.state_details.flow_run_id).name == "onboard-N1"
    with session_scope(sqlite_engine) as s:
        rotation = s.exec(select(Rotation)).one()
        assert rotation.status == "invited" and rotation.kind == "new_hire"
        assert s.exec(select(MentorPairing).where(MentorPairing.rotation_id == rotation.id)).one().status == "active"
        mail = s.exec(select(OutboundMessage)).all()
        assert mail and {m.state for m in mail} == {"sent"}
    assert list(sqlite_settings.outbox_dir.glob("*.eml")), "delivered to the outbox folder"

    again = onboard_new_hire("N1", as_of=today)
    assert again["plan"]["status"] == "already_planned" and again["invites"]["queued"] == 0
    with session_scope(sqlite_engine) as s:
        assert len(s.exec(select(OutboundMessage)).all()) == len(mail), "a second run queues nothing"
        assert len(s.exec(select(AuditEvent).where(AuditEvent.action == "onboarding.run")).all()) == 2
