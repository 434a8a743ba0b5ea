"""End to end on the command line, with real flow runs and a real SMTP server: the plan leaves someone
unplaced, HR adds a rotation for them (`plan add`, first refused with the weeks that would work), `invites
send --dry-run` shows the invite it would send to them and queues nothing, `invites send` and `mail send`
deliver it, and `reminders send` / `escalations run` preview and run the same way."""

from __future__ import annotations

from datetime import timedelta

import pytest
from icalendar import Calendar
from mailserver import SMTPServer
from sqlmodel import Session, func, select
from test_plan_overrides import POLICY_TOML, TODAY, _company, _emp
from typer.testing import CliRunner

from frontline.core import clock

pytestmark = pytest.mark.prefect


@pytest.fixture
def smtp():
    with SMTPServer() as server:
        yield server


def _outbox_count(engine) -> int:
    from models import OutboundMessage

    with Session(engine) as s:
        return s.exec(select(func.count()).select_from(OutboundMessage)).one()


def test_hr_adds_a_rotation_for_an_unplaced_person_and_the_invite_arrives(
    prefect_harness, sqlite_engine, sqlite_settings, smtp, monkeypatch
):
    from frontline.cli import app
    from frontline.core.settings import get_settings
    from models import Department, session_scope

    monkeypatch.setattr(clock, "today", lambda: TODAY)
    monkeypatch.setenv("FRONTLINE_SMTP_URL", smtp.url)
    get_settings.cache_clear()
    sqlite_settings.policy_path.write_text(POLICY_TOML, encoding="utf-8")
    _company(sqlite_engine)
    with session_scope(sqlite_engine) as s:
        _emp(s, "E", s.exec(select(Department).where(Department.name == "Sales")).one().id)
    runner = CliRunner()

    out = runner.invoke(app, ["plan", "--from", TODAY.isoformat(), "--weeks", "4"])
    assert out.exit_code == 0, out.output
    assert "unplaced: 1" in out.output
    who = next(k for k in ("C", "D", "E") if f"\n{k} " in out.output.split("unplaced: 1", 1)[1])

    out = runner.invoke(app, ["plan", "add", who, "2027-02-01", "--reason", "Promised at the offsite"])
    assert out.exit_code == 1 and "nearest weeks that fit:" in out.output
    week = out.output.split("nearest weeks that fit: ", 1)[1].split(",")[0].strip()
    out = runner.invoke(app, ["plan", "add", who, week, "--reason", "Promised at the offsite"])
    assert out.exit_code == 0, out.output

    email = f"{who.lower()}@example.com"
    before = _outbox_count(sqlite_engine)
    out = runner.invoke(app, ["invites", "send", "--as-of", TODAY.isoformat(), "--dry-run"])
    assert out.exit_code == 0, out.output
    assert "dry run: nothing queued" in out.output and "would send" in out.output
    assert any(email in line and "invite" in line for line in out.output.splitlines())
    assert _outbox_count(sqlite_engine) == before  # the dry run wrote nothing

    out = runner.invoke(app, ["invites", "send", "--as-of", TODAY.isoformat()])
    assert out.exit_code == 0, out.output
    assert "queued" in out.output and email in out.output
    out = runner.invoke(app, ["mail", "send"])
    assert out.exit_code == 0, out.output
    invites = [m for m in smtp.handler.messages if email in str(m["To"])]
    assert len(invites) == 1
    ics = next(p for p in invites[0].walk() if p.get_content_type() == "text/calendar").get_payload(decode=True)
    event = next(c for c in Calendar.from_ical(ics).walk() if c.name == "VEVENT")
    assert event.decoded("DTSTART").isoformat() == week  # the week HR chose

    start = clock.parse_day(week)
    day = (start - timedelta(days=7)).isoformat()
    before = _outbox_count(sqlite_engine)
    out = runner.invoke(app, ["reminders", "send", "--as-of", day, "--dry-run"])
    assert out.exit_code == 0, out.output
    assert any(email in line and "reminder" in line for line in out.output.splitlines())
    assert _outbox_count(sqlite_engine) == before
    out = runner.invoke(app, ["reminders", "send", "--as-of", day])
    assert out.exit_code == 0 and _outbox_count(sqlite_engine) > before

    out = runner.invoke(app, ["escalations", "run", "--dry-run"])
    assert out.exit_code == 0, out.output
    assert "would escalate 0 observation(s)" in out.output and "would send 0 message(s)" in out.output
