"""HR in headless Chromium: a refused defer names the weeks that would work and one of them is taken with a
click; a person the plan left unplaced gets a rotation from the plan page. uvicorn serves the real app on
loopback against a small SQLite company (tests/test_plan_overrides.py), with the organisation clock on
``TODAY``."""

from __future__ import annotations

import email
import os
import re
import socket
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select
from test_plan_overrides import POLICY, POLICY_TOML, TODAY, _company, _emp

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
HR = "hr-admin@example.com"
SERVER = """
import sys
from datetime import date

from frontline.core import clock

day = date.fromisoformat(sys.argv[1])
clock.today = lambda: day
import uvicorn

uvicorn.run("frontline.web.app:create_app", factory=True, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(chromium, sqlite_settings, sqlite_engine, monkeypatch):
    """The small company, a plan of the first 4 weeks (it leaves one Sales person unplaced), an HR account."""
    from frontline.access.accounts import add_hr
    from frontline.core.settings import get_settings
    from frontline.rotations.service import plan_rotations
    from models import Department, session_scope

    port = _free_port()
    monkeypatch.setenv("FRONTLINE_BASE_URL", f"http://127.0.0.1:{port}")
    get_settings.cache_clear()
    sqlite_settings.policy_path.write_text(POLICY_TOML, encoding="utf-8")
    ids = _company(sqlite_engine)
    with session_scope(sqlite_engine) as s:
        sales = s.exec(select(Department).where(Department.name == "Sales")).one()
        ids["E"] = _emp(s, "E", sales.id)
        result = plan_rotations(s, POLICY, TODAY, 4, actor="test", today=TODAY)
        add_hr(s, HR, actor="test")
    unplaced = [u["employee_id"] for u in result.unplaced]
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, TODAY.isoformat(), str(port)], env=dict(os.environ), cwd=ROOT
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert proc.poll() is None, "uvicorn exited"
                assert time.monotonic() < deadline, "uvicorn did not start"
                time.sleep(0.2)
        yield {"url": f"http://127.0.0.1:{port}", "engine": sqlite_engine, "ids": ids, "unplaced": unplaced}
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.fixture
def page(chromium, server):
    from playwright.sync_api import sync_playwright

    from models import OutboundMessage

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), args=["--no-sandbox", "--disable-gpu"])
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        pg = context.new_page()
        pg.goto(server["url"] + "/console")
        pg.fill("#email", HR)
        pg.click("button[type=submit]")
        pg.wait_for_selector("#signin-sent")
        deadline = time.monotonic() + 15
        while True:
            with Session(server["engine"]) as s:
                row = s.exec(select(OutboundMessage).where(OutboundMessage.kind == "signin")).first()
            if row is not None:
                break
            assert time.monotonic() < deadline, "no sign-in link queued"
            time.sleep(0.1)
        part = next(p for p in email.message_from_bytes(row.mime).walk() if p.get_content_type() == "text/plain")
        pg.goto(re.search(r"(http://\S+/console/signin/\S+)", part.get_payload(decode=True).decode()).group(1))
        pg.click("#signin-confirm")
        pg.wait_for_load_state()
        yield pg
        browser.close()


def _rotation_of(engine, employee_id: str):
    from models import Employee, Rotation

    with Session(engine) as s:
        return s.exec(
            select(Rotation)
            .join(Employee, Employee.id == Rotation.employee_id)
            .where(Employee.employee_id == employee_id, Rotation.status != "cancelled")
        ).all()


def test_a_refused_defer_names_alternatives_and_one_is_taken(page, server):
    from models import AuditEvent, Rotation

    rid = server["ids"]["rot_A"]
    page.goto(f"{server['url']}/console/plan/rotations/{rid}")
    page.fill("#defer-weeks", "1")
    page.fill("#defer-reason", "Quarter-end project")
    page.click("form[action$='/defer'] button[type=submit]")
    page.wait_for_selector("#action-error")
    assert "Defer is not possible" in page.inner_text("#action-error")
    assert "department Sales" in page.inner_text("#action-error")
    weeks = page.locator("#alternatives .alt-weeks button").evaluate_all("els => els.map(e => e.dataset.week)")
    assert weeks == ["2027-03-01", "2027-03-08", "2027-03-15"]
    partner = page.locator("#alternatives .partners [data-partner]")
    assert partner.count() == 1 and partner.first.get_attribute("data-partner") == "B"
    page.click("#alternatives button[data-week='2027-03-08']")  # the same defer, on a week that fits
    page.wait_for_selector("#confirm-summary")
    assert "2027-03-08" in page.inner_text("#confirm-summary")
    page.click("#confirm-submit")
    page.wait_for_selector("#rotation-dates")
    assert page.inner_text("#rotation-dates").startswith("2027-03-08")
    with Session(server["engine"]) as s:
        rot = s.get(Rotation, rid)
        assert (rot.start, rot.locked) == (date(2027, 3, 8), True)
        event = s.exec(select(AuditEvent).where(AuditEvent.action == "rotation.defer")).one()
        assert event.reason == "Quarter-end project"


def test_hr_adds_a_rotation_for_an_unplaced_person(page, server):
    assert len(server["unplaced"]) == 1  # three Sales people due, room for two in four weeks (cap 1)
    who = server["unplaced"][0]
    assert not _rotation_of(server["engine"], who)
    page.goto(server["url"] + "/console/plan")
    page.click(f"#unplaced a[href='/console/plan/people/{who}/add']")
    page.fill("#add-start", "2027-02-01")  # Sales already has A away then
    page.fill("#add-reason", "Promised at the team offsite")
    page.click("#add-submit")
    page.wait_for_selector("#action-error")
    assert "Adding a rotation is not possible" in page.inner_text("#action-error")
    first = page.locator("#alternatives .alt-weeks button").first
    week = first.get_attribute("data-week")
    assert date.fromisoformat(week) >= TODAY and date.fromisoformat(week).weekday() == 0
    partners = page.locator("#alternatives .partners [data-partner]").evaluate_all(
        "els => els.map(e => e.dataset.partner)"
    )
    assert partners == ["A"]
    first.click()
    page.wait_for_selector("#confirm-summary")
    page.click("#confirm-submit")
    page.wait_for_selector("#rotation-dates")
    assert page.inner_text("#rotation-dates").startswith(week)
    [rot] = _rotation_of(server["engine"], who)
    assert (rot.start, rot.end, rot.locked) == (
        date.fromisoformat(week),
        date.fromisoformat(week) + timedelta(13),
        True,
    )
