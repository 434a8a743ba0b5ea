"""The HR console end to end in headless Chromium (Debian's /usr/bin/chromium through Playwright):
uvicorn on loopback serves the real app against a SQLite database seeded with a 600-person synthetic
company (roster import, then the planner). Screenshots of the plan view and the dashboard are saved to
test-artifacts/."""

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

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
HR = "hr-admin@example.com"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _seed(tmp: Path) -> dict:
    """Roster import of a generated 600-person company, the planner, and invites for the first weeks."""
    from frontline.demo.synth import generate_company, write_csvs
    from frontline.people.roster import apply_roster, parse_roster
    from frontline.web.auth import add_hr
    from models import Department, Employee, Observation, Rotation, get_engine, init_db

    engine = get_engine()
    init_db(engine)
    files = write_csvs(generate_company(600), tmp / "roster")
    parsed = parse_roster(files["departments"], files["employees"], files.get("absences"))
    with Session(engine) as s:
        apply_roster(s, parsed, actor="test")
        add_hr(s, HR, actor="test")
        s.commit()
    from frontline.core.policy import load_policy

    pol = load_policy()
    monday = date.today() - timedelta(days=date.today().weekday())
    from frontline.rotations import service as planning

    with Session(engine) as s:
        # A company in steady state: most long-serving people rotated at some point in the last year,
        # so the plan has both a backlog and room to move things around.
        for i, e in enumerate(
            s.exec(select(Employee).where(Employee.last_rotation.is_(None)).order_by(Employee.id)).all()
        ):
            if e.hire_date < monday - timedelta(days=400) and i % 5:
                e.last_rotation = monday - timedelta(days=30 + (i * 7) % 330)
                s.add(e)
        s.commit()
        result = planning.plan_rotations(s, pol, monday, 26, dry_run=False, actor="test")
        s.commit()
        assert result.planned > 100
    from frontline.calendar.invites import process_invites

    with Session(engine) as s:
        soon = s.exec(
            select(Rotation.id).where(
                Rotation.status != "cancelled", Rotation.start <= monday + timedelta(weeks=6), Rotation.end >= monday
            )
        ).all()
        process_invites(s, list(soon), as_of=date.today(), announce_weeks=8)
        s.commit()
    with Session(engine) as s:
        departments = s.exec(
            select(Department).where(Department.name != pol.support_department).order_by(Department.name)
        ).all()
        a, b = departments[0], departments[1]
        rotator = s.exec(select(Employee).where(Employee.department_id == a.id)).first()
        s.add(
            Observation(
                rotator_id=rotator.id,
                text=f"Only {b.name} may read this",
                impact=3,
                product_area="billing",
                category="bug",
                target_department_id=b.id,
            )
        )
        s.commit()
        employees = s.exec(select(Employee).where(Employee.active.is_(True))).all()
        move = _movable_invited_rotation(s, pol, monday)
        return {"head_a": a.head_email, "dept_a": a.id, "dept_b": b.id, "employees": len(employees), **move}


def _movable_invited_rotation(s: Session, pol, monday: date) -> dict:
    """An announced rotation and a Monday inside the invite window that the planner's hard rules allow."""
    from frontline.rotations.service import PlanningError, validate_start
    from models import Rotation

    invited = s.exec(
        select(Rotation)
        .where(Rotation.status == "invited", Rotation.start > monday)
        .order_by(Rotation.start, Rotation.id)
    ).all()
    for rot in invited:
        for weeks in range(1, 9):  # the 8-week invite window
            candidate = monday + timedelta(weeks=weeks)
            if candidate == rot.start:
                continue
            try:
                validate_start(s, pol, rot, candidate)
            except PlanningError:
                continue
            return {"move_rotation": rot.id, "move_to": candidate, "move_sequence": rot.sequence}
    raise AssertionError(f"none of {len(invited)} invited rotations can move inside the invite window")


@pytest.fixture(scope="module")
def console_server(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip("Debian Chromium (/usr/bin/chromium) is not installed; `make chromium` installs it")
    from frontline.core.settings import get_settings
    from models.db import _engine_for

    tmp = tmp_path_factory.mktemp("console")
    port = _free_port()
    env = {
        "FRONTLINE_DATABASE_URL": f"sqlite:///{tmp / 'console.db'}",
        "FRONTLINE_POLICY_PATH": str(tmp / "frontline.toml"),
        "FRONTLINE_OUTBOX_DIR": str(tmp / "outbox"),
        "FRONTLINE_SECRET_KEY": "browser-test-secret",
        "FRONTLINE_BASE_URL": f"http://127.0.0.1:{port}",
    }
    # The example policy, with room to move a rotation whatever today's date (its year-end blackout
    # stacks the backlog into January, which at 10% can leave no department a free week to move to).
    policy_text = (ROOT / "frontline.example.toml").read_text(encoding="utf-8")
    policy_text = re.sub(
        r"(?m)^max_department_away_fraction = [0-9.]+", "max_department_away_fraction = 0.25", policy_text
    )
    policy_text = re.sub(r"(?m)^seats_per_week = \d+", "seats_per_week = 60", policy_text)
    Path(env["FRONTLINE_POLICY_PATH"]).write_text(policy_text, encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        mp.delenv("FRONTLINE_SMTP_URL", raising=False)
        get_settings.cache_clear()
        info = _seed(tmp)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "frontline.web.app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            env={**os.environ, **env},
            cwd=ROOT,
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
            from models import get_engine

            yield {"url": f"http://127.0.0.1:{port}", "engine": get_engine(), **info}
        finally:
            proc.terminate()
            proc.wait(timeout=20)
            _engine_for.cache_clear()
            get_settings.cache_clear()


@pytest.fixture(scope="module")
def browser(console_server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        yield b
        b.close()


def _latest_signin_link(engine, to: str) -> str:
    from models import OutboundMessage

    with Session(engine) as s:
        row = s.exec(
            select(OutboundMessage)
            .where(OutboundMessage.kind == "signin", OutboundMessage.recipient == to)
            .order_by(OutboundMessage.id.desc())
        ).first()
    assert row is not None, f"no sign-in link queued for {to}"
    part = next(p for p in email.message_from_bytes(row.mime).walk() if p.get_content_type() == "text/plain")
    return re.search(r"(http://\S+/console/signin/\S+)", part.get_payload(decode=True).decode()).group(1)


def _sign_in(browser, server, who: str):
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    page.goto(server["url"] + "/console")  # not signed in: redirected to the sign-in page
    assert "/console/signin" in page.url
    page.fill("#email", who)
    page.click("button[type=submit]")
    page.wait_for_selector("#signin-sent")
    page.goto(_latest_signin_link(server["engine"], who))
    page.click("#signin-confirm")
    page.wait_for_load_state()
    return context, page


def _server_ms(response) -> float:
    timing = response.headers.get("server-timing", "")
    return float(re.search(r"total;dur=([0-9.]+)", timing).group(1))


def test_hr_signs_in_views_plan_and_dashboard(browser, console_server, artifacts_dir):
    context, page = _sign_in(browser, console_server, HR)
    try:
        assert page.url.endswith("/console")
        assert page.locator("#kpi-rotated").is_visible()
        page.screenshot(path=str(artifacts_dir / "console-dashboard.png"), full_page=True)

        timings = []
        for _ in range(3):
            response = page.goto(console_server["url"] + "/console/plan?weeks=16")
            assert response.status == 200
            timings.append(_server_ms(response))
        rows = page.locator("#plan .days").count()
        print(
            f"\nplan view, {console_server['employees']} employees ({rows} rows shown), 16 weeks: "
            f"server time {', '.join(f'{t:.0f}' for t in timings)} ms (first, then warm)"
        )
        assert rows >= 400  # everyone outside support is on the plan
        assert page.locator("#plan a.rot").count() >= 40  # 20 seats, 4-week rotations: about 5 starts a week
        assert page.locator("#seat-load .gauge").count() == 16
        page.screenshot(path=str(artifacts_dir / "console-plan.png"))

        # filters are plain GET parameters
        page.select_option("select[name=status]", "invited")
        page.click("form.filters button[type=submit]")
        assert "status=invited" in page.url
        assert page.locator("#plan a.rot.st-invited").count() > 0
        assert page.locator("#plan a.rot.st-draft").count() <= page.locator("#plan .days").count()
    finally:
        context.close()


def test_move_a_rotation_with_a_reason_queues_the_invite_update(browser, console_server, artifacts_dir):
    from models import AuditEvent, OutboundMessage, Rotation

    rid, target = console_server["move_rotation"], console_server["move_to"]
    context, page = _sign_in(browser, console_server, HR)
    try:
        page.goto(console_server["url"] + "/console/plan?weeks=12")
        page.click(f'#plan a.rot[href="/console/plan/rotations/{rid}"]')  # the bar on the timeline
        assert page.url.endswith(f"/console/plan/rotations/{rid}")
        page.fill("#move-start", target.isoformat())
        page.fill("#move-reason", "Customer workshop that week")
        page.click("#move-submit")
        page.wait_for_selector("#confirm-summary")
        assert target.isoformat() in page.locator("#confirm-summary").inner_text()
        page.click("#confirm-submit")
        page.wait_for_selector(".flash")
        flash = page.locator(".flash").inner_text()
        assert "Calendar updates queued: 1" in flash, flash
        assert target.isoformat() in page.locator("#rotation-dates").inner_text()
        assert "Customer workshop that week" in page.locator("#history").inner_text()
        page.screenshot(path=str(artifacts_dir / "console-rotation-moved.png"), full_page=True)
        with Session(console_server["engine"]) as s:
            rot = s.get(Rotation, rid)
            assert rot.start == target and rot.locked
            event = s.exec(
                select(AuditEvent).where(AuditEvent.action == "rotation.move", AuditEvent.subject_id == str(rid))
            ).one()
            assert event.actor == HR and event.reason == "Customer workshop that week"
            update = s.exec(
                select(OutboundMessage).where(
                    OutboundMessage.idempotency_key == f"invite:{rid}:{console_server['move_sequence'] + 1}"
                )
            ).one()
            assert update.state == "pending"
            part = next(
                p for p in email.message_from_bytes(update.mime).walk() if p.get_content_type() == "text/calendar"
            )
            ics = part.get_payload(decode=True).decode()
            assert "METHOD:REQUEST" in ics and f"SEQUENCE:{console_server['move_sequence'] + 1}" in ics
            assert f"DTSTART;VALUE=DATE:{target:%Y%m%d}" in ics
    finally:
        context.close()


def test_planner_dry_run_shows_the_changes_before_applying(browser, console_server):
    from models import PlanRun, Rotation

    with Session(console_server["engine"]) as s:
        before = sorted((r.id, r.start, r.status) for r in s.exec(select(Rotation)).all())
    context, page = _sign_in(browser, console_server, HR)
    try:
        page.goto(console_server["url"] + "/console/plan")
        page.click("text=Re-run planner (dry run)")
        page.fill("input[name=weeks]", "26")
        page.click("#dry-run")
        page.wait_for_selector("#change-count")
        changes = int(page.locator("#change-count").inner_text())
        assert (
            (page.locator("#plan-diff tbody tr").count() == min(changes, 500))
            if changes
            else page.locator("text=Nothing would change").is_visible()
        )
        assert page.locator("#apply-plan").is_visible()  # applying is a separate, confirmed step
        with Session(console_server["engine"]) as s:
            assert sorted((r.id, r.start, r.status) for r in s.exec(select(Rotation)).all()) == before
            assert s.exec(select(PlanRun).order_by(PlanRun.id.desc())).first().dry_run
    finally:
        context.close()


def test_head_cannot_open_another_departments_data(browser, console_server):
    context, page = _sign_in(browser, console_server, console_server["head_a"])
    try:
        own = page.goto(console_server["url"] + f"/console/observations?department={console_server['dept_a']}")
        assert own.status == 200
        other = page.goto(console_server["url"] + f"/console/observations?department={console_server['dept_b']}")
        assert other.status == 403
        assert "own department" in page.locator("#error-message").inner_text()
        plan = page.goto(console_server["url"] + f"/console/plan?department={console_server['dept_b']}")
        assert plan.status == 403
        assert page.goto(console_server["url"] + "/console/roster").status == 403
    finally:
        context.close()


def test_csrf_less_post_is_refused(browser, console_server):
    context, page = _sign_in(browser, console_server, HR)
    try:
        response = context.request.post(console_server["url"] + "/console/signout", form={})
        assert response.status == 403
        # a form built without the token, submitted by the browser itself
        page.goto(console_server["url"] + "/console/roster")
        page.evaluate("""() => { const f = document.createElement('form'); f.method = 'post';
            f.action = '/console/signout'; document.body.appendChild(f); f.submit(); }""")
        page.wait_for_selector("#error-message")
        assert "CSRF" in page.locator("#error-message").inner_text()
        assert page.goto(console_server["url"] + "/console").status == 200  # still signed in
    finally:
        context.close()


def test_bad_roster_upload_shows_row_errors(browser, console_server, tmp_path):
    departments = tmp_path / "departments.csv"
    employees = tmp_path / "employees.csv"
    departments.write_text("department,head_name,head_email,max_away_fraction\nSupport,Sue,sue@example.com,\n")
    employees.write_text(
        "employee_id,name,email,department,title,hire_date,timezone,country,languages,skills,mentor,mentor_capacity,last_rotation\n"
        "X1,Ann,ann@example.com,Support,Agent,2026-02-30,Europe/Berlin,DE,en,,no,0,\n"
        "X2,Bob,bob@example.com,Nowhere,Agent,2026-01-05,Mars/Olympus,DE,en,,no,0,\n"
    )
    context, page = _sign_in(browser, console_server, HR)
    try:
        page.goto(console_server["url"] + "/console/roster")
        page.set_input_files("#departments", str(departments))
        page.set_input_files("#employees", str(employees))
        page.click("#roster-submit")
        page.wait_for_selector("#roster-errors")
        errors = page.locator("#roster-errors").inner_text()
        assert "Nothing was imported" in errors
        assert "employees.csv:2: hire_date" in errors
        assert "employees.csv:3: timezone" in errors
        assert "employees.csv:3: department" in errors
        from models import Employee

        with Session(console_server["engine"]) as s:
            assert s.exec(select(Employee).where(Employee.employee_id == "X1")).first() is None
            assert len(s.exec(select(Employee).where(Employee.active.is_(True))).all()) == console_server["employees"]
    finally:
        context.close()
