"""``frontline status``: last runs from the audit trail, stuck work, no secrets in the output;
secrets from the environment or Prefect Secret blocks."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from typer.testing import CliRunner

SMTP_PASSWORD = "s3cr3t-Smtp-Pa55word"
NOW = datetime(2031, 10, 22, 9, 30, tzinfo=UTC)  # a fixed instant, far from the machine's clock


def _populate(engine, now: datetime):
    from frontline.core.audit import record
    from models import (
        Department,
        Employee,
        Observation,
        OutboundMessage,
        PlanRun,
        session_scope,
    )

    with session_scope(engine) as s:
        dept = Department(name="Finance", head_name="Hé Ad", head_email="head@example.com")
        s.add(dept)
        s.flush()
        emp = Employee(
            employee_id="E1",
            name="Ann",
            email="ann@example.com",
            department_id=dept.id,
            hire_date=date(2024, 1, 1),
            timezone="Europe/Berlin",
            country="DE",
        )
        s.add(emp)
        s.flush()
        common = dict(message_id="<x@example.com>", mime=b"Subject: x\r\n\r\nx")
        s.add(
            OutboundMessage(
                idempotency_key="k-failed",
                kind="invite",
                recipient="a@example.com",
                state="failed",
                attempts=8,
                last_error="550 mailbox unavailable",
                **common,
            )
        )
        s.add(
            OutboundMessage(
                idempotency_key="k-sending",
                kind="digest",
                recipient="b@example.com",
                state="sending",
                attempts=1,
                next_attempt_at=now - timedelta(minutes=5),
                **common,
            )
        )
        s.add(
            OutboundMessage(
                idempotency_key="k-backlog",
                kind="reminder",
                recipient="c@example.com",
                next_attempt_at=now - timedelta(hours=2),
                **common,
            )
        )
        s.add(
            OutboundMessage(
                idempotency_key="k-fine", kind="reminder", recipient="d@example.com", next_attempt_at=now, **common
            )
        )
        s.add(
            OutboundMessage(
                idempotency_key="k-sent", kind="reminder", recipient="e@example.com", state="sent", **common
            )
        )
        base = dict(
            rotator_id=emp.id, text="t", impact=5, product_area="billing", category="bug", target_department_id=dept.id
        )
        s.add(Observation(urgent=True, created_at=now - timedelta(hours=30), **base))  # overdue
        s.add(Observation(urgent=True, created_at=now - timedelta(hours=1), **base))  # within SLA
        s.add(Observation(urgent=True, created_at=now - timedelta(hours=30), ack_state="acknowledged", **base))
        s.add(Observation(urgent=False, created_at=now - timedelta(hours=90), **base))
        s.add(
            PlanRun(
                horizon_start=date(2026, 1, 5),
                horizon_weeks=52,
                planned=10,
                unplaced=[{"employee_id": "E9", "reason": "no seat in window"}],
            )
        )
        s.add(PlanRun(horizon_start=date(2026, 1, 5), horizon_weeks=52, dry_run=True, unplaced=[]))
        record(s, actor="flow:deliver-mail", action="mail.deliver", sent=3, failed=1).at = now - timedelta(hours=5)
        record(s, actor="flow:deliver-mail", action="mail.deliver", sent=7, failed=0).at = now - timedelta(hours=3)
        record(s, actor="hr@example.com", action="rotation.move").at = now - timedelta(hours=1)


def test_status_report_as_of_an_explicit_instant(settings, engine):
    """The service: everything is judged against the ``now`` it is given (not the machine's clock)."""
    from frontline.operations.status import collect_status
    from models import session_scope

    _populate(engine, NOW)
    with session_scope(engine) as s:
        report = collect_status(s, now=NOW, with_prefect=False)
    assert report["now"] == "2031-10-22 09:30:00Z" and report["ok"] is False and "prefect" not in report
    jobs = {row["job"]: row for row in report["jobs"]}
    assert jobs["deliver-mail"]["ago"] == "3h ago" and "sent=7" in jobs["deliver-mail"]["summary"]
    assert jobs["send-invites"]["ago"] == "never", "every flow is a job, run or not"
    stuck = report["stuck"]
    assert [m["recipient"] for m in stuck["mail_stuck_sending"]] == ["b@example.com"]
    assert [m["recipient"] for m in stuck["mail_pending_backlog"]] == ["c@example.com"]
    assert [o["created"] for o in stuck["urgent_unacknowledged"]] == ["2031-10-21 03:30:00Z"]
    with session_scope(engine) as s:  # a day earlier nothing was overdue or backlogged yet
        earlier = collect_status(s, now=NOW - timedelta(days=1), with_prefect=False)["stuck"]
    assert earlier["urgent_unacknowledged"] == [] and earlier["mail_pending_backlog"] == []
    assert earlier["mail_stuck_sending"] == []


def test_status_reports_last_runs_and_stuck_work_without_secrets(settings, engine, monkeypatch):
    from frontline.cli import app
    from frontline.core import clock
    from frontline.core.settings import get_settings

    monkeypatch.setenv("FRONTLINE_SMTP_URL", f"smtp://bot:{SMTP_PASSWORD}@127.0.0.1:2525")
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setattr(clock, "utcnow", lambda: NOW)  # the command asks the organisation clock for "now"
    get_settings.cache_clear()
    _populate(engine, NOW)
    runner = CliRunner()

    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(restore_defaults={PREFECT_API_URL}):  # no API, even under a session harness
        result = runner.invoke(app, ["status", "--json", "--check"])
    assert result.exit_code == 1, result.output  # stuck work -> non-zero with --check
    report = json.loads(result.output)
    assert report["now"] == "2031-10-22 09:30:00Z"
    jobs = {row["job"]: row for row in report["jobs"]}
    assert "sent=7" in jobs["deliver-mail"]["summary"], "the newest audit event of the flow is shown"
    assert "hr@example.com" not in jobs, "only flow actors are jobs"
    stuck = report["stuck"]
    assert [m["recipient"] for m in stuck["mail_failed"]] == ["a@example.com"]
    assert stuck["mail_failed"][0]["error"] == "550 mailbox unavailable"
    assert [m["recipient"] for m in stuck["mail_stuck_sending"]] == ["b@example.com"]
    assert [m["recipient"] for m in stuck["mail_pending_backlog"]] == ["c@example.com"]
    assert len(stuck["urgent_unacknowledged"]) == 1
    assert stuck["unplaced_in_last_plan"] == [{"employee_id": "E9", "reason": "no seat in window"}]
    assert "note" in report["prefect"] and report["ok"] is False

    text = runner.invoke(app, ["status"])
    assert text.exit_code == 0, text.output
    assert "deliver-mail" in text.output and "550 mailbox unavailable" in text.output
    assert "attention needed" in text.output
    for output in (result.output, text.output):
        assert SMTP_PASSWORD not in output


def test_status_all_clear_on_an_empty_database(settings):
    settings.policy_path.write_text('support_department = "Support"\n')  # a usable policy: nothing needs a human
    from frontline.cli import app

    result = CliRunner().invoke(app, ["status", "--no-prefect", "--check"])
    assert result.exit_code == 0, result.output
    assert "all clear" in result.output and "never" in result.output


def test_smtp_password_block_fills_the_url_and_is_never_shown(sqlite_settings, prefect_harness, monkeypatch):
    """The SMTP password lives in a Prefect Secret block; the URL in the environment has none."""
    from prefect.blocks.system import Secret

    from frontline.core.settings import Settings

    Secret(value="p@ss/w:rd " + SMTP_PASSWORD).save("frontline-test-smtp-password", overwrite=True)
    Secret(value="key-from-block").save("frontline-test-secret-key", overwrite=True)
    settings = Settings(
        smtp_url="smtp://bot@127.0.0.1:2525?tls=none",
        smtp_password_block="frontline-test-smtp-password",
        secret_key=None,
        secret_key_block="frontline-test-secret-key",
    )
    url = settings.smtp_url_value()
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(url)
    assert (parts.username, unquote(parts.password), parts.hostname, parts.port, parts.query) == (
        "bot",
        "p@ss/w:rd " + SMTP_PASSWORD,
        "127.0.0.1",
        2525,
        "tls=none",
    )
    assert settings.signing_key() == "key-from-block"
    assert SMTP_PASSWORD not in repr(settings) and SMTP_PASSWORD not in str(settings.model_dump())

    missing = Settings(smtp_url="smtp://bot@127.0.0.1:2525", smtp_password_block="no-such-block")
    with pytest.raises(
        RuntimeError, match="FRONTLINE_SMTP_PASSWORD_BLOCK: cannot read the Prefect Secret block 'no-such-block'"
    ):
        missing.smtp_url_value()
