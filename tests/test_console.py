"""The HR web console through the real ASGI app (TestClient), on SQLite and PostgreSQL: sign-in by magic
link, roles, CSRF, department isolation, the CSV export's formula guard and roster upload errors.

Everything happens on ``TODAY``, whatever the machine's calendar says: the fixtures' dates derive from it
and the ``today`` fixture sets the organisation clock (:mod:`frontline.core.clock`) the console reads to
it. ``FRONTLINE_TEST_TODAY=YYYY-MM-DD`` runs the tests on another day.
"""

from __future__ import annotations

import csv
import email
import io
import os
import re
import shutil
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from models import AuditEvent, Department, Employee, Observation, ObservationDraft, OutboundMessage, Rotation

ROOT = Path(__file__).resolve().parent.parent
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
TODAY = date.fromisoformat(os.environ.get("FRONTLINE_TEST_TODAY", "2027-03-03"))
MONDAY = TODAY - timedelta(days=TODAY.weekday())


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "page has no CSRF token"
    return match.group(1)


def signin_link_from_outbox(engine, to: str) -> str:
    with Session(engine) as s:
        row = s.exec(
            select(OutboundMessage)
            .where(OutboundMessage.kind == "signin", OutboundMessage.recipient == to)
            .order_by(OutboundMessage.id.desc())
        ).first()
        assert row is not None, f"no sign-in mail queued for {to}"
        msg = email.message_from_bytes(row.mime)
    text = next(p for p in msg.walk() if p.get_content_type() == "text/plain").get_payload(decode=True).decode()
    return re.search(r"(https?://\S+/console/signin/\S+)", text).group(1)


def sign_in(client: TestClient, engine, who: str) -> None:
    r = client.get("/console/signin")
    r = client.post("/console/signin", data={"email": who, "csrf_token": csrf_of(r.text)})
    assert r.status_code == 200
    link = signin_link_from_outbox(engine, who)
    path = "/" + link.split("/", 3)[3]
    r = client.get(path)
    assert r.status_code == 200, r.text
    r = client.post(path, data={"csrf_token": csrf_of(r.text)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console"


@pytest.fixture
def today(monkeypatch) -> date:
    """``TODAY`` is the organisation's today for the app under test (its clock's ``now`` is noon of that day)."""
    from frontline.core import clock

    monkeypatch.setattr(clock, "now", lambda: datetime.combine(TODAY, time(12), tzinfo=clock.org_tz()))
    return TODAY


def mentor(employee_id: str, name: str, email: str, support_id: int | None) -> Employee:
    """A support-team mentor for two rotators, hired long before ``TODAY``."""
    return Employee(
        employee_id=employee_id,
        name=name,
        email=email,
        department_id=support_id,
        hire_date=TODAY - timedelta(days=900),
        timezone="Europe/Berlin",
        country="DE",
        languages=["en"],
        is_mentor=True,
        mentor_capacity=2,
    )


@pytest.fixture
def company(settings, engine, today):
    """Two departments with heads, a few employees, an HR admin, observations for both departments (made
    at noon ``today``); Person 0 has a draft rotation from the Monday two weeks after ``today``."""
    from frontline.access.accounts import add_hr

    shutil.copyfile(ROOT / "frontline.example.toml", settings.policy_path)
    noon = datetime.combine(today, time(12), tzinfo=UTC)
    with Session(engine) as s:
        support = Department(name="Support", head_name="Sue Port", head_email="sue@example.com")
        eng = Department(name="Engineering", head_name="Eve Engineer", head_email="eve@example.com")
        fin = Department(name="Finance", head_name="Finn Ance", head_email="finn@example.com")
        s.add_all([support, eng, fin])
        s.flush()
        people = []
        for i in range(6):
            dept = eng if i < 3 else fin
            people.append(
                Employee(
                    employee_id=f"E{i}",
                    name=f"Person {i}",
                    email=f"p{i}@example.com",
                    department_id=dept.id,
                    hire_date=today - timedelta(days=800),
                    timezone="Europe/Berlin",
                    country="DE",
                    languages=["en"],
                )
            )
        people.append(mentor("S1", "Mentor One", "m1@example.com", support.id))
        s.add_all(people)
        s.flush()
        start = MONDAY + timedelta(weeks=2)
        s.add(
            Rotation(
                employee_id=people[0].id,
                start=start,
                end=start + timedelta(days=27),
                kind="cycle",
                due=start - timedelta(weeks=3),
            )
        )
        s.add(
            Observation(
                rotator_id=people[0].id,
                text="Customers cannot find the export button",
                impact=3,
                product_area="export",
                category="confusing_ux",
                target_department_id=eng.id,
                created_at=noon,
            )
        )
        s.add(
            Observation(
                rotator_id=people[3].id,
                text='=HYPERLINK("http://evil.example","click")',
                suggestion="@SUM(1+1)",
                impact=2,
                product_area="billing",
                category="bug",
                target_department_id=fin.id,
                urgent=True,
                created_at=noon,
            )
        )
        s.add(
            Observation(
                rotator_id=people[4].id,
                text="-2+3 refunds take weeks",
                impact=4,
                product_area="billing",
                category="policy_pricing",
                target_department_id=fin.id,
                created_at=noon,
            )
        )
        add_hr(s, "hr@example.com", actor="test")
        s.commit()
        ids = {
            "eng": eng.id,
            "fin": fin.id,
            "obs_eng": s.exec(select(Observation.id).where(Observation.target_department_id == eng.id)).first(),
            "obs_fin": s.exec(select(Observation.id).where(Observation.target_department_id == fin.id)).first(),
        }
    return ids


@pytest.fixture
def client(company):
    from frontline.web.app import create_app

    with TestClient(create_app(), base_url="http://frontline.test") as c:
        yield c


def test_pages_require_sign_in(client):
    for path in ["/console", "/console/plan", "/console/observations", "/console/roster", "/console/mentors"]:
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303, path
        assert r.headers["location"].startswith("/console/signin?next=")


def test_magic_link_sign_in_and_session_cookie(client, engine):
    sign_in(client, engine, "hr@example.com")
    cookie = next(c for c in client.cookies.jar if c.name == "frontline_console")
    assert cookie.has_nonstandard_attr("HttpOnly")
    r = client.get("/console")
    assert r.status_code == 200
    assert "Rotated this cycle" in r.text and "hr@example.com" in r.text
    with Session(engine) as s:
        assert s.exec(select(AuditEvent).where(AuditEvent.action == "console.signin")).first().actor == "hr@example.com"


def test_sign_in_link_is_single_use_and_unforgeable(client, engine):
    sign_in(client, engine, "hr@example.com")
    link = signin_link_from_outbox(engine, "hr@example.com")
    path = "/" + link.split("/", 3)[3]
    assert client.get(path).status_code == 400  # already used
    assert client.get(path[:-3] + "abc").status_code == 400  # tampered


def test_sign_in_page_does_not_reveal_whether_an_address_exists(client, engine):
    token = csrf_of(client.get("/console/signin").text)
    known = client.post("/console/signin", data={"email": "hr@example.com", "csrf_token": token})
    unknown = client.post("/console/signin", data={"email": "nobody@example.com", "csrf_token": token})
    assert known.status_code == unknown.status_code == 200
    strip = lambda html: CSRF.sub("", html)  # noqa: E731
    assert strip(known.text) == strip(unknown.text)
    with Session(engine) as s:
        rows = s.exec(select(OutboundMessage).where(OutboundMessage.kind == "signin")).all()
    assert [r.recipient for r in rows] == ["hr@example.com"]
    assert rows[0].state == "sent"  # delivered at once (to the outbox folder here), not at the next scheduled run


def test_post_without_csrf_token_is_refused(client, engine):
    sign_in(client, engine, "hr@example.com")
    r = client.post("/console/signin", data={"email": "hr@example.com"})
    assert r.status_code == 403
    r = client.post("/console/signout", data={})
    assert r.status_code == 403
    r = client.post("/console/signout", data={"csrf_token": "forged"})
    assert r.status_code == 403
    # a token from another session does not work either
    other = TestClient(client.app, base_url="http://frontline.test")
    foreign = csrf_of(other.get("/console/signin").text)
    r = client.post("/console/signout", data={"csrf_token": foreign})
    assert r.status_code == 403
    assert client.get("/console").status_code == 200  # still signed in


def test_head_sees_only_their_department(client, engine, company):
    sign_in(client, engine, "eve@example.com")
    r = client.get("/console/observations")
    assert r.status_code == 200
    assert "cannot find the export button" in r.text and "refunds take weeks" not in r.text
    assert client.get(f"/console/observations/{company['obs_eng']}").status_code == 200
    assert client.get(f"/console/observations/{company['obs_fin']}").status_code == 403
    assert client.get(f"/console/observations?department={company['fin']}").status_code == 403
    assert client.get(f"/console/observations.csv?department={company['fin']}").status_code == 403
    exported = client.get("/console/observations.csv").text
    assert "export button" in exported and "refunds" not in exported
    assert client.get("/console/roster").status_code == 403  # HR only
    assert client.get("/console/mentors").status_code == 403


def test_rotator_sees_only_their_own(client, engine, company):
    sign_in(client, engine, "p0@example.com")
    assert client.get("/console", follow_redirects=False).headers["location"] == "/console/me"
    r = client.get("/console/me")
    assert r.status_code == 200 and "export button" in r.text
    assert client.get("/console/observations").status_code == 403
    assert client.get(f"/console/observations/{company['obs_fin']}").status_code == 403
    assert client.get("/console/plan").status_code == 403


def test_rotator_page_points_to_their_open_helpdesk_drafts_only(client, engine, company, today):
    with Session(engine) as s:
        people = {e.email: e.id for e in s.exec(select(Employee))}
        for who, ticket, status in [("p0", "48213", "open"), ("p0", "48214", "submitted"), ("p1", "48215", "open")]:
            s.add(ObservationDraft(rotator_id=people[f"{who}@example.com"], source="zendesk", ticket_id=ticket,
                                   day=today, text="<b>CSV export</b> times out", status=status))  # fmt: skip
        s.commit()
    sign_in(client, engine, "p0@example.com")
    r = client.get("/console/me")
    assert r.status_code == 200 and 'id="my-drafts"' in r.text and "1 observation draft " in r.text
    assert "zendesk 48213" in r.text and "48214" not in r.text and "48215" not in r.text
    assert re.search(r'href="http://frontline\.test/observe/[^"]+#drafts"', r.text)


def test_csv_export_guards_against_formula_injection(client, engine):
    sign_in(client, engine, "hr@example.com")
    r = client.get("/console/observations.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    by_text = {row["text"]: row for row in rows}
    assert '\'=HYPERLINK("http://evil.example","click")' in by_text
    assert by_text['\'=HYPERLINK("http://evil.example","click")']["suggestion"] == "'@SUM(1+1)"
    assert "'-2+3 refunds take weeks" in by_text
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), value


def test_spreadsheet_safe_cells():
    from frontline.core.security import spreadsheet_safe

    for bad in ["=1+1", "+1", "-1", "@x", "\tx", "\rx"]:
        assert spreadsheet_safe(bad) == "'" + bad
    assert spreadsheet_safe("fine") == "fine"
    assert spreadsheet_safe(-3) == -3


def test_observation_filters_and_escaping(client, engine, company):
    with Session(engine) as s:
        s.add(
            Observation(
                text="<script>alert(1)</script> checkout broke",
                impact=5,
                product_area="checkout",
                category="bug",
                target_department_id=company["eng"],
            )
        )
        s.commit()
    sign_in(client, engine, "hr@example.com")
    r = client.get("/console/observations", params={"q": "checkout"})
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text and "<script>alert(1)" not in r.text
    assert "export button" not in r.text
    r = client.get("/console/observations", params={"urgent": "1"})
    assert "HYPERLINK" in r.text and "export button" not in r.text
    r = client.get("/console/observations", params={"area": "billing", "state": "new"})
    assert "refunds take weeks" in r.text and "export button" not in r.text


def test_roster_upload_with_bad_rows_shows_every_error_and_writes_nothing(client, engine):
    sign_in(client, engine, "hr@example.com")
    page = client.get("/console/roster")
    departments = "department,head_name,head_email,max_away_fraction\nEngineering,Eve,eve@example.com,\n"
    employees = (
        "employee_id,name,email,department,title,hire_date,timezone,country,languages,skills,mentor,mentor_capacity,last_rotation\n"
        "N1,New One,n1@example.com,Engineering,Dev,2026-13-01,Europe/Berlin,DE,en,,no,0,\n"
        "N2,New Two,not-an-email,Nowhere,Dev,2026-01-05,Mars/Base,DE,en,,no,0,\n"
    )
    with Session(engine) as s:
        before = len(s.exec(select(Employee)).all())
    r = client.post(
        "/console/roster",
        data={"csrf_token": csrf_of(page.text)},
        files={
            "departments": ("departments.csv", departments, "text/csv"),
            "employees": ("employees.csv", employees, "text/csv"),
        },
    )
    assert r.status_code == 422
    assert "Nothing was imported" in r.text
    assert "employees.csv:2: hire_date" in r.text
    assert "employees.csv:3: email" in r.text and "employees.csv:3: timezone" in r.text
    with Session(engine) as s:
        assert len(s.exec(select(Employee)).all()) == before


def test_roster_upload_without_csrf_is_refused(client, engine):
    sign_in(client, engine, "hr@example.com")
    r = client.post("/console/roster", files={"departments": ("d.csv", "x", "text/csv")})
    assert r.status_code == 403


def test_plan_view_shows_rotations_caps_and_filters(client, engine, company):
    sign_in(client, engine, "hr@example.com")
    r = client.get("/console/plan")
    assert r.status_code == 200
    assert "Person 0" in r.text and "Person 3" in r.text
    assert 'class="rot cycle st-draft"' in r.text  # the seeded draft rotation is drawn
    assert "cap 20/week" in r.text
    assert "Server-Timing" in r.headers or "server-timing" in r.headers
    r = client.get("/console/plan", params={"department": company["fin"]})
    assert "Person 3" in r.text and "Person 0" not in r.text
    r = client.get("/console/plan", params={"status": "unplanned"})
    assert "Person 3" in r.text and "Person 0" not in r.text
    assert client.get("/console/plan", params={"start": "not-a-date"}).status_code == 400


def test_head_plan_is_limited_to_their_department(client, engine, company):
    sign_in(client, engine, "finn@example.com")
    r = client.get("/console/plan")
    assert r.status_code == 200 and "Person 3" in r.text and "Person 0" not in r.text
    assert client.get("/console/plan", params={"department": company["eng"]}).status_code == 403


def test_mentors_page_lists_load(client, engine, company):
    sign_in(client, engine, "hr@example.com")
    r = client.get("/console/mentors")
    assert r.status_code == 200 and "Mentor One" in r.text
    assert "Without a mentor (1)" in r.text


def _valid_monday(engine, rotation_id: int, within_weeks: int = 8) -> date:
    """A Monday the planner's hard rules accept for this rotation (blackouts in the policy vary with the day)."""
    from frontline.core.errors import PlanningError
    from frontline.core.policy import load_policy
    from frontline.rotations.overrides import validate_start

    pol = load_policy()
    with Session(engine) as s:
        rot = s.get(Rotation, rotation_id)
        first = MONDAY + timedelta(weeks=1)
        for w in range(within_weeks):
            candidate = first + timedelta(weeks=w)
            if candidate == rot.start:
                continue
            try:
                validate_start(s, pol, rot, candidate)
                return candidate
            except PlanningError:
                continue
    raise AssertionError("no valid Monday to move to")


def test_move_needs_reason_and_confirmation_then_queues_invite_update(client, engine):
    from frontline.calendar.invites import process_invites

    with Session(engine) as s:
        rot = s.exec(select(Rotation)).first()
        process_invites(s, [rot.id], as_of=TODAY)  # the rotator was invited
        s.commit()
        s.refresh(rot)
        assert rot.status == "invited" and rot.announced_start == rot.start
        rid, old_start, old_sequence = rot.id, rot.start, rot.sequence
    target = _valid_monday(engine, rid)
    sign_in(client, engine, "hr@example.com")
    page = client.get(f"/console/plan/rotations/{rid}")
    assert page.status_code == 200 and "Move" in page.text
    token = csrf_of(page.text)
    url = f"/console/plan/rotations/{rid}/move"
    r = client.post(url, data={"csrf_token": token, "new_start": target.isoformat(), "reason": "  "})
    assert r.status_code == 400 and "a reason is required" in r.text
    r = client.post(url, data={"new_start": target.isoformat(), "reason": "customer visit"})
    assert r.status_code == 403  # no CSRF token
    r = client.post(url, data={"csrf_token": token, "new_start": target.isoformat(), "reason": "customer visit"})
    assert r.status_code == 200 and "Confirm" in r.text and str(target) in r.text
    with Session(engine) as s:
        assert s.get(Rotation, rid).start == old_start  # the preview wrote nothing
    r = client.post(
        url,
        data={"csrf_token": token, "new_start": target.isoformat(), "reason": "customer visit", "confirm": "yes"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    r = client.get(r.headers["location"])
    assert "Calendar updates queued: 1" in r.text
    with Session(engine) as s:
        rot = s.get(Rotation, rid)
        assert rot.start == target and rot.locked and rot.sequence == old_sequence + 1
        event = s.exec(select(AuditEvent).where(AuditEvent.action == "rotation.move")).one()
        assert event.actor == "hr@example.com" and event.reason == "customer visit"
        keys = s.exec(select(OutboundMessage.idempotency_key).where(OutboundMessage.kind != "signin")).all()
        assert f"invite:{rid}:{old_sequence + 1}" in keys


def test_invalid_move_is_explained_and_heads_cannot_act(client, engine, company):
    with Session(engine) as s:
        rid = s.exec(select(Rotation.id)).first()
    sign_in(client, engine, "hr@example.com")
    token = csrf_of(client.get(f"/console/plan/rotations/{rid}").text)
    r = client.post(
        f"/console/plan/rotations/{rid}/move", data={"csrf_token": token, "new_start": "2030-01-02", "reason": "x"}
    )  # a Wednesday
    assert r.status_code == 400 and "rotations start on a Monday" in r.text
    head = TestClient(client.app, base_url="http://frontline.test")
    sign_in(head, engine, "eve@example.com")
    page = head.get(f"/console/plan/rotations/{rid}")
    assert page.status_code == 200 and "Change it" not in page.text  # read-only for the head
    r = head.post(f"/console/plan/rotations/{rid}/lock", data={"csrf_token": csrf_of(page.text), "reason": "x"})
    assert r.status_code == 403
    finn = TestClient(client.app, base_url="http://frontline.test")
    sign_in(finn, engine, "finn@example.com")
    assert finn.get(f"/console/plan/rotations/{rid}").status_code == 403  # another department's person


def test_dry_run_shows_the_diff_and_apply_writes_it(client, engine):
    sign_in(client, engine, "hr@example.com")
    page = client.get("/console/plan/rerun")
    token = csrf_of(page.text)
    with Session(engine) as s:
        before = len(s.exec(select(Rotation)).all())
    r = client.post("/console/plan/rerun", data={"csrf_token": token, "weeks": "26"})
    assert r.status_code == 200 and 'id="plan-diff"' in r.text
    assert "Person 1" in r.text  # never rotated: the dry run would plan them
    with Session(engine) as s:
        assert len(s.exec(select(Rotation)).all()) == before  # nothing written
    run_id = re.search(r'name="preview_run" value="(\d+)"', r.text).group(1)
    r = client.post(
        "/console/plan/rerun/apply", data={"csrf_token": token, "weeks": "26", "reason": "", "preview_run": run_id}
    )
    assert r.status_code == 400
    r = client.post(
        "/console/plan/rerun/apply",
        data={"csrf_token": token, "weeks": "26", "reason": "quarterly plan", "preview_run": run_id},
    )
    assert r.status_code == 200 and "Plan applied" in r.text and "differ" not in r.text
    with Session(engine) as s:
        assert len(s.exec(select(Rotation)).all()) > before
        assert (
            s.exec(select(AuditEvent).where(AuditEvent.action == "console.plan_apply")).one().reason == "quarterly plan"
        )


def test_apply_while_another_planner_runs_says_so_and_writes_nothing(client, engine, monkeypatch):
    """Another writer of the plan holds the planning lock (a `frontline plan` running): the console's
    apply waits at most the web's cap (not the command line's 300 s), then answers 409 with who holds
    it, and writes nothing."""
    from time import monotonic

    from frontline.web import auth
    from models.db import planning_lock

    monkeypatch.setattr(auth, "WEB_PLANNING_LOCK_WAIT", 0.5)
    sign_in(client, engine, "hr@example.com")
    token = csrf_of(client.get("/console/plan/rerun").text)
    with Session(engine) as s:
        before = len(s.exec(select(Rotation)).all())
    with Session(engine) as holding:
        planning_lock(holding, "plan-rotations by cli")
        t0 = monotonic()
        r = client.post(
            "/console/plan/rerun/apply", data={"csrf_token": token, "weeks": "26", "reason": "quarterly plan"}
        )
        assert monotonic() - t0 < 30
        holding.rollback()
    assert r.status_code == 409, r.text[:300]
    assert "another writer of the plan" in r.text and "plan-rotations by cli" in r.text
    assert "Try again in a minute" in r.text and "FRONTLINE_PLANNING_LOCK_WAIT" not in r.text  # the CLI's setting
    with Session(engine) as s:
        assert len(s.exec(select(Rotation)).all()) == before
    r = client.post("/console/plan/rerun/apply", data={"csrf_token": token, "weeks": "26", "reason": "quarterly plan"})
    assert r.status_code == 200 and "Plan applied" in r.text  # released: the next click goes through


def test_hr_re_pairs_a_rotator_with_another_mentor(client, engine, company):
    from frontline.core.policy import load_policy
    from frontline.mentors import service as mentoring
    from models import MentorPairing

    with Session(engine) as s:
        support = s.exec(select(Department).where(Department.name == "Support")).one()
        s.add(mentor("S2", "Mentor Two", "m2@example.com", support.id))
        s.commit()
        mentoring.pair_mentors(s, load_policy(), actor="test")
        s.commit()
        first = s.exec(select(MentorPairing).where(MentorPairing.status == "active")).one()
        rid, first_mentor = first.rotation_id, first.mentor_id
    sign_in(client, engine, "hr@example.com")
    page = client.get(f"/console/plan/rotations/{rid}")
    assert 'id="repair"' in page.text
    token = csrf_of(page.text)
    r = client.post(f"/console/plan/rotations/{rid}/repair", data={"csrf_token": token, "reason": "personal conflict"})
    assert r.status_code == 200 and "replaced by" in r.text  # the confirmation page
    with Session(engine) as s:
        assert s.exec(select(MentorPairing).where(MentorPairing.status == "active")).one().mentor_id == first_mentor
    r = client.post(
        f"/console/plan/rotations/{rid}/repair",
        data={"csrf_token": token, "reason": "personal conflict", "confirm": "yes"},
    )
    assert r.status_code == 200
    with Session(engine) as s:
        active = s.exec(select(MentorPairing).where(MentorPairing.status == "active")).one()
        assert active.rotation_id == rid and active.mentor_id != first_mentor
        old = s.exec(select(MentorPairing).where(MentorPairing.status == "replaced")).one()
        assert old.mentor_id == first_mentor and "personal conflict" in old.reason


def test_cli_add_hr_and_bootstrap_link(client, engine):
    from typer.testing import CliRunner

    from frontline.cli import app as cli

    runner = CliRunner()
    result = runner.invoke(cli, ["users", "add-hr", "New.Admin@Example.com"])
    assert result.exit_code == 0, result.output
    assert "new.admin@example.com is an HR admin" in result.output
    assert runner.invoke(cli, ["console", "link", "stranger@example.com"]).exit_code != 0
    result = runner.invoke(cli, ["console", "link", "new.admin@example.com"])
    assert result.exit_code == 0, result.output
    path = "/" + result.output.strip().split("/", 3)[3]
    page = client.get(path)
    r = client.post(path, data={"csrf_token": csrf_of(page.text)}, follow_redirects=False)
    assert r.status_code == 303
    assert "new.admin@example.com · HR admin" in client.get("/console").text
    assert runner.invoke(cli, ["users", "remove-hr", "new.admin@example.com"]).exit_code == 0
    assert client.get("/console").status_code == 403  # the role is checked on every request


def test_head_acknowledges_an_observation_and_the_rotator_is_told(client, engine, company):
    sign_in(client, engine, "eve@example.com")
    page = client.get(f"/console/observations/{company['obs_eng']}")
    assert "Acknowledge" in page.text
    r = client.post(
        f"/console/observations/{company['obs_eng']}/ack",
        data={"csrf_token": csrf_of(page.text), "state": "planned", "note": "fix in Q1"},
    )
    assert r.status_code == 200 and "Marked as planned" in r.text
    with Session(engine) as s:
        obs = s.get(Observation, company["obs_eng"])
        assert (obs.ack_state, obs.ack_by, obs.ack_note) == ("planned", "eve@example.com", "fix in Q1")
        assert s.exec(select(OutboundMessage).where(OutboundMessage.recipient == "p0@example.com")).first() is not None
    r = client.post(
        f"/console/observations/{company['obs_fin']}/ack", data={"csrf_token": csrf_of(page.text), "state": "fixed"}
    )
    assert r.status_code == 403


def test_head_reroutes_an_observation_that_is_not_theirs(client, engine, company):
    sign_in(client, engine, "eve@example.com")
    page = client.get(f"/console/observations/{company['obs_eng']}")
    assert "Not ours? Re-route it" in page.text and "<option>Finance</option>" in page.text
    assert "<option>Engineering</option>" not in page.text  # not to where it already is
    r = client.post(
        f"/console/observations/{company['obs_eng']}/reroute",
        data={"csrf_token": csrf_of(page.text), "department": "Finance", "reason": "billing problem"},
    )
    assert r.status_code == 200 and "Engineering → Finance" in r.text
    with Session(engine) as s:
        obs = s.get(Observation, company["obs_eng"])
        fin = s.exec(select(Department).where(Department.name == "Finance")).one()
        assert obs.target_department_id == fin.id and obs.routed_by == "head"
        event = s.exec(select(AuditEvent).where(AuditEvent.action == "observation.rerouted")).one()
        assert (event.actor, event.reason) == ("eve@example.com", "billing problem")
    # now Finance's: Eve can no longer see it, let alone move it again
    r = client.post(
        f"/console/observations/{company['obs_eng']}/reroute",
        data={"csrf_token": csrf_of(page.text), "department": "Support"},
    )
    assert r.status_code == 403


def test_good_roster_upload_imports_and_lists_new_hires_and_leavers(client, engine):
    sign_in(client, engine, "hr@example.com")
    page = client.get("/console/roster")
    assert "No roster has been imported yet" in page.text
    departments = (
        "department,head_name,head_email,max_away_fraction\nSupport,Sue Port,sue@example.com,\n"
        "Engineering,Eve Engineer,eve@example.com,\nFinance,Finn Ance,finn@example.com,\n"
    )
    header = "employee_id,name,email,department,title,hire_date,timezone,country,languages,skills,mentor,mentor_capacity,last_rotation\n"
    keep = "".join(
        f"E{i},Person {i},p{i}@example.com,{'Engineering' if i < 3 else 'Finance'},,2024-01-01,Europe/Berlin,DE,en,,no,0,\n"
        for i in range(5)
    )  # E5 is missing: a leaver
    employees = (
        header
        + keep
        + "S1,Mentor One,m1@example.com,Support,,2024-01-01,Europe/Berlin,DE,en,,yes,2,\n"
        + f"N9,Zoë Ñew,zoe@example.com,Finance,,{TODAY - timedelta(days=10)},Europe/Madrid,ES,es;en,,no,0,\n"
    )  # N9 is the one new hire (hired within the policy's window); E0-E4 and S1 joined long ago
    r = client.post(
        "/console/roster",
        data={"csrf_token": csrf_of(page.text)},
        files={
            "departments": ("departments.csv", departments.encode("utf-8-sig"), "text/csv"),
            "employees": ("employees.csv", employees.encode(), "text/csv"),
        },
    )
    assert r.status_code == 200, r.text
    assert "Imported:" in r.text
    new_hires = r.text.split('id="new-hires"')[1].split("</table>")[0]
    leavers = r.text.split('id="leavers"')[1].split("</table>")[0]
    assert "Zoë Ñew" in new_hires and "Person 5" in leavers
    assert "Person 1" not in new_hires and "New hires in the last import (1)" in r.text
    with Session(engine) as s:
        assert s.exec(select(Employee).where(Employee.employee_id == "E5")).one().active is False


def test_dashboard_participation_and_observation_figures(client, engine, company):
    with Session(engine) as s:
        p2 = s.exec(select(Employee).where(Employee.employee_id == "E2")).one()
        p2.last_rotation = TODAY - timedelta(days=40)  # rotated this cycle
        s.add(p2)
        s.commit()
    sign_in(client, engine, "eve@example.com")  # head of Engineering: E0 (planned late), E1 (nothing), E2 (rotated)
    r = client.get("/console")
    assert r.status_code == 200
    assert 'id="kpi-rotated">1 / 3<' in r.text
    assert 'id="kpi-overdue" style="color:#b42318">2<' in r.text
    overdue = r.text.split('id="overdue"')[1].split("</table>")[0]
    assert "Person 0" in overdue and "Person 1" in overdue and "Person 3" not in overdue
    rotated = r.text.split('id="rotated-list"')[1].split("</details>")[0]
    assert "Person 2" in rotated and "Person 0" not in rotated
    weeks = r.text.split('id="observations-per-week"')[1].split("</table>")[0]
    assert weeks.count('<td class="num">1</td>') == 1  # Engineering's one observation, this week
    hr = TestClient(client.app, base_url="http://frontline.test")
    sign_in(hr, engine, "hr@example.com")
    assert 'id="kpi-rotated">1 / 6<' in hr.get("/console").text


def test_dashboard_shows_wrap_up_feedback_per_role(client, engine, company):
    """Survey answers feed the dashboard: HR sees every mentor's rating; a head sees only the answers
    of their own department's rotators and no per-mentor table."""
    from frontline.mentors.surveys import save_feedback
    from models import MentorPairing

    with Session(engine) as s:
        mentor = s.exec(select(Employee).where(Employee.employee_id == "S1")).one()
        rot_eng = s.exec(select(Rotation)).first()  # Person 0, Engineering
        fin_person = s.exec(select(Employee).where(Employee.employee_id == "E3")).one()
        rot_fin = Rotation(
            employee_id=fin_person.id, start=rot_eng.start, end=rot_eng.end, kind="cycle", due=rot_eng.due
        )
        s.add(rot_fin)
        s.flush()
        pairings = [MentorPairing(rotation_id=r.id, mentor_id=mentor.id) for r in (rot_eng, rot_fin)]
        s.add_all(pairings)
        s.flush()
        save_feedback(s, pairings[0].id, "rotator", rotation_usefulness=5, usefulness=4, comment="<b>great</b>")
        save_feedback(s, pairings[0].id, "mentor", rotation_usefulness=4, usefulness=5, comment=None)
        save_feedback(s, pairings[1].id, "rotator", rotation_usefulness=2, usefulness=2, comment=None)
        s.commit()
    sign_in(client, engine, "hr@example.com")
    page = client.get("/console").text
    card = page.split('id="kpi-feedback"')[1].split("</div></div>")[0]
    assert ">3.7<" in card  # rotation usefulness over all three answers: (5 + 4 + 2) / 3
    assert "pairing rated 3.0 by rotators" in card and "5.0 by mentors" in card and "3 answers" in card
    table = page.split('id="mentor-feedback"')[1].split("</table>")[0]
    assert "Mentor One" in table and '<td class="num">2</td><td class="num">3.0</td>' in table
    head = TestClient(client.app, base_url="http://frontline.test")
    sign_in(head, engine, "eve@example.com")  # head of Engineering: only Person 0's pairing
    page = head.get("/console").text
    card = page.split('id="kpi-feedback"')[1].split("</div></div>")[0]
    assert ">4.5<" in card and "pairing rated 4.0 by rotators" in card and "2 answers" in card
    assert 'id="mentor-feedback"' not in page


def test_plan_lists_unplaced_of_the_latest_applied_run(client, engine):
    from models import PlanRun

    with Session(engine) as s:
        s.add(
            PlanRun(
                horizon_start=MONDAY,
                horizon_weeks=4,
                dry_run=False,
                unplaced=[
                    {"employee_id": "E3", "code": "no_seat", "reason": "no free seat in any allowed week"},
                    {"employee_id": "E1", "code": "blocked", "reason": "absence covers the window"},
                ],
            )
        )
        s.commit()
        s.add(
            PlanRun(
                horizon_start=MONDAY,
                horizon_weeks=4,
                dry_run=True,
                unplaced=[{"employee_id": "E4", "code": "department_cap", "reason": "from a dry run"}],
            )
        )
        s.commit()
    sign_in(client, engine, "hr@example.com")
    table = client.get("/console/plan").text.split('id="unplaced"')[1].split("</table>")[0]
    assert "Person 3" in table and "no free seat" in table and "Person 1" in table
    assert "from a dry run" not in table
    head = TestClient(client.app, base_url="http://frontline.test")
    sign_in(head, engine, "eve@example.com")
    table = head.get("/console/plan").text.split('id="unplaced"')[1].split("</table>")[0]
    assert "Person 1" in table and "Person 3" not in table  # Finance's person is not Eve's business


def test_cookie_flags_and_tampered_session(client, engine, monkeypatch):
    from frontline.core.settings import get_settings

    header = client.get("/console/signin").headers["set-cookie"]
    assert "HttpOnly" in header and "samesite=lax" in header.lower() and "Secure" not in header
    sign_in(client, engine, "hr@example.com")
    value = client.cookies.get("frontline_console")
    client.cookies.clear()
    client.cookies.set("frontline_console", value[:-2] + ("AA" if not value.endswith("AA") else "BB"))
    r = client.get("/console", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/console/signin")
    monkeypatch.setenv("FRONTLINE_BASE_URL", "https://frontline.example.com")
    get_settings.cache_clear()
    fresh = TestClient(client.app, base_url="https://frontline.test")
    assert "Secure" in fresh.get("/console/signin").headers["set-cookie"]


def test_flash_messages_cannot_be_forged_through_the_url(client, engine):
    from frontline.web.auth import with_flash

    sign_in(client, engine, "hr@example.com")
    assert "Send your password to" not in client.get("/console?done=Send+your+password+to+evil").text
    assert 'class="flash"' not in client.get("/console?done=x").text
    assert "Saved it" in client.get(with_flash("/console", "Saved it")).text


def test_sign_in_returns_to_the_page_asked_for_and_never_off_site(client, engine):
    r = client.get("/console/observations?urgent=1", follow_redirects=False)
    form = client.get(r.headers["location"]).text
    assert 'name="next" value="/console/observations?urgent=1"' in form
    client.post(
        "/console/signin",
        data={"email": "hr@example.com", "csrf_token": csrf_of(form), "next": "/console/observations?urgent=1"},
    )
    path = "/" + signin_link_from_outbox(engine, "hr@example.com").split("/", 3)[3]
    r = client.post(path, data={"csrf_token": csrf_of(client.get(path).text)}, follow_redirects=False)
    assert r.headers["location"] == "/console/observations?urgent=1"
    other = TestClient(client.app, base_url="http://frontline.test")
    form = other.get("/console/signin").text
    other.post(
        "/console/signin",
        data={"email": "eve@example.com", "csrf_token": csrf_of(form), "next": "https://evil.example/console"},
    )
    path = "/" + signin_link_from_outbox(engine, "eve@example.com").split("/", 3)[3]
    r = other.post(path, data={"csrf_token": csrf_of(other.get(path).text)}, follow_redirects=False)
    assert r.headers["location"] == "/console"
