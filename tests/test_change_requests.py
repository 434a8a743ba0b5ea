"""Change requests (issue 16): rotators ask for another week or out, heads ask to move one of their people,
HR approves or declines; every outcome is mailed to the requester and audited, and an approved move flows
through the normal invite update. Over SQLite and PostgreSQL where the database matters."""

from __future__ import annotations

import email
from datetime import date, timedelta

import pytest
from sqlmodel import select

from frontline.calendar.invites import process_invites
from frontline.core.errors import PlanningError
from frontline.core.policy import parse_policy
from frontline.rotations import requests as cr
from models import Absence, AuditEvent, ChangeRequest, OutboundMessage, Rotation, session_scope
from tests.test_mentoring import _company, _rotation

POLICY = parse_policy({"support_department": "Support"})
AUTO = parse_policy({"support_department": "Support", "requests": {"auto_approve": True}})
TODAY = date(2027, 1, 13)
MARCH = date(2027, 3, 1)


def _mail(s, key):
    row = s.exec(select(OutboundMessage).where(OutboundMessage.idempotency_key == key)).one()
    msg = email.message_from_bytes(row.mime)
    return row.recipient, str(msg["Subject"]), msg.get_payload(decode=True).decode()


def test_another_week_approved_moves_the_rotation_and_the_invite_is_updated(engine, settings):
    with session_scope(engine) as s:
        p = _company(s)
        rot = _rotation(s, p["dora"], MARCH)
        process_invites(s, [rot.id], as_of=MARCH - timedelta(weeks=4))  # announced: sequence 0
        assert rot.announced_start == MARCH and rot.sequence == 0
        req = cr.submit(
            s,
            POLICY,
            rot.id,
            kind="another_week",
            requester_email="DORA@example.com",
            requester_role="rotator",
            reason="school holidays <script>",
            preferred_weeks=cr.parse_weeks(["2027-04-07"], TODAY),
            today=TODAY,
        )
        assert req.status == "pending" and req.preferred_weeks == ["2027-04-05"]
        with pytest.raises(PlanningError, match="already a request"):
            cr.submit(
                s,
                POLICY,
                rot.id,
                kind="cannot_do",
                requester_email="dora@example.com",
                requester_role="rotator",
                reason="x",
                today=TODAY,
            )
        cr.approve(s, POLICY, req.id, "hr@example.com", today=TODAY)
        assert (rot.start, rot.locked) == (date(2027, 4, 5), True)
        to, subject, body = _mail(s, f"request:{req.id}:approved")
        assert to == "dora@example.com" and subject.endswith("approved")
        assert "moves from the week of 2027-03-01 to 2027-04-05" in body and "school holidays <script>" in body
        actions = [e.action for e in s.exec(select(AuditEvent).order_by(AuditEvent.id)).all()]
        assert actions[-3:] == ["request.submitted", "rotation.move", "request.approved"]
        counts = process_invites(s, [rot.id], as_of=MARCH - timedelta(weeks=4))
        assert counts.updates == 1 and rot.sequence == 1 and rot.announced_start == date(2027, 4, 5)


def test_no_preferred_week_fits_names_the_rule_and_changes_nothing(sqlite_engine, sqlite_settings):
    with session_scope(sqlite_engine) as s:
        p = _company(s)
        rot = _rotation(s, p["dora"], MARCH)
        s.add(Absence(employee_id=p["dora"].id, start=date(2027, 4, 5), end=date(2027, 4, 9), reason="PTO"))
        req = cr.submit(
            s,
            POLICY,
            rot.id,
            kind="another_week",
            requester_email="dora@example.com",
            requester_role="rotator",
            reason="r",
            preferred_weeks=[date(2027, 4, 5)],
            today=TODAY,
        )
        with pytest.raises(
            PlanningError,
            match=r"none of the preferred weeks fits \(2027-04-05: .*absence.*\); the nearest weeks that fit: 2027-04-12, 2027-04-19, 2027-04-26;",
        ):
            cr.approve(s, POLICY, req.id, "hr", today=TODAY)
        assert rot.start == MARCH and req.status == "pending"
        cr.approve(s, POLICY, req.id, "hr", week=date(2027, 5, 12), today=TODAY)  # HR's own week (a Wednesday)
        assert rot.start == date(2027, 5, 10)


def test_auto_approve_only_what_fits(sqlite_engine, sqlite_settings):
    with session_scope(sqlite_engine) as s:
        p = _company(s)
        ok = _rotation(s, p["dora"], MARCH)
        blocked = _rotation(s, p["emil"], MARCH)
        s.add(Absence(employee_id=p["emil"].id, start=date(2027, 4, 5), end=date(2027, 4, 9)))
        a = cr.submit(
            s,
            AUTO,
            ok.id,
            kind="another_week",
            requester_email="dora@example.com",
            requester_role="rotator",
            reason="r",
            preferred_weeks=[date(2027, 4, 5)],
            today=TODAY,
        )
        b = cr.submit(
            s,
            AUTO,
            blocked.id,
            kind="another_week",
            requester_email="emil@example.com",
            requester_role="rotator",
            reason="r",
            preferred_weeks=[date(2027, 4, 5)],
            today=TODAY,
        )
        assert (a.status, a.decided_by, ok.start) == ("approved", "policy", date(2027, 4, 5))
        assert (b.status, blocked.start) == ("pending", MARCH)
        assert "approved at once" in _mail(s, f"request:{a.id}:approved")[2]


def test_cannot_do_releases_the_person_and_decline_tells_why(sqlite_engine, sqlite_settings):
    with session_scope(sqlite_engine) as s:
        p = _company(s)
        rot = _rotation(s, p["dora"], MARCH)
        process_invites(s, [rot.id], as_of=MARCH - timedelta(weeks=4))
        other = _rotation(s, p["emil"], MARCH)
        out = cr.submit(
            s,
            POLICY,
            rot.id,
            kind="cannot_do",
            requester_email="dora@example.com",
            requester_role="rotator",
            reason="product launch",
            today=TODAY,
        )
        cr.approve(s, POLICY, out.id, "hr", today=TODAY)
        assert rot.status == "cancelled" and p["dora"].exempt_until == rot.end
        counts = process_invites(s, [rot.id], as_of=MARCH - timedelta(weeks=4))
        assert counts.cancels == 1
        # a head asks to move one of their people; HR declines
        assert cr.may_request(s, other.id, "e@example.com", "head")
        assert not cr.may_request(s, other.id, "l@example.com", "head")  # Sales' head, Emil is in Engineering
        assert not cr.may_request(s, other.id, "dora@example.com", "rotator")
        move = cr.submit(
            s,
            POLICY,
            other.id,
            kind="move",
            requester_email="e@example.com",
            requester_role="head",
            reason="release",
            preferred_weeks=[date(2027, 6, 7)],
            today=TODAY,
        )
        with pytest.raises(PlanningError, match="say why"):
            cr.decline(s, move.id, "hr", " ")
        cr.decline(s, move.id, "hr", "the team cap is full then")
        to, subject, body = _mail(s, f"request:{move.id}:declined")
        assert to == "e@example.com" and "Emil's support rotation" in subject
        assert "Note from HR: the team cap is full then" in body and other.start == MARCH
        assert [r.as_row()["status"] for r in cr.list_requests(s, None)] == ["declined", "approved"]
        assert cr.list_requests(s) == []
        assert s.exec(select(ChangeRequest)).all()[0].decided_by == "hr"
        assert s.get(Rotation, other.id).locked is False


def test_a_request_without_weeks_needs_hrs_week(sqlite_engine, sqlite_settings):
    with session_scope(sqlite_engine) as s:
        p = _company(s)
        rot = _rotation(s, p["emil"], MARCH)
        req = cr.submit(
            s,
            AUTO,
            rot.id,
            kind="move",
            requester_email="e@example.com",
            requester_role="head",
            reason="quarter close",
            today=TODAY,
        )
        assert req.status == "pending"  # nothing to auto-approve without a week
        with pytest.raises(PlanningError, match="names no week"):
            cr.approve(s, POLICY, req.id, "hr", today=TODAY)
        with pytest.raises(PlanningError, match="has started or is over"):
            cr.approve(s, POLICY, req.id, "hr", week=TODAY, today=TODAY)
        cr.approve(s, POLICY, req.id, "hr", week=date(2027, 4, 12), today=TODAY)
        assert rot.start == date(2027, 4, 12)
        assert "Emil's rotation moves from the week of 2027-03-01" in _mail(s, f"request:{req.id}:approved")[2]
