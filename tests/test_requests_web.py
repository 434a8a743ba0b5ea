"""Change requests and pairing answers over HTTP (TestClient, SQLite and PostgreSQL): the signed links
in mail (tampered links refused, nothing stored), a rotator asking from /console/me, a head asking from the
rotation page, HR deciding in /console/requests, and user content escaped."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlmodel import Session, select

from frontline.core.links import request_url
from models import ChangeRequest, Employee, OutboundMessage, Rotation
from tests import test_console
from tests.test_console import MONDAY, csrf_of, sign_in

# the console tests' fixtures: a company with an HR admin, a rotation of Person 0, and a client of the app
company, client, today = test_console.company, test_console.client, test_console.today

EVIL = '<img src=x onerror="alert(1)">'


def _rotation(engine):
    with Session(engine) as s:
        rot = s.exec(select(Rotation)).one()
        person = s.get(Employee, rot.employee_id)
        return rot.id, person.id


def test_request_link_tampered_refused_then_request_queued_and_decided(client, engine):
    rid, eid = _rotation(engine)
    path = "/" + request_url(rid, eid).split("/", 3)[3]
    token = path.rsplit("/", 1)[1]
    for bad in (path[:-3] + ("abc" if not path.endswith("abc") else "xyz"), f"/request/{token}x"):
        assert client.get(bad).status_code == 403
        assert client.post(bad, data={"kind": "cannot_do", "reason": "x"}).status_code == 403
    # a link for another person's rotation: signed, but not theirs
    other = "/" + request_url(rid, eid + 1).split("/", 3)[3]
    assert client.get(other).status_code == 403
    with Session(engine) as s:
        assert s.exec(select(ChangeRequest)).all() == []
    page = client.get(path)
    assert page.status_code == 200 and "Request another week" in page.text
    week = (MONDAY + timedelta(weeks=6)).isoformat()
    r = client.post(path, data={"kind": "another_week", "reason": EVIL, "week": [week, ""]})
    assert r.status_code == 200 and "is sent" in r.text, r.text
    assert EVIL not in r.text and "&lt;img src=x" in r.text
    again = client.post(path, data={"kind": "cannot_do", "reason": "x"})
    assert again.status_code == 409
    # HR sees it (escaped) and approves with the preferred week
    sign_in(client, engine, "hr@example.com")
    queue = client.get("/console/requests")
    assert queue.status_code == 200 and "&lt;img src=x" in queue.text and EVIL not in queue.text
    req_id = int(re.search(r'id="request-(\d+)"', queue.text).group(1))
    r = client.post(
        f"/console/requests/{req_id}/approve",
        data={"csrf_token": csrf_of(queue.text), "week": ""},
        follow_redirects=True,
    )
    assert r.status_code == 200 and "approved" in r.text
    with Session(engine) as s:
        assert s.get(Rotation, rid).start.isoformat() == week
        assert s.exec(
            select(OutboundMessage).where(OutboundMessage.idempotency_key == f"request:{req_id}:approved")
        ).one()


def test_rotator_asks_from_console_me_and_head_from_the_rotation_page(client, engine):
    rid, _eid = _rotation(engine)
    sign_in(client, engine, "p0@example.com")
    me = client.get("/console/me")
    assert me.status_code == 200 and f'id="request-{rid}"' in me.text
    r = client.post(
        f"/console/me/rotations/{rid}/request",
        data={"csrf_token": csrf_of(me.text), "kind": "cannot_do", "reason": "launch week"},
        follow_redirects=True,
    )
    assert "sent to HR" in r.text and "waiting for HR" in r.text
    # someone else's rotation: refused
    client.post("/console/signout", data={"csrf_token": csrf_of(r.text)})
    sign_in(client, engine, "p1@example.com")
    me = client.get("/console/me")
    r = client.post(
        f"/console/me/rotations/{rid}/request",
        data={"csrf_token": csrf_of(me.text), "kind": "cannot_do", "reason": "not mine"},
    )
    assert r.status_code == 403
    client.post("/console/signout", data={"csrf_token": csrf_of(me.text)})
    # the head of Engineering sees that a request is waiting; HR declines it, then the head asks
    sign_in(client, engine, "hr@example.com")
    queue = client.get("/console/requests")
    req_id = int(re.search(r'id="request-(\d+)"', queue.text).group(1))
    client.post(f"/console/requests/{req_id}/decline", data={"csrf_token": csrf_of(queue.text), "note": "we need you"})
    client.post("/console/signout", data={"csrf_token": csrf_of(queue.text)})
    sign_in(client, engine, "eve@example.com")
    page = client.get(f"/console/plan/rotations/{rid}")
    assert 'id="head-request"' in page.text
    week = (MONDAY + timedelta(weeks=8)).isoformat()
    r = client.post(
        f"/console/plan/rotations/{rid}/request",
        data={"csrf_token": csrf_of(page.text), "reason": "quarter close", "week": [week]},
        follow_redirects=True,
    )
    assert "sent to HR" in r.text, r.text
    with Session(engine) as s:
        rows = s.exec(select(ChangeRequest).order_by(ChangeRequest.id)).all()
        assert [(x.kind, x.status, x.requester_role) for x in rows] == [
            ("cannot_do", "declined", "rotator"),
            ("move", "pending", "head"),
        ]


def test_hr_chooses_a_mentor_in_the_console_and_sees_why_others_have_none(client, engine):
    from frontline.core.policy import load_policy
    from frontline.mentors.service import pair_mentors

    rid, _eid = _rotation(engine)
    with Session(engine) as s:
        mentor = s.exec(select(Employee).where(Employee.employee_id == "S1")).one()
        mentor.languages = ["de"]
        s.add(mentor)
        s.commit()
        pair_mentors(s, load_policy(), as_of=MONDAY, actor="test")
        s.commit()
    sign_in(client, engine, "hr@example.com")
    page = client.get("/console/mentors?weeks=8")
    row = re.search(r'<table class="data" id="unpaired">.*?</table>', page.text, re.S).group(0)
    assert "Person 0" in row and "no mentor shares a language (en)" in row
    detail = client.get(f"/console/plan/rotations/{rid}")
    token = csrf_of(detail.text)
    refused = client.post(
        f"/console/plan/rotations/{rid}/mentor", data={"csrf_token": token, "mentor": "m1@example.com", "reason": "x"}
    )
    assert refused.status_code == 400 and "hard rule &#39;language&#39;" in refused.text
    with Session(engine) as s:
        mentor = s.exec(select(Employee).where(Employee.employee_id == "S1")).one()
        mentor.languages = ["de", "en"]
        s.add(mentor)
        s.commit()
    preview = client.post(
        f"/console/plan/rotations/{rid}/mentor", data={"csrf_token": token, "mentor": "S1", "reason": "asked for"}
    )
    assert preview.status_code == 200 and "mentor is now Mentor One" in preview.text
    done = client.post(
        f"/console/plan/rotations/{rid}/mentor",
        data={"csrf_token": token, "mentor": "S1", "reason": "asked for", "confirm": "yes"},
        follow_redirects=True,
    )
    assert done.status_code == 200 and "Mentor One &lt;m1@example.com&gt;" in done.text
    page = client.get("/console/mentors?weeks=8")
    assert "Person 0" not in re.search(r"<section>\s*<h2>Without a mentor.*?</section>", page.text, re.S).group(0)
    # the mentor accepts through their link: HR sees the answer
    from frontline.mentors import review
    from models import MentorPairing

    with Session(engine) as s:
        pairing = s.exec(select(MentorPairing).where(MentorPairing.status == "active")).one()
        review.respond(s, load_policy(), pairing.id, pairing.mentor_id, accept=True)
        s.commit()
    page = client.get("/console/mentors?weeks=8")
    pairings = re.search(r'<table class="data" id="pairings">.*?</table>', page.text, re.S).group(0)
    assert '<span class="pill">accepted</span>' in pairings


def test_a_request_waiting_too_long_for_a_plan_run_says_only_to_try_again(client, engine, settings, monkeypatch):
    """With ``auto_approve`` a fitting request is approved at once, which takes the planning lock. While a
    plan run holds it past the web's wait, the rotator's page says another change is running and to try
    again (409), not HR's e-mail, a process id or the command line's setting; nothing is stored."""
    import frontline.web.auth
    from models.db import planning_lock

    text = settings.policy_path.read_text(encoding="utf-8")
    auto = re.sub(r"(?m)^auto_approve = false", "auto_approve = true", text)
    assert auto != text
    settings.policy_path.write_text(auto, encoding="utf-8")
    monkeypatch.setattr(frontline.web.auth, "WEB_PLANNING_LOCK_WAIT", 0.5)
    rid, eid = _rotation(engine)
    path = "/" + request_url(rid, eid).split("/", 3)[3]
    week = (MONDAY + timedelta(weeks=6)).isoformat()
    with Session(engine) as holding:
        planning_lock(holding, "plan-rotations by hr@example.com")
        r = client.post(path, data={"kind": "another_week", "reason": "school holidays", "week": [week, ""]})
        holding.rollback()
    assert r.status_code == 409, r.text[:500]
    assert "Try again in a minute" in r.text
    for internal in ("hr@example.com", "FRONTLINE_PLANNING_LOCK_WAIT", "pid"):
        assert internal not in r.text, internal
    with Session(engine) as s:
        assert s.exec(select(ChangeRequest)).all() == []
    r = client.post(path, data={"kind": "another_week", "reason": "school holidays", "week": [week, ""]})
    assert r.status_code == 200 and "approved" in r.text.lower(), r.text[:500]
