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


def _cycle_drafts(engine, today: date, starts: list[date]) -> None:
    """Cycle colleagues in Engineering (never rotated, hired long ago: due now), each with a draft at ``starts``."""
    from models import Department, Employee, Rotation, session_scope

    with session_scope(engine) as s:
        eng = s.exec(__import__("sqlmodel").select(Department).where(Department.name == "Engineering")).one()
        for i, start in enumerate(starts):
            e = Employee(
                employee_id=f"C{i}",
                name=f"C{i}",
                email=f"c{i}@example.com",
                department_id=eng.id,
                hire_date=today - timedelta(weeks=100),
                timezone="Europe/Berlin",
                country="DE",
            )
            s.add(e)
            s.flush()
            s.add(
                Rotation(
                    employee_id=e.id,
                    start=start,
                    end=start + timedelta(weeks=4, days=-1),
                    kind="cycle",
                    status="draft",
                    due=today,
                )
            )


def test_onboarding_places_like_the_full_planner_moving_drafts(settings, engine):
    """One seat a week and three cycle drafts covering the new hire's whole 8-week window: an add-only plan
    would put the hire 12 weeks out; onboarding runs the full planner, which moves drafts and places the hire
    inside the window, exactly where the nightly plan would."""
    from sqlmodel import select

    from frontline.rotations.onboarding import pending_new_hires, plan_new_hires
    from frontline.rotations.service import plan_rotations
    from models import AuditEvent, Employee, Rotation, session_scope

    today = date(2027, 3, 3)  # a Wednesday; the horizon starts Monday 2027-03-08 (no blackout near)
    policy = _policy(settings, seats_per_week=1, max_department_away_fraction=1.0)
    _people(engine, today)
    horizon = date(2027, 3, 8)
    _cycle_drafts(engine, today, [horizon, horizon + timedelta(weeks=4), horizon + timedelta(weeks=8)])
    with session_scope(engine) as s:
        assert pending_new_hires(s, policy, today=today) == ["FUTURE", "NEW"]
        out = plan_new_hires(s, policy, ["NEW"], today=today)
    hire = out["hires"]["NEW"]
    assert hire["status"] == "planned", out
    start = date.fromisoformat(hire["start"])
    assert start.weekday() == 0 and start >= today
    assert hire["weeks_after_hire"] <= policy.new_hire_within_weeks, hire
    with session_scope(engine) as s:
        assert s.exec(select(AuditEvent).where(AuditEvent.action == "rotation.moved")).all(), "drafts moved"
        before = {r.id: r.start for r in s.exec(select(Rotation)).all()}
    with session_scope(engine) as s:  # the nightly plan over the same data changes nothing: same optimum
        again = plan_rotations(s, policy, today=today)
        assert (again.moved, again.created, again.removed) == (0, 0, 0)
        assert {r.id: r.start for r in s.exec(select(Rotation)).all()} == before
        new = s.exec(select(Employee).where(Employee.employee_id == "NEW")).one()
        assert len(s.exec(select(Rotation).where(Rotation.employee_id == new.id)).all()) == 1
    with session_scope(engine) as s:  # placed, but no mentor yet: still pending (pairing owes them one)
        assert "NEW" in pending_new_hires(s, policy, today=today)
        assert plan_new_hires(s, policy, ["SUPPORTER"], today=today)["hires"]["SUPPORTER"]["status"] == "not_planned"


def test_pending_new_hires_until_paired_and_announced(settings, engine):
    """Pending until placed, paired and (inside the announce window) invited; a far start needs no invite yet."""
    from sqlmodel import select

    from frontline.rotations.onboarding import pending_new_hires
    from models import Employee, MentorPairing, Rotation, session_scope

    today = date(2027, 3, 3)
    policy = _policy(settings)
    _people(engine, today)
    with session_scope(engine) as s:
        new = s.exec(select(Employee).where(Employee.employee_id == "NEW")).one()
        mentor = s.exec(select(Employee).where(Employee.employee_id == "SUPPORTER")).one()
        rotation = Rotation(
            employee_id=new.id, start=date(2027, 3, 8), end=date(2027, 4, 4), kind="new_hire", status="draft", due=today
        )
        s.add(rotation)
        s.flush()
        rotation_id = rotation.id
    with session_scope(engine) as s:
        assert pending_new_hires(s, policy, today=today) == ["FUTURE", "NEW"]
        s.add(MentorPairing(rotation_id=rotation_id, mentor_id=mentor.id, status="active"))
    with session_scope(engine) as s:
        assert pending_new_hires(s, policy, today=today) == ["FUTURE", "NEW"], "paired, not announced"
        assert pending_new_hires(s, policy, today=today, announce_weeks=0) == ["FUTURE"], "outside the window"
        r = s.get(Rotation, rotation_id)
        r.status = "invited"
        s.add(r)
    with session_scope(engine) as s:
        assert pending_new_hires(s, policy, today=today) == ["FUTURE"]
        assert pending_new_hires(s, policy, today=today + timedelta(weeks=9)) == ["FUTURE"], "NEW: hired too long ago"
    # onboarded, but the run stopped before its record: the next run records NEW (once), never FUTURE
    from frontline.rotations.onboarding import record_onboarded, unrecorded_onboarded

    with session_scope(engine) as s:
        late = unrecorded_onboarded(s, policy, today=today)
        assert list(late) == ["NEW"] and late["NEW"]["mentor"] == "SUPPORTER" and late["NEW"]["invited"] is True
        record_onboarded(s, late, "flow:onboard-new-hire")
    with session_scope(engine) as s:
        assert unrecorded_onboarded(s, policy, today=today) == {}


def _mentor_and_hire(settings, engine, today: date, hire: str = "N1") -> None:
    """The example policy, Mia (a support mentor) and one engineer hired two days before ``today``."""
    from pathlib import Path

    from models import Department, Employee, session_scope

    example = Path(__file__).resolve().parent.parent / "frontline.example.toml"
    settings.policy_path.write_text(example.read_text())
    with session_scope(engine) as s:
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
                employee_id=hire,
                name="Nora New",
                email="nora@example.com",
                department_id=eng.id,
                hire_date=today - timedelta(days=2),
                **common,
            )
        )


@pytest.mark.prefect
def test_onboard_new_hire_flow_end_to_end(sqlite_settings, sqlite_engine, prefect_harness):
    """The real flow run (under the test Prefect server): plan + pair + invite + deliver for one person,
    idempotent on a second run, with meaningful run names."""
    from prefect.client.orchestration import get_client
    from sqlmodel import select

    from flows.onboarding import onboard_new_hire
    from models import AuditEvent, MentorPairing, OutboundMessage, Rotation, session_scope

    today = date(2027, 3, 3)  # the flow runs "as of" this day, whatever the machine's calendar says
    _mentor_and_hire(sqlite_settings, sqlite_engine, today)
    state = onboard_new_hire("frontline.employee.N1", as_of=today, return_state=True)
    out = state.result()
    assert out["employee_id"] == "N1" and out["hires"]["N1"]["status"] == "planned", out
    hire = out["hires"]["N1"]
    assert hire["mentor"] == "M1" and hire["invited"] and hire["weeks_after_hire"] <= 8, hire
    assert len(out["rounds"]) == 1 and out["rounds"][0]["mail_sent"] >= 1 and out["coalesced_runs"] == 0
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
    assert again["hires"] == {} and again["rounds"] == [], "nothing pending: a second run does nothing"
    with session_scope(sqlite_engine) as s:
        assert len(s.exec(select(OutboundMessage)).all()) == len(mail), "a second run queues nothing"
        assert len(s.exec(select(AuditEvent).where(AuditEvent.action == "onboarding.run")).all()) == 2
        per_hire = s.exec(select(AuditEvent).where(AuditEvent.action == "onboarding.hire")).all()
        assert [(e.subject_id, e.details["mentor"], e.details["invited"]) for e in per_hire] == [("N1", "M1", True)]


@pytest.mark.prefect
def test_a_stop_between_two_tasks_ends_the_run_crashed_and_the_next_run_finishes_it(
    sqlite_settings, sqlite_engine, prefect_harness, monkeypatch
):
    """The worker's SIGTERM reaches a flow run as Prefect's ``TerminationSignal``. Landing while Prefect
    creates the next task run (here: the pairing's, right after the plan), it breaks Prefect's own crash
    handling (``ValueError("Task run is not set")``). The run must still end Crashed, as any stop does
    (``prefect flow-run retry`` picks it up; a Failed run would say the work is broken), and the next run
    finishes the onboarding."""
    import signal

    import prefect.task_engine
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName
    from prefect.exceptions import TerminationSignal
    from sqlmodel import select

    from flows.onboarding import onboard_new_hire
    from models import MentorPairing, Rotation, session_scope

    today = date(2027, 3, 3)
    _mentor_and_hire(sqlite_settings, sqlite_engine, today, hire="S1")
    create_task_run = prefect.task_engine._create_task_run_locally
    created: list[str] = []

    def stopped_while_creating(*args, **kwargs):
        created.append(kwargs["task"].name)
        if kwargs["task"].name == "onboard-pair" and created.count("onboard-pair") == 1:
            raise TerminationSignal(signal.SIGTERM)
        return create_task_run(*args, **kwargs)

    monkeypatch.setattr(prefect.task_engine, "_create_task_run_locally", stopped_while_creating)
    # After a stop Prefect passes the signal on to the handler it replaced (in a worker's flow-run process,
    # the default: exit). Here that would end pytest, so the replaced handler ignores it.
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        with pytest.raises(TerminationSignal):
            onboard_new_hire("S1", as_of=today)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert created == ["onboard-pending", "onboard-plan", "onboard-pair"], created
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=["onboard-S1"])))
    assert len(runs) == 1 and runs[0].state is not None
    assert runs[0].state.type.value == "CRASHED", f"{runs[0].state.name}: {runs[0].state.message}"
    with session_scope(sqlite_engine) as s:
        rotation = s.exec(select(Rotation)).one()
        assert rotation.status == "draft", "planned before the stop, not yet paired or invited"
        assert s.exec(select(MentorPairing)).all() == []

    out = onboard_new_hire("S1", as_of=today)
    assert out["hires"]["S1"]["mentor"] == "M1" and out["hires"]["S1"]["invited"], out
