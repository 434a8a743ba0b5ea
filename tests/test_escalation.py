"""Urgent observations: immediate mail to the target department's head (the mentor gets a copy without a
link), a second escalation to the digest recipients after the SLA exactly once, one mail per recipient
with a link bound to them, none once acknowledged."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from observation_factories import body, mails, world_ids
from sqlmodel import select

from frontline.observations.acknowledgement import set_ack_state
from frontline.observations.escalation import escalate_overdue_observations, escalation_key
from frontline.observations.intake import submit_observation
from models import AuditEvent, Observation, session_scope, utcnow

URGENT = {
    "text": "Checkout charges cards twice; customer jane@example.com lost 2x 49.99 EUR",
    "impact": 5,
    "customer_count": 12,
    "product_area": "checkout",
    "category": "bug",
    "urgent": True,
}


@pytest.fixture
def world(settings, engine):
    return {**world_ids(settings, engine), "outbox": settings.outbox_dir}


def _submit(engine, world, **overrides):
    from models import Employee

    with session_scope(engine) as session:
        rotator = session.get(Employee, world["rotator"])
        return submit_observation(session, rotator, {**URGENT, **overrides}, "web").id


def test_urgent_mails_the_head_at_once_and_the_mentor_a_copy(engine, world):
    oid = _submit(engine, world)
    with session_scope(engine) as session:
        sent = mails(session, "escalation")
        assert len(sent) == 2
        head, copy = sent
        assert head["To"] == "erin.head@example.com"  # checkout -> Engineering (policy area_departments)
        assert head["Cc"] is None
        assert head.row.idempotency_key == escalation_key(oid, 1, "erin.head@example.com")
        text = body(head, "plain")
        assert "jane@example.com" not in text and "[email]" in text
        link = re.search(r"http://frontline\.test/ack/\S+", text).group(0)
        assert urlsplit(link).path.startswith("/ack/")
        # the rotator's mentor is told, without a link that would act as the head
        assert copy["To"] == "e900@example.com"
        assert copy.row.idempotency_key == escalation_key(oid, 1, "e900@example.com", copy=True)
        assert "/ack/" not in body(copy, "plain") and "/ack/" not in body(copy, "html")
        assert "For your information" in body(copy, "plain")
        obs = session.get(Observation, oid)
        assert obs.escalation_level == 1 and obs.escalated_at is not None
        assert obs.rotation_id == world["rotation"]


def test_not_urgent_sends_nothing(engine, world):
    _submit(engine, world, urgent=False)
    with session_scope(engine) as session:
        assert mails(session) == []


def test_unacknowledged_past_sla_escalates_again_exactly_once(engine, world):
    oid = _submit(engine, world)
    with session_scope(engine) as session:
        # still inside the SLA (24 h): nothing
        assert escalate_overdue_observations(session, utcnow() + timedelta(hours=23)) == []
    later = utcnow() + timedelta(hours=25)
    with session_scope(engine) as session:
        assert escalate_overdue_observations(session, later) == [oid]
    with session_scope(engine) as session:
        assert escalate_overdue_observations(session, later) == []  # run twice: no second mail
        sent = [m for m in mails(session, "escalation") if m.row.idempotency_key.startswith(f"escalation:{oid}:2:")]
        assert {m["To"] for m in sent} == {"erin.head@example.com", "engineering-leads@example.com"}  # one each
        for second in sent:
            assert second.row.idempotency_key == escalation_key(oid, 2, second["To"])
            assert "not been acknowledged within 24 hours" in body(second, "plain")
        assert session.get(Observation, oid).escalation_level == 2
        events = session.exec(select(AuditEvent).where(AuditEvent.action == "observation.escalated")).all()
        assert sorted(e.details["level"] for e in events) == [1, 2]


def test_acknowledged_is_not_escalated(engine, world):
    oid = _submit(engine, world)
    with session_scope(engine) as session:
        set_ack_state(session, [oid], "acknowledged", by="erin.head@example.com", note="On it")
    with session_scope(engine) as session:
        assert escalate_overdue_observations(session, utcnow() + timedelta(days=3)) == []
        keys = [m.row.idempotency_key for m in mails(session, "escalation")]
        assert len(keys) == 2 and all(k.startswith(f"escalation:{oid}:1:") for k in keys)  # the head, the mentor
        update = mails(session, "observation_update")
        assert len(update) == 1 and update[0]["To"] == "e100@example.com"
        assert "acknowledged" in update[0]["Subject"]
        assert "On it" in body(update[0], "plain")


def test_set_ack_state_is_idempotent_per_state_and_refuses_unknown(engine, world):
    oid = _submit(engine, world, urgent=False)
    with session_scope(engine) as session:
        set_ack_state(session, [oid], "planned", by="pat@example.com")
        set_ack_state(session, [oid], "planned", by="pat@example.com")
        set_ack_state(session, [oid], "fixed", by="pat@example.com", note="Shipped in 3.14.3")
    with session_scope(engine) as session:
        keys = [m.row.idempotency_key for m in mails(session, "observation_update")]
        # "planned" had not gone out yet when it became "fixed": the rotator gets the one, current, mail
        assert keys == [f"observation-update:{oid}:fixed"]
        obs = session.get(Observation, oid)
        assert obs.ack_state == "fixed" and obs.ack_note == "Shipped in 3.14.3"
        with pytest.raises(ValueError, match="unknown state"):
            set_ack_state(session, [oid], "done", by="x")
        with pytest.raises(ValueError, match="no observation with id 999"):
            set_ack_state(session, [oid, 999], "fixed", by="x")


@pytest.mark.prefect
def test_escalate_overdue_flow(prefect_harness, settings, engine, world):
    from flows.escalations import escalate_overdue

    oid = _submit(engine, world)
    later = utcnow() + timedelta(hours=30)
    preview = escalate_overdue(as_of=later, dry_run=True)
    assert preview["escalated"] == [oid] and preview["dry_run"] and len(preview["messages"]) == 2
    assert escalate_overdue(as_of=later)["escalated"] == [oid]  # the dry run wrote nothing
    assert escalate_overdue(as_of=later)["escalated"] == []
    with session_scope(engine) as session:
        assert len(mails(session, "escalation")) == 4  # level 1: head and mentor; level 2: head and leads
        assert session.exec(select(AuditEvent).where(AuditEvent.action == "observations.escalate_overdue")).all()


def test_state_set_again_after_another_state_tells_the_rotator_again(engine, world):
    """planned -> won't fix -> planned (reconsidered): the rotator's last mail said "won't fix", so the
    return to planned is a change and is mailed; setting the same state twice still sends nothing."""
    from frontline.mail.delivery import deliver_pending
    from frontline.mail.transport import FolderTransport

    oid = _submit(engine, world, urgent=False)
    outbox = FolderTransport(world["outbox"])
    for state, note in [("planned", None), ("wont_fix", None), ("planned", "Reconsidered"), ("planned", "Again")]:
        with session_scope(engine) as session:
            set_ack_state(session, [oid], state, by="pat@example.com", note=note)
        deliver_pending(engine, outbox)  # each change goes out before the next one
    with session_scope(engine) as session:
        updates = mails(session, "observation_update")
        assert [m["Subject"].split(" marked ")[1] for m in updates] == ["planned", "won't fix", "planned"]
        assert len({m.row.idempotency_key for m in updates}) == 3
        assert "Reconsidered" in body(updates[-1], "plain")
