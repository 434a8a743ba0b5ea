"""``frontline demo`` end to end for a small company (real flow runs under the session Prefect harness)."""

from __future__ import annotations

import re
from datetime import date

import pytest
from sqlalchemy import func, select
from sqlmodel import Session
from typer.testing import CliRunner

from frontline.demo.runner import STEPS, demo_policy_text, run_demo, seats_for

DEMO_TODAY = date(2031, 10, 22)  # the demo's "today", far from the machine's clock


def test_demo_policy_is_the_example_with_company_values(tmp_path):
    from frontline.core.policy import load_policy

    path = tmp_path / "frontline.toml"
    path.write_text(demo_policy_text("Customer Care", seats_for(1000)), encoding="utf-8")
    policy = load_policy(path)
    assert policy.support_department == "Customer Care"
    assert policy.seats_per_week == seats_for(1000) == 100
    assert seats_for(10) == 2


@pytest.mark.prefect
def test_demo_runs_every_step_and_starts_fresh_each_time(prefect_harness, monkeypatch, tmp_path):
    from frontline.cli import app
    from frontline.core.policy import load_policy
    from frontline.core.settings import get_settings
    from models import AuditEvent, Employee, get_engine

    for var in ("FRONTLINE_DATABASE_URL", "FRONTLINE_OUTBOX_DIR", "FRONTLINE_POLICY_PATH"):
        monkeypatch.setenv(var, "restored-after-the-test")  # the demo sets these; monkeypatch restores them
    monkeypatch.setenv("FRONTLINE_SECRET_KEY", "test-secret-key-not-for-production")
    directory = tmp_path / "demo"
    lines: list[str] = []
    try:
        ctx = run_demo(directory, n_employees=40, seed=11, echo=lines.append, today=DEMO_TODAY)
        assert ctx.today == DEMO_TODAY
        assert get_settings().database_url == f"sqlite:///{directory.resolve() / 'frontline.db'}"
        assert load_policy().support_department == "Support"
        with Session(get_engine()) as s:
            assert s.exec(select(func.count()).select_from(Employee)).scalars().one() == 40
            events = s.exec(select(AuditEvent).where(AuditEvent.action == "roster.import")).scalars().all()
            assert [e.actor for e in events] == ["demo"]

        out = "\n".join(lines)
        assert lines[0].startswith("Frontline demo: 40 synthetic employees, seed 11, today 2031-10-22")
        assert "rotations planned from 2031-10-27" in out, "the plan starts the Monday after the demo's today"
        for number, (name, _step) in enumerate(STEPS, start=1):
            assert f"[{number}/{len(STEPS)}] {name}: " in out
        assert re.search(r"generate company: 40 employees in 8 departments across \d+ time zones, \d+ mentors", out)
        assert "import roster: departments 8 new / 0 updated; employees 40 new" in out
        for label in ("roster CSV files", "policy", "database"):
            assert f"  {label}: {ctx.outputs[label]}" in out
            assert ctx.outputs[label].exists()
        assert (directory / "roster" / "employees.csv").read_text(encoding="utf-8").count("\n") == 41
        # the web console step leaves an HR admin and a working team calendar feed
        feed = re.search(r"team calendar feed \S+(/calendar/\S+\.ics)", out).group(1)
        from fastapi.testclient import TestClient

        from frontline.access.principal import load_principal
        from frontline.web.app import create_app
        from frontline.web.calendar_feed import organisation_today

        with Session(get_engine()) as s:
            assert load_principal(s, "hr@example.com").is_hr
        web = create_app()
        web.dependency_overrides[organisation_today] = lambda: DEMO_TODAY
        response = TestClient(web).get(feed)
        assert response.status_code == 200 and "BEGIN:VCALENDAR" in response.text
        assert "Support rotation: " in response.text, "the team feed shows the demo's planned rotations"

        # Again through the command line: a fresh database, so everyone is new again (not "unchanged").
        (directory / "outbox").mkdir(exist_ok=True)
        (directory / "outbox" / "stale.eml").write_text("old")
        result = CliRunner().invoke(app, ["demo", "--employees", "40", "--seed", "11", "--dir", str(directory)])
        assert result.exit_code == 0, result.output
        assert "employees 40 new / 0 updated / 0 unchanged" in result.stdout
        assert not (directory / "outbox" / "stale.eml").exists()
    finally:
        get_settings.cache_clear()
