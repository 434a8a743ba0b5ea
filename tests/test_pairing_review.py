"""People in the pairing loop (issue 16): HR choosing a mentor against the hard rules, proposals held for
review (policy ``mentoring.review``), mentors accepting or declining through a signed link, and the
reason a rotation has no mentor. Over SQLite and PostgreSQL where the database matters."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlmodel import select

from frontline.calendar.invites import process_invites
from frontline.core.errors import PairingError
from frontline.core.links import pairing_url, read_token
from frontline.core.policy import parse_policy
from frontline.core.security import InvalidToken
from frontline.mentors import review
from frontline.mentors.service import pair_mentors
from models import Absence, AuditEvent, MentorPairing, OutboundMessage, PairingGap, session_scope
from tests.test_mentoring import AS_OF, POLICY, _company, _rotation

REVIEW = parse_policy({"support_department": "Support", "mentoring": {"review": True}})
MARCH = date(2027, 3, 1)


def _pairings(s, rotation_id):
    return s.exec(
        select(MentorPairing).where(MentorPairing.rotation_id == rotation_id).order_by(MentorPairing.id)
    ).all()


def _events(s, action):
    return s.exec(select(AuditEvent).where(AuditEvent.action == action)).all()


def test_hr_sets_a_mentor_and_every_hard_rule_is_named_when_refused(engine, settings):
    with session_scope(engine) as s:
        p = _company(s)
        dora = _rotation(s, p["dora"], MARCH)
        gina = _rotation(s, p["gina"], MARCH)
        pair_mentors(s, POLICY, as_of=AS_OF, actor="test")
        first = next(x for x in _pairings(s, dora.id) if x.status == "active")
        other = p["bert"] if first.mentor_id == p["anna"].id else p["anna"]
        # language: gina speaks only Japanese
        with pytest.raises(PairingError, match="hard rule 'language'"):
            review.set_mentor(s, POLICY, gina.id, p["anna"], "she asked", "hr@example.com", as_of=AS_OF)
        # not a mentor at all
        with pytest.raises(PairingError, match="hard rule 'mentor'"):
            review.set_mentor(s, POLICY, dora.id, p["emil"], "x", "hr@example.com", as_of=AS_OF)
        with pytest.raises(PairingError, match="reason is required"):
            review.set_mentor(s, POLICY, dora.id, other, "  ", "hr@example.com", as_of=AS_OF)
        pairing = review.set_mentor(s, POLICY, dora.id, other, "knows billing", "hr@example.com", as_of=AS_OF)
        rows = _pairings(s, dora.id)
        assert [(x.mentor_id, x.status) for x in rows] == [(first.mentor_id, "replaced"), (other.id, "active")]
        assert pairing.checkin_weekday is not None and pairing.sequence == 1
        event = _events(s, "pairing.set")[0]
        assert event.reason == "knows billing" and event.actor == "hr@example.com"
        # the earlier mentor is a previous mentor now
        with pytest.raises(PairingError, match="hard rule 'previous mentor'"):
            review.set_mentor(s, POLICY, dora.id, s.get(type(other), first.mentor_id), "back", "hr", as_of=AS_OF)


def test_set_mentor_refuses_absence_and_full_capacity(sqlite_engine, sqlite_settings):
    with session_scope(sqlite_engine) as s:
        p = _company(s)
        s.add(Absence(employee_id=p["bert"].id, start=MARCH + timedelta(days=9), end=MARCH + timedelta(days=11)))
        rots = [_rotation(s, p[k], MARCH) for k in ("dora", "emil", "finn")]
        with pytest.raises(PairingError, match="hard rule 'absence'"):
            review.set_mentor(s, POLICY, rots[0].id, p["bert"], "x", "hr", as_of=AS_OF)
        review.set_mentor(s, POLICY, rots[0].id, p["anna"], "x", "hr", as_of=AS_OF)
        review.set_mentor(s, POLICY, rots[1].id, p["anna"], "x", "hr", as_of=AS_OF)
        with pytest.raises(
            PairingError, match=r"hard rule 'capacity': Anna already has 2 of 2 rotator\(s\) in 2027-W09"
        ):
            review.set_mentor(s, POLICY, rots[2].id, p["anna"], "x", "hr", as_of=AS_OF)


def test_unmatched_reason_is_kept_and_forgotten_once_paired(sqlite_engine, sqlite_settings):
    with session_scope(sqlite_engine) as s:
        p = _company(s)
        gina = _rotation(s, p["gina"], MARCH)
        pair_mentors(s, POLICY, as_of=AS_OF, actor="test")
        gap = s.exec(select(PairingGap).where(PairingGap.rotation_id == gina.id)).one()
        assert gap.reason.startswith("no mentor shares a language")
        p["gina"].languages = ["ja", "en"]
        s.add(p["gina"])
        s.flush()
        pair_mentors(s, POLICY, as_of=AS_OF, actor="test")  # the next run records the next obstacle
        gap = s.exec(select(PairingGap).where(PairingGap.rotation_id == gina.id)).one()
        assert gap.reason == "no mentor in another department within the time-zone limit"
        assert gap.relaxation == "possible if the time-zone limit were 8 h"
        p["gina"].timezone = "Europe/Berlin"
        s.add(p["gina"])
        s.flush()
        pair_mentors(s, POLICY, as_of=AS_OF, actor="test")
        assert s.exec(select(PairingGap)).all() == []


def test_review_holds_proposals_until_hr_approves(engine, settings):
    with session_scope(engine) as s:
        p = _company(s)
        dora = _rotation(s, p["dora"], MARCH)
        emil = _rotation(s, p["emil"], MARCH + timedelta(weeks=1))
        result = pair_mentors(s, REVIEW, as_of=AS_OF, actor="test")
        assert {c["status"] for c in result.created} == {"proposed"}
        listed = review.proposals(s)
        assert [x.rotation.id for x in listed] == [dora.id, emil.id]
        # a second run keeps the proposals (they hold the seat) and proposes nothing new
        again = pair_mentors(s, REVIEW, as_of=AS_OF, actor="test")
        assert again.created == [] and again.kept == 2
        # nobody is told about a proposal: the invite names no mentor
        counts = process_invites(s, [dora.id], as_of=AS_OF + timedelta(weeks=2))
        assert counts.requests == 1 and counts.checkin_requests == 0
        assert dora.announced_mentor_id is None
        proposal = listed[0].pairing
        approved = review.approve_proposal(s, proposal.id, "hr@example.com")
        assert approved.status == "active"
        counts = process_invites(s, [dora.id], as_of=AS_OF + timedelta(weeks=2))
        assert counts.updates == 1 and counts.checkin_requests == 2
        assert dora.announced_mentor_id == proposal.mentor_id
        # reject the other: a new proposal with another mentor, the rejected one never again
        rejected = listed[1].pairing
        out = review.reject_proposal(s, REVIEW, rejected.id, "not a good fit", "hr@example.com", as_of=AS_OF)
        assert len(out.created) == 1 and out.created[0]["status"] == "proposed"
        rows = _pairings(s, emil.id)
        assert [x.status for x in rows] == ["rejected", "proposed"]
        assert rows[1].mentor_id != rejected.mentor_id
        with pytest.raises(PairingError, match="not a proposal"):
            review.approve_proposal(s, rejected.id, "hr")
        assert {e.action for e in s.exec(select(AuditEvent)).all()} >= {
            "pairing.proposed",
            "pairing.approved",
            "pairing.rejected",
        }


def test_a_decline_re_pairs_that_rotation_only(engine, settings):
    with session_scope(engine) as s:
        p = _company(s)
        dora = _rotation(s, p["dora"], MARCH)
        pair_mentors(s, POLICY, as_of=AS_OF, actor="test")
        emil = _rotation(s, p["emil"], MARCH)  # planned after the pairing run: no mentor yet
        process_invites(s, [dora.id], as_of=AS_OF + timedelta(weeks=2))
        first = _pairings(s, dora.id)[0]
        mentor = s.get(type(p["anna"]), first.mentor_id)
        wrong = review.pairing_view(s, first.id, p["cleo"].id if mentor.id != p["cleo"].id else p["anna"].id)
        assert wrong is None  # a link names one mentor
        ok = review.respond(s, POLICY, first.id, mentor.id, accept=True, as_of=AS_OF)
        assert ok.accepted and first.response == "accepted"
        answer = review.respond(s, POLICY, first.id, mentor.id, accept=False, reason="on leave <b>", as_of=AS_OF)
        assert not answer.accepted and answer.new_mentor
        rows = _pairings(s, dora.id)
        assert [x.status for x in rows] == ["declined", "active"] and rows[1].mentor_id != mentor.id
        assert _pairings(s, emil.id) == []  # the decline re-paired Dora's rotation alone
        assert _events(s, "pairing.declined")[0].reason == "on leave <b>"
        # the next invite run tells Dora, the new mentor and the one who declined
        before = len(s.exec(select(OutboundMessage)).all())
        counts = process_invites(s, [dora.id], as_of=AS_OF + timedelta(weeks=2))
        assert counts.updates == 1 and counts.checkin_requests == 2 and counts.checkin_cancels == 1
        assert len(s.exec(select(OutboundMessage)).all()) == before + 4
        again = review.respond(s, POLICY, first.id, mentor.id, accept=False, as_of=AS_OF)
        assert again.message == "You already declined this pairing."
        with pytest.raises(PairingError, match="no longer current"):
            review.respond(s, POLICY, first.id, mentor.id, accept=True, as_of=AS_OF)


def test_pairing_links_bind_pairing_and_mentor(sqlite_settings):
    link = pairing_url(7, 3)
    token = link.rsplit("/", 1)[1]
    assert read_token("pairing", token) == {"p": 7, "m": 3}
    for forged in (token[:-2] + ("AA" if not token.endswith("AA") else "BB"), token + "x"):
        with pytest.raises(InvalidToken):
            read_token("pairing", forged)
    with pytest.raises(InvalidToken):
        read_token("request", token)  # another purpose


def test_cli_pair_set_proposals_approve_reject(sqlite_engine, sqlite_settings):
    from typer.testing import CliRunner

    from frontline.cli import app

    sqlite_settings.policy_path.write_text('support_department = "Support"\n[mentoring]\nreview = true\n')
    with session_scope(sqlite_engine) as s:
        p = _company(s)
        _rotation(s, p["dora"], MARCH)
        gina = _rotation(s, p["gina"], MARCH)
        emil = _rotation(s, p["emil"], MARCH)
    runner = CliRunner()
    refused = runner.invoke(
        app, ["pair", "set", str(gina.id), "anna@example.com", "--reason", "r", "--as-of", "2027-02-01"]
    )
    assert refused.exit_code == 1 and "hard rule 'language'" in refused.output
    ok = runner.invoke(app, ["pair", "set", "dora", "bert", "--reason", "asked for", "--as-of", "2027-02-01"])
    assert ok.exit_code == 0, ok.output
    assert "mentor is now Bert" in ok.output
    ran = runner.invoke(app, ["pair", "--no-flow", "--as-of", "2027-02-01"])
    assert ran.exit_code == 0 and "proposed (policy mentoring.review" in ran.output, ran.output
    listed = runner.invoke(app, ["pair", "proposals"])
    assert "Emil" in listed.output and "Dora" not in listed.output  # Dora's mentor was chosen by HR
    with session_scope(sqlite_engine) as s:
        proposal = s.exec(select(MentorPairing).where(MentorPairing.rotation_id == emil.id)).one()
    rejected = runner.invoke(app, ["pair", "reject", str(proposal.id), "--reason", "no"])
    assert rejected.exit_code == 0 and "new proposal" in rejected.output, rejected.output
    approved = runner.invoke(app, ["pair", "approve", "--all"])
    assert approved.exit_code == 0 and "approved 1 pairing(s)" in approved.output
    assert runner.invoke(app, ["pair", "proposals"]).output.strip() == "no proposals waiting for review"
