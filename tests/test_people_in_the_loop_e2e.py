"""People in the loop, end to end (issue 16): the real app under uvicorn, a real SMTP server (aiosmtpd) that
receives every mail, and headless Chromium following the links in those mails.

* a rotator opens "Request another week" from their invite, HR approves it in the console, and the updated
  invitation (same UID, SEQUENCE 1, the new dates, parsed back with ``icalendar``) arrives;
* a mentor declines a pairing from the link in their check-in invite: the rotation is re-paired at once
  and the new mentor's invitation arrives; a tampered link is refused;
* with ``mentoring.review = true`` new pairings wait as proposals: HR approves one and rejects another in
  the console; only the approved one is announced.

The server's organisation clock is set to ``TODAY``; the test process passes the day explicitly.
"""

from __future__ import annotations

import email
import os
import re
import socket
import subprocess
import sys
import time
from datetime import date
from email.message import Message
from pathlib import Path

import pytest
from icalendar import Calendar
from mailserver import SMTPServer
from sqlmodel import Session, select

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
TODAY = date(2027, 2, 1)  # a Monday; the rotations start in March
HR = "hr@example.com"
POLICY = 'support_department = "Support"\n'
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


@pytest.fixture(scope="module")
def world(chromium, tmp_path_factory):
    """The company of ``tests/test_mentoring.py`` (three mentors, four rotators) in a SQLite file, an SMTP
    sink, the app under uvicorn and a Chromium browser."""
    from playwright.sync_api import sync_playwright

    from frontline.access.accounts import add_hr
    from frontline.core.settings import get_settings
    from models import get_engine, init_db
    from models.db import _engine_for
    from tests.test_mentoring import _company

    tmp = tmp_path_factory.mktemp("loop")
    port = _free_port()
    with SMTPServer() as smtp, pytest.MonkeyPatch.context() as mp:
        env = {
            "FRONTLINE_DATABASE_URL": f"sqlite:///{tmp / 'loop.db'}",
            "FRONTLINE_POLICY_PATH": str(tmp / "frontline.toml"),
            "FRONTLINE_OUTBOX_DIR": str(tmp / "outbox"),
            "FRONTLINE_SECRET_KEY": "loop-test-secret",
            "FRONTLINE_BASE_URL": f"http://127.0.0.1:{port}",
            "FRONTLINE_SMTP_URL": smtp.url,
            "FRONTLINE_MAIL_FROM": "Frontline <frontline@example.com>",
        }
        Path(env["FRONTLINE_POLICY_PATH"]).write_text(POLICY, encoding="utf-8")
        for k, v in env.items():
            mp.setenv(k, v)
        get_settings.cache_clear()
        engine = get_engine()
        init_db(engine)
        with Session(engine) as s:
            people = {k: (e.id, e.email) for k, e in _company(s).items()}
            add_hr(s, HR, actor="test")
            s.commit()
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
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=str(chromium), args=["--no-sandbox", "--disable-gpu"])
                yield {
                    "url": f"http://127.0.0.1:{port}",
                    "engine": engine,
                    "smtp": smtp,
                    "people": people,
                    "browser": browser,
                    "policy_path": Path(env["FRONTLINE_POLICY_PATH"]),
                }
                browser.close()
        finally:
            proc.terminate()
            proc.wait(timeout=20)
            _engine_for.cache_clear()
            get_settings.cache_clear()


# ------------------------------------------------------------------------------ helpers


def _deliver(world) -> list[Message]:
    """Deliver the outbox over SMTP; the messages the sink received in this round."""
    from frontline.mail.delivery import deliver_pending
    from frontline.mail.transport import SMTPTransport

    before = len(world["smtp"].handler.messages)
    transport = SMTPTransport(world["smtp"].url, rate_per_second=1000)
    try:
        result = deliver_pending(world["engine"], transport)
        assert not result.errors, result.errors
    finally:
        transport.close()
    return world["smtp"].handler.messages[before:]


def _to(msg: Message) -> str:
    return msg["To"].addresses[0].addr_spec


def _text(msg: Message) -> str:
    part = next(p for p in msg.walk() if p.get_content_type() == "text/plain")
    return part.get_payload(decode=True).decode()


def _event(msg: Message):
    ics = next(p for p in msg.walk() if p.get_content_type() == "text/calendar").get_payload(decode=True)
    cal = Calendar.from_ical(ics)
    return str(cal["METHOD"]), next(c for c in cal.walk("VEVENT"))


def _invites(world, rotation_ids, as_of=TODAY):
    from frontline.calendar.invites import process_invites

    with Session(world["engine"]) as s:
        counts = process_invites(s, list(rotation_ids), as_of=as_of)
        s.commit()
    return counts


def _rotation(world, who: str, start: date) -> int:
    from models import Employee
    from tests.test_mentoring import _rotation as make

    with Session(world["engine"]) as s:
        rot = make(s, s.get(Employee, world["people"][who][0]), start)
        s.commit()
        return rot.id


def _pair(world, only=None):
    from frontline.core.policy import load_policy
    from frontline.mentors.service import pair_mentors

    with Session(world["engine"]) as s:
        result = pair_mentors(s, load_policy(), as_of=TODAY, actor="test", only=only)
        s.commit()
    return result


def _sign_in(world, who: str):
    from models import OutboundMessage

    context = world["browser"].new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(world["url"] + "/console/signin")

    def links():
        with Session(world["engine"]) as s:
            return s.exec(
                select(OutboundMessage).where(OutboundMessage.kind == "signin", OutboundMessage.recipient == who)
            ).all()

    seen = len(links())
    page.fill("#email", who)
    page.click("button[type=submit]")
    page.wait_for_selector("#signin-sent")
    deadline = time.monotonic() + 15
    while len(rows := links()) <= seen:
        assert time.monotonic() < deadline, "no sign-in link"
        time.sleep(0.1)
    text = _text(email.message_from_bytes(rows[-1].mime))
    page.goto(re.search(r"(http://\S+/console/signin/\S+)", text).group(1))
    page.click("#signin-confirm")
    page.wait_for_load_state()
    return context, page


# ------------------------------------------------------------------------------ the three stories


def test_rotator_request_approved_and_the_updated_invite_arrives(world):
    rid = _rotation(world, "finn", date(2027, 3, 1))
    _pair(world, only=[rid])
    assert _invites(world, [rid]).requests == 1
    mails = _deliver(world)
    invite = next(m for m in mails if _to(m) == "finn@example.com" and "support rotation" in str(m["Subject"]))
    link = re.search(r"(http://\S+/request/\S+)", _text(invite)).group(1)
    method, first = _event(invite)
    assert method == "REQUEST" and int(first["SEQUENCE"]) == 0 and first["DTSTART"].dt == date(2027, 3, 1)

    context = world["browser"].new_context(viewport={"width": 375, "height": 800})
    page = context.new_page()
    page.goto(link)
    page.check("input[value=another_week]")
    page.fill("#request-reason", "My team ships on <b>March 3</b>")
    page.fill("#request-week0", "2027-04-07")
    page.click("#request-submit")
    page.wait_for_selector("#request-message")
    assert "waiting for HR" in page.inner_text("#request-latest")
    assert page.inner_text("#request-latest").count("<b>March 3</b>") == 1  # shown as text, not markup
    context.close()

    context, hr = _sign_in(world, HR)
    hr.goto(world["url"] + "/console/requests")
    row = hr.locator("#pending-requests tbody tr", has_text="Finn")
    assert "<b>March 3</b>" in row.inner_text()
    row.locator("button.approve").click()
    hr.wait_for_load_state()
    assert "approved" in hr.inner_text("body")
    context.close()

    outcome = [m for m in _deliver(world) if _to(m) == "finn@example.com"]
    assert [str(m["Subject"]) for m in outcome] == ["Your request about your support rotation: approved"]
    assert "moves from the week of 2027-03-01 to 2027-04-05" in _text(outcome[0])
    assert _invites(world, [rid]).updates == 1
    update = [m for m in _deliver(world) if _to(m) == "finn@example.com" and "rotation" in str(m["Subject"])]
    method, event = _event(update[0])
    assert method == "REQUEST" and str(event["UID"]) == str(first["UID"])
    assert int(event["SEQUENCE"]) == 1 and event["DTSTART"].dt == date(2027, 4, 5)


def test_mentor_declines_and_the_rotation_is_re_paired(world):
    from models import MentorPairing

    rid = _rotation(world, "dora", date(2027, 3, 8))
    _pair(world, only=[rid])
    _invites(world, [rid])
    mails = _deliver(world)
    mentor_ids = {v[0]: k for k, v in world["people"].items()}
    with Session(world["engine"]) as s:
        first = s.exec(select(MentorPairing).where(MentorPairing.rotation_id == rid)).one()
    mentor_email = world["people"][mentor_ids[first.mentor_id]][1]
    to_mentor = next(m for m in mails if _to(m) == mentor_email and "check-ins" in str(m["Subject"]))
    link = re.search(r"(http://\S+/pairing/\S+)", _text(to_mentor)).group(1)

    context = world["browser"].new_context(viewport={"width": 375, "height": 800})
    page = context.new_page()
    token = link.rsplit("/", 1)[1]
    tampered = link[: -len(token)] + token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    response = page.goto(tampered)
    assert response.status == 403 and "not valid" in page.inner_text("#link-error")
    page.goto(link)
    assert page.inner_text("#pairing-state") == "not given yet"
    page.fill("#decline-reason", "on call that month")
    page.click("#decline")
    page.wait_for_selector("#pairing-message")
    assert page.inner_text("#pairing-state") == "declined"
    context.close()

    with Session(world["engine"]) as s:
        rows = s.exec(select(MentorPairing).where(MentorPairing.rotation_id == rid).order_by(MentorPairing.id)).all()
    assert [r.status for r in rows] == ["declined", "active"] and rows[1].mentor_id != first.mentor_id
    new_email = world["people"][mentor_ids[rows[1].mentor_id]][1]
    mails = _deliver(world)  # the decline queued the updates at once
    got = {(_to(m), _event(m)[0]) for m in mails if m.get_content_type() == "multipart/mixed"}
    assert (new_email, "REQUEST") in got and ("dora@example.com", "REQUEST") in got
    assert (mentor_email, "CANCEL") in got


def test_review_holds_proposals_until_hr_decides_in_the_console(world):
    from models import MentorPairing

    world["policy_path"].write_text(POLICY + "[mentoring]\nreview = true\n", encoding="utf-8")
    try:
        a = _rotation(world, "emil", date(2027, 3, 15))
        b = _rotation(world, "finn", date(2027, 6, 7))
        result = _pair(world, only=[a, b])
        assert {c["status"] for c in result.created} == {"proposed"} and len(result.created) == 2
        _invites(world, [a, b])
        mails = _deliver(world)
        assert not [m for m in mails if "check-ins" in str(m["Subject"])]  # nobody told about a mentor yet

        context, hr = _sign_in(world, HR)
        hr.goto(world["url"] + "/console/mentors")
        proposals = hr.locator("#proposal-list tbody tr")
        assert proposals.count() == 2
        with Session(world["engine"]) as s:
            pa, pb = (s.exec(select(MentorPairing).where(MentorPairing.rotation_id == r)).one() for r in (a, b))
        hr.locator(f"#proposal-{pa.id} button.approve").click()
        hr.wait_for_load_state()
        hr.fill(f"#reject-reason-{pb.id}", "Finn asked for someone in his time zone")
        hr.locator(f"#proposal-{pb.id} button.reject").click()
        hr.wait_for_load_state()
        assert "rejected" in hr.inner_text("body")
        context.close()

        with Session(world["engine"]) as s:
            rows_b = s.exec(
                select(MentorPairing).where(MentorPairing.rotation_id == b).order_by(MentorPairing.id)
            ).all()
            assert s.get(MentorPairing, pa.id).status == "active"
        assert rows_b[0].status == "rejected"
        assert all(r.mentor_id != rows_b[0].mentor_id for r in rows_b[1:])
        assert all(r.status == "proposed" for r in rows_b[1:])
        _invites(world, [a, b])
        mails = _deliver(world)
        checkins = {_to(m) for m in mails if "check-ins" in str(m["Subject"])}
        assert "emil@example.com" in checkins and "finn@example.com" not in checkins
    finally:
        world["policy_path"].write_text(POLICY, encoding="utf-8")
