"""The HR console end to end in headless Chromium (Debian's /usr/bin/chromium through Playwright):
uvicorn on loopback serves the real app against a SQLite database seeded with a 600-person synthetic
company (roster import, then the planner). Screenshots of the plan view and the dashboard are saved to
test-artifacts/.

Everything happens on ``TODAY``, whatever the machine's calendar says: the company is generated and
planned as of that day and the server's organisation clock (:func:`frontline.core.clock.today`) is set to
it. ``FRONTLINE_TEST_TODAY=YYYY-MM-DD`` runs the tests on another day.
"""

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
from sqlmodel import Session, col, select

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
HR = "hr-admin@example.com"
TODAY = date.fromisoformat(os.environ.get("FRONTLINE_TEST_TODAY", "2027-03-03"))
MONDAY = TODAY - timedelta(days=TODAY.weekday())

# uvicorn with the organisation clock set to the test's day (argv: the day, the port)
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


def _seed(tmp: Path, today: date) -> dict:
    """Roster import of a 600-person company generated as of ``today``, the planner from that week, and
    invites for the first weeks."""
    from frontline.access.accounts import add_hr
    from frontline.demo.synth import generate_company, write_csvs
    from frontline.people.roster import apply_roster
    from frontline.people.roster_csv import parse_roster
    from frontline.rotations.service import plan_rotations
    from models import Department, Employee, Observation, Rotation, get_engine, init_db

    engine = get_engine()
    init_db(engine)
    files = write_csvs(generate_company(600, today=today), tmp / "roster")
    parsed = parse_roster(files["departments"], files["employees"], files.get("absences"))
    with Session(engine) as s:
        apply_roster(s, parsed, actor="test", today=today)
        add_hr(s, HR, actor="test")
        s.commit()
    from frontline.core.policy import load_policy

    pol = load_policy()
    monday = today - timedelta(days=today.weekday())

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
        result = plan_rotations(s, pol, monday, 26, dry_run=False, actor="test", today=today)
        s.commit()
        assert result.planned > 100
    from frontline.calendar.invites import process_invites

    with Session(engine) as s:
        soon = s.exec(
            select(Rotation.id).where(
                Rotation.status != "cancelled", Rotation.start <= monday + timedelta(weeks=6), Rotation.end >= monday
            )
        ).all()
        process_invites(s, list(soon), as_of=today, announce_weeks=8)
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
        return {
            "head_a": a.head_email,
            "dept_a": a.id,
            "dept_b": b.id,
            "employees": len(employees),
            "support": pol.support_department,
            **move,
        }


def _movable_invited_rotation(s: Session, pol, monday: date) -> dict:
    """An announced rotation and a Monday inside the invite window that the planner's hard rules allow."""
    from frontline.core.errors import PlanningError
    from frontline.rotations.overrides import validate_start
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
def console_server(chromium, tmp_path_factory):
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
        info = _seed(tmp, TODAY)
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, TODAY.isoformat(), str(port)], env={**os.environ, **env}, cwd=ROOT
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
def browser(chromium, console_server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=str(chromium), args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        yield b
        b.close()


def _signin_links(engine, to: str) -> list:
    from models import OutboundMessage

    with Session(engine) as s:
        return s.exec(
            select(OutboundMessage)
            .where(OutboundMessage.kind == "signin", OutboundMessage.recipient == to)
            .order_by(OutboundMessage.id)
        ).all()


def _new_signin_link(engine, to: str, seen: int) -> str:
    """The link queued for ``to`` after ``seen`` earlier ones: it is queued after the sign-in page has
    answered (and a random pause of up to 0.5 s), so wait for it a little."""
    deadline = time.monotonic() + 15
    while len(rows := _signin_links(engine, to)) <= seen:
        assert time.monotonic() < deadline, f"no new sign-in link queued for {to}"
        time.sleep(0.1)
    part = next(p for p in email.message_from_bytes(rows[-1].mime).walk() if p.get_content_type() == "text/plain")
    return re.search(r"(http://\S+/console/signin/\S+)", part.get_payload(decode=True).decode()).group(1)


def _sign_in(browser, server, who: str, **options):
    context = browser.new_context(viewport={"width": 1600, "height": 1000}, **options)
    page = context.new_page()
    page.goto(server["url"] + "/console")  # not signed in: redirected to the sign-in page
    assert "/console/signin" in page.url
    seen = len(_signin_links(server["engine"], who))
    page.fill("#email", who)
    page.click("button[type=submit]")
    page.wait_for_selector("#signin-sent")
    page.goto(_new_signin_link(server["engine"], who, seen))
    page.click("#signin-confirm")
    page.wait_for_load_state()
    return context, page


def _server_ms(response) -> float:
    timing = response.headers.get("server-timing", "")
    return float(re.search(r"total;dur=([0-9.]+)", timing).group(1))


def _plan_view(engine, support: str, weeks: int) -> tuple[set[int], list]:
    """What the plan view of ``weeks`` weeks from MONDAY draws for HR: the people it lists (active, outside
    the support department) and their live rotations overlapping those weeks."""
    from models import Department, Employee, Rotation

    end = MONDAY + timedelta(weeks=weeks, days=-1)
    with Session(engine) as s:
        people = set(
            s.exec(
                select(Employee.id)
                .join(Department, col(Department.id) == col(Employee.department_id))
                .where(col(Employee.active).is_(True), Department.name != support)
            ).all()
        )
        rotations = s.exec(
            select(Rotation).where(
                Rotation.status != "cancelled", col(Rotation.start) <= end, col(Rotation.end) >= MONDAY
            )
        ).all()
    return people, [r for r in rotations if r.employee_id in people]


def test_hr_signs_in_views_plan_and_dashboard(browser, console_server, artifacts_dir):
    people, rotations = _plan_view(console_server["engine"], console_server["support"], 16)
    invited = [r for r in rotations if r.status == "invited"]
    invited_people = {r.employee_id for r in invited}
    assert len(people) >= 400 and len(rotations) >= 40 and invited  # the seed: 600 people, invites for 6 weeks
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
        assert rows == len(people)  # everyone outside support is on the plan, once
        assert page.locator("#plan a.rot").count() == len(rotations)  # a bar per rotation in those weeks
        assert page.locator("#seat-load .gauge").count() == 16
        page.screenshot(path=str(artifacts_dir / "console-plan.png"))

        # filters are plain GET parameters: only the people with an invited rotation, with all their bars
        page.select_option("select[name=status]", "invited")
        page.click("form.filters button[type=submit]")
        assert "status=invited" in page.url
        assert page.locator("#plan .days").count() == len(invited_people)
        assert page.locator("#plan a.rot.st-invited").count() == len(invited)
        drafts_of_invited = [r for r in rotations if r.status == "draft" and r.employee_id in invited_people]
        assert page.locator("#plan a.rot.st-draft").count() == len(drafts_of_invited)
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
    from models import Absence, Employee, PlanRun, Rotation

    engine = console_server["engine"]
    with Session(engine) as s:
        # a draft rotation whose first days now overlap an absence: the planner must move it, and says why
        draft = s.exec(
            select(Rotation)
            .where(
                Rotation.status == "draft",
                col(Rotation.locked).is_(False),
                col(Rotation.start) >= MONDAY + timedelta(weeks=2),
                col(Rotation.start) < MONDAY + timedelta(weeks=20),
            )
            .order_by(col(Rotation.start), col(Rotation.id))
        ).first()
        assert draft is not None, "the seed plans drafts in the coming weeks"
        who = s.get(Employee, draft.employee_id)
        s.add(Absence(employee_id=who.id, start=draft.start, end=draft.start + timedelta(days=2), reason="conference"))
        s.commit()
        moved_key, old_start = who.employee_id, draft.start.isoformat()
        before = sorted((r.id, r.start, r.status) for r in s.exec(select(Rotation)).all())
    context, page = _sign_in(browser, console_server, HR)
    try:
        page.goto(console_server["url"] + "/console/plan")
        page.click("text=Re-run planner (dry run)")
        page.fill("input[name=weeks]", "26")
        page.click("#dry-run")
        page.wait_for_selector("#change-count")
        with Session(engine) as s:
            run = s.exec(select(PlanRun).order_by(col(PlanRun.id).desc())).first()
            assert run.dry_run and run.horizon_start == MONDAY and run.horizon_weeks == 26
            expected = run.summary["changes"]
            # previewing wrote no rotation
            assert sorted((r.id, r.start, r.status) for r in s.exec(select(Rotation)).all()) == before
        assert 1 <= len(expected) < 500
        assert int(page.locator("#change-count").inner_text()) == len(expected)
        assert not page.locator("text=Nothing would change").is_visible()
        shown = [row.locator("td").all_inner_texts() for row in page.locator("#plan-diff tbody tr").all()]
        assert [(action, old, new) for _who, action, old, new, _why in shown] == [
            (c["action"], c["old_start"] or "", c["new_start"] or "") for c in expected
        ]
        i = next(i for i, c in enumerate(expected) if c["employee_id"] == moved_key)
        assert shown[i][1:3] == ["moved", old_start] and shown[i][3] != old_start and "absence" in shown[i][4]
        assert page.locator("#apply-plan").is_visible()  # applying is a separate, confirmed step
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


# --- layout and accessibility of every console page (issue 16) ------------------------------------------

LAYOUT_HR = "hr-layout@example.com"
WIDTHS = (1280, 375)  # a laptop, and a phone: department heads arrive from mail

# Elements of the page that overlap although neither contains the other (tables drawn over each other).
OVERLAPS = """() => {
  const boxes = [...document.querySelectorAll('main table, main section, main .card')].filter(e => e.checkVisibility())
    .map(e => [e, e.getBoundingClientRect()]).filter(([, r]) => r.width > 0 && r.height > 0);
  const name = e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className ? '.' + e.className : '');
  const out = [];
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
    const [a, ra] = boxes[i], [b, rb] = boxes[j];
    if (a.contains(b) || b.contains(a)) continue;
    const x = Math.min(ra.right, rb.right) - Math.max(ra.left, rb.left);
    const y = Math.min(ra.bottom, rb.bottom) - Math.max(ra.top, rb.top);
    if (x > 1 && y > 1) out.push(name(a) + ' overlaps ' + name(b));
  }
  return out;
}"""

# The innermost elements that stick out of the window (outside boxes that scroll on their own).
WIDE = """() => {
  const w = document.documentElement.clientWidth;
  const scrolls = e => { for (let p = e.parentElement; p; p = p.parentElement)
    if (['auto', 'scroll', 'hidden'].includes(getComputedStyle(p).overflowX)) return true; return false; };
  const out = [...document.body.querySelectorAll('*')].filter(e => e.checkVisibility()
    && e.getBoundingClientRect().right > w + 1 && !scrolls(e));
  return out.filter(e => !out.some(o => o !== e && e.contains(o))).slice(0, 4)
    .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className ? '.' + e.className : '')
      + ' (' + Math.round(e.getBoundingClientRect().width) + 'px)');
}"""

AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ') + ' ' + (n.failureSummary || '').split('\\n').slice(1, 2).join(''))}));
}"""


def _layout_problems(page, axe_source: str, width: int) -> list[str]:
    """At ``width`` px: horizontal overflow of the page, overlapping tables, axe-core violations of
    impact serious or critical (axe-core from npm, injected by Playwright)."""
    page.set_viewport_size({"width": width, "height": 900})
    problems = []
    overflow = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
    if overflow > 0:
        problems.append(f"the page is {overflow}px wider than the window: {page.evaluate(WIDE)}")
    problems += page.evaluate(OVERLAPS)
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=axe_source)
    for v in page.evaluate(AXE_RUN):
        if v["impact"] in ("serious", "critical"):
            problems.append(f"axe {v['id']} ({v['impact']}: {v['help']}): {v['nodes']}")
    return [f"{page.url.split('/', 3)[-1]} at {width}px: {p}" for p in problems]


def _console_pages(server) -> dict[str, list[str]]:
    """Every console page a signed-in person opens with a GET, per who opens it (HR; a department head
    who is also an employee)."""
    from models import Employee, Observation

    with Session(server["engine"]) as s:
        someone = s.exec(select(Employee.employee_id).where(Employee.department_id == server["dept_a"])).first()
        observation = (
            s.exec(select(Observation.id).where(Observation.target_department_id == server["dept_a"])).first()
            or s.exec(select(Observation.id)).first()
        )
    hr = [
        "/console",
        "/console/plan",
        f"/console/plan/rotations/{server['move_rotation']}",
        "/console/plan/rerun",
        f"/console/plan/people/{someone}/add",
        "/console/requests",
        "/console/observations",
        f"/console/observations/{observation}",
        "/console/roster",
        "/console/mentors",
    ]
    head = ["/console", "/console/plan", "/console/observations", "/console/me"]
    return {LAYOUT_HR: hr, server["head_a"]: head}


def test_every_console_page_fits_a_laptop_and_a_phone_without_serious_axe_violations(
    browser, console_server, axe_source, artifacts_dir
):
    """Every console page at 1280 and 375 px: the sign-in steps, HR's pages, a head's pages, the
    confirmation step of an action and the error page."""
    from frontline.access.accounts import add_hr

    server, engine = console_server, console_server["engine"]
    with Session(engine) as s:  # an HR admin of its own: sign-ins are rate-limited per address
        add_hr(s, LAYOUT_HR, actor="test")
        s.commit()
    pages = _console_pages(server)
    problems: list[str] = []

    def check(page) -> None:
        for width in WIDTHS:
            problems.extend(_layout_problems(page, axe_source, width))

    context = browser.new_context(bypass_csp=True)
    try:  # signing in: the form, "link sent", the link's confirmation page
        page = context.new_page()
        page.goto(server["url"] + "/console/signin")
        check(page)
        seen = len(_signin_links(engine, LAYOUT_HR))
        page.fill("#email", LAYOUT_HR)
        page.click("button[type=submit]")
        page.wait_for_selector("#signin-sent")
        check(page)
        page.goto(_new_signin_link(engine, LAYOUT_HR, seen))
        check(page)
        page.click("#signin-confirm")
        page.wait_for_load_state()
        for path in pages[LAYOUT_HR]:
            response = page.goto(server["url"] + path)
            assert response.status == 200, (path, response.status)
            check(page)
            if path == "/console":
                for width in WIDTHS:
                    page.set_viewport_size({"width": width, "height": 900})
                    page.screenshot(path=str(artifacts_dir / f"console-dashboard-{width}.png"), full_page=True)
        # an action's confirmation step (not confirmed), or the form with its refusal
        page.goto(server["url"] + f"/console/plan/rotations/{server['move_rotation']}")
        page.fill("#move-start", (server["move_to"] + timedelta(weeks=1)).isoformat())
        page.fill("#move-reason", "Layout check")
        page.click("#move-submit")
        page.wait_for_selector("#confirm-summary, .errors")
        check(page)
    finally:
        context.close()
    head = server["head_a"]
    context, page = _sign_in(browser, server, head, bypass_csp=True)
    try:
        for path in pages[head]:
            response = page.goto(server["url"] + path)
            assert response.status == 200, (head, path, response.status)
            check(page)
        assert page.goto(server["url"] + "/console/roster").status == 403  # the error page
        check(page)
    finally:
        context.close()
    assert not problems, "\n".join(problems)
