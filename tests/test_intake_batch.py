"""Group commit of observation intake: :func:`submit_batch` keeps every per-submission rule inside one
batch (duplicates of ``client_request_id`` within the batch and in the database, the hourly limit,
revoked tokens, inactive rotators, one audit event per stored observation, urgent escalation), and
the API's writer answers many concurrent requests correctly (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from observation_factories import set_policy_value, world_ids
from pydantic import ValidationError
from sqlmodel import func, select

from frontline.core.security import hash_secret
from frontline.observations.api_tokens import create_api_token, revoke_api_token
from frontline.observations.intake import (
    ObservationConflict,
    ObservationOut,
    Pending,
    RateLimited,
    RotatorInactive,
    TokenRevoked,
    UnknownEmployee,
    WrongRotator,
    submit_batch,
)
from models import AuditEvent, Employee, Observation, OutboundMessage, session_scope


@pytest.fixture
def world(settings, engine):
    return world_ids(settings, engine)


def fields(**overrides):
    data = {
        "text": "Refund for jane@example.com failed twice",
        "impact": 3,
        "product_area": "billing",
        "category": "bug",
        "customer_count": 1,
    }
    data.update(overrides)
    return data


def counts(engine):
    with session_scope(engine) as session:
        stored = session.exec(select(func.count(Observation.id))).one()
        audited = session.exec(
            select(func.count(AuditEvent.id)).where(AuditEvent.action == "observation.submitted")
        ).one()
        return stored, audited


def test_batch_applies_every_rule_per_item(engine, world, settings):
    set_policy_value(settings, "submissions_per_hour", "3")
    rita, otto = world["rotator"], world["other"]
    with session_scope(engine) as session:
        earlier = submit_batch(session, [Pending(fields(client_request_id="old-1"), "api", rotator_id=rita)])[0]
    assert isinstance(earlier, ObservationOut) and not earlier.replayed
    items = [
        Pending(fields(client_request_id="a"), "api", rotator_id=rita),
        Pending(fields(client_request_id="a"), "api", rotator_id=rita),  # repeat inside the batch: replay
        Pending(fields(client_request_id="a"), "api", rotator_id=otto),  # same id, someone else: conflict
        Pending(fields(client_request_id="old-1"), "api", rotator_id=rita),  # repeat of a stored one: replay
        Pending(fields(client_request_id="old-1"), "api", rotator_id=otto),  # conflict with the database
        Pending(fields(product_area="moon"), "api", rotator_id=otto),  # invalid: refused, others go on
        Pending(fields(text="Call me on +44 20 7946 0958"), "api", rotator_id=rita),  # Rita's 3rd this hour
        Pending(fields(), "api", rotator_id=rita),  # 4th: over the limit of 3
        Pending(fields(urgent=True, impact=5), "api", rotator_id=otto),
    ]
    with session_scope(engine) as session:
        results = submit_batch(session, items)
    a, a_again, a_other, old_again, old_other, invalid, third, fourth, urgent = results
    assert isinstance(a, ObservationOut) and not a.replayed and a.text == "Refund for [email] failed twice"
    assert isinstance(a_again, ObservationOut) and a_again.replayed and a_again.id == a.id
    assert isinstance(a_other, ObservationConflict) and isinstance(old_other, ObservationConflict)
    assert isinstance(old_again, ObservationOut) and old_again.replayed and old_again.id == earlier.id
    assert isinstance(invalid, ValidationError) and "unknown product area 'moon'" in str(invalid)
    assert isinstance(third, ObservationOut) and not third.replayed and third.redactions == {"phone": 1}
    assert isinstance(fourth, RateLimited)
    assert isinstance(urgent, ObservationOut) and not urgent.replayed and urgent.target_department == "Finance"
    assert counts(engine) == (4, 4)  # earlier + a + third + urgent, each audited once
    with session_scope(engine) as session:
        mails = session.exec(select(OutboundMessage).where(OutboundMessage.kind == "escalation")).all()
        assert [m.recipient for m in mails] == ["fiona.head@example.com"]  # Finance's head (no mentor here)
        assert mails[0].idempotency_key.startswith(f"escalation:{urgent.id}:1:")
        row = session.get(Observation, third.id)
        assert row.rotation_id is not None and row.rotator_id == rita and row.source == "api"


def test_batch_rechecks_tokens_and_rotators(engine, world):
    with session_scope(engine) as session:
        rita = session.get(Employee, world["rotator"])
        _row, rita_secret = create_api_token(session, "rita-phone", rita)
        _row, hook_secret = create_api_token(session, "hook")
        _row, gone_secret = create_api_token(session, "gone")
        revoke_api_token(session, "gone")
        session.get(Employee, world["other"]).active = False
    items = [
        Pending(fields(), "api", token_hash=hash_secret(rita_secret)),
        Pending(fields(), "api", token_hash=hash_secret(rita_secret), employee_hr_id="E200"),
        Pending(fields(), "api", token_hash=hash_secret(hook_secret), employee_hr_id="E100"),
        Pending(fields(), "api", token_hash=hash_secret(hook_secret), employee_hr_id="E404"),
        Pending(fields(), "api", token_hash=hash_secret(hook_secret), employee_hr_id="E200"),  # inactive
        Pending(fields(), "api", token_hash=hash_secret(gone_secret), employee_hr_id="E100"),
        Pending(fields(), "api", token_hash=hash_secret(gone_secret)),  # revoked before anything else
        Pending(fields(), "api", token_hash=hash_secret(hook_secret)),  # an integration must name the rotator
    ]
    with session_scope(engine) as session:
        results = submit_batch(session, items)
    assert isinstance(results[0], ObservationOut) and results[0].employee_id == "E100"
    assert isinstance(results[1], WrongRotator)
    assert isinstance(results[2], ObservationOut) and results[2].employee_id == "E100"
    assert isinstance(results[3], UnknownEmployee)
    assert isinstance(results[4], RotatorInactive)
    assert isinstance(results[5], TokenRevoked) and isinstance(results[6], TokenRevoked)
    assert isinstance(results[7], UnknownEmployee) and results[7].kind == "missing"
    assert counts(engine) == (2, 2)


def test_concurrent_api_requests_through_the_writer(engine, world):
    from frontline.web.app import create_app

    with session_scope(engine) as session:
        _row, secret = create_api_token(session, "hook")
    auth = {"Authorization": f"Bearer {secret}"}

    async def run():
        transport = httpx.ASGITransport(app=create_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=auth) as client:
            requests = []
            for i in range(40):  # 20 distinct ids, each sent twice at the same time
                who = "E100" if i % 20 < 10 else "E200"
                requests.append(
                    client.post("/api/observations", json=fields(employee_id=who, client_request_id=f"c-{i % 20}"))
                )
            requests.append(client.post("/api/observations", json=fields(employee_id="E100", impact=9)))
            return await asyncio.gather(*requests)

    responses = asyncio.run(run())
    assert responses[-1].status_code == 422
    by_id: dict[str, set[int]] = {}
    statuses = []
    for r in responses[:-1]:
        statuses.append(r.status_code)
        by_id.setdefault(r.json()["client_request_id"], set()).add(r.json()["id"])
    assert sorted(statuses) == [200] * 20 + [201] * 20
    assert all(len(ids) == 1 for ids in by_id.values()) and len(by_id) == 20
    assert counts(engine) == (20, 20)


def test_writer_falls_back_when_another_writer_takes_the_same_request_id(engine, world, monkeypatch):
    """Another process stores the same ``client_request_id`` between the batch's check and its insert:
    the batch fails as a whole and the writer re-runs each item alone, so the request gets a replay of
    the other writer's row and the rest of the batch is still stored.

    The interleaving is forced, not timed: the other writer stores and commits its row from inside the
    batch's insert phase (:func:`~frontline.observations.intake.insert_rows`), after the batch has
    looked its ids up (:func:`~frontline.observations.intake.load_history`)."""
    from sqlalchemy.exc import IntegrityError

    from frontline.observations import intake
    from frontline.web import api

    rita, otto = world["rotator"], world["other"]
    theirs: list = []
    insert_failures: list = []
    alone: list = []
    real_insert, real_one = intake.insert_rows, api._one

    def other_writer_first(conn, rows):
        if not theirs:  # the batch has checked "race"; another writer takes it now, and commits
            theirs.append(None)
            with session_scope(engine) as other:
                theirs[0] = submit_batch(other, [Pending(fields(client_request_id="race"), "api", rotator_id=rita)])[0]
        try:
            return real_insert(conn, rows)
        except IntegrityError as exc:
            insert_failures.append(exc)
            raise

    def one_alone(item):
        alone.append(item.data["client_request_id"])
        return real_one(item)

    monkeypatch.setattr(intake, "insert_rows", other_writer_first)
    monkeypatch.setattr(api, "_one", one_alone)
    race, calm = api.GroupCommitWriter._write(
        [
            Pending(fields(client_request_id="race"), "api", rotator_id=rita),
            Pending(fields(client_request_id="calm"), "api", rotator_id=otto),
        ]
    )
    assert len(insert_failures) == 1  # the batch's insert met the other writer's row ...
    assert alone == ["race", "calm"]  # ... so the writer fell back to one item per transaction
    assert isinstance(theirs[0], ObservationOut) and not theirs[0].replayed
    assert isinstance(race, ObservationOut) and race.replayed and race.id == theirs[0].id
    assert isinstance(calm, ObservationOut) and not calm.replayed
    assert counts(engine) == (2, 2)


def test_batch_phases_decide_without_a_database():
    """The batch's decisions are pure functions of what it read (phases tested alone): a replay wins over
    invalid fields, a repeat inside the batch answers like the item it repeats, another rotator's id is a
    conflict, and the hourly limit counts what the batch itself accepts."""
    from datetime import UTC, date, datetime, timedelta
    from types import SimpleNamespace

    from observation_factories import ROOT

    from frontline.core.policy import load_policy
    from frontline.observations.intake import (
        BatchContext,
        History,
        RotatorRow,
        SameAs,
        answer_repeats,
        plan_batch,
        validate_items,
    )

    policy = load_policy(ROOT / "frontline.example.toml")  # 60 submissions per hour; billing -> Finance
    now = datetime(2027, 2, 1, 12, tzinfo=UTC)
    ctx = BatchContext(now, date(2027, 2, 1), policy, {"Finance": 1, "Engineering": 2}, ["Finance", "Engineering"])
    rita, otto = RotatorRow(1, "E100", "e100@example.com", True), RotatorRow(2, "E200", "e200@example.com", True)
    stored = SimpleNamespace(
        id=7,
        created_at=now - timedelta(days=1),
        text="stored before",
        suggestion=None,
        impact=3,
        customer_count=1,
        product_area="billing",
        category="bug",
        target_department_id=1,
        urgent=False,
        ack_state="new",
        redactions={},
        client_request_id="old",
        rotator_id=1,
    )
    items = [
        Pending(fields(product_area="moon", client_request_id="old"), "api", rotator_id=1),  # replay, not invalid
        Pending(fields(client_request_id="new"), "api", rotator_id=1),  # Rita's 60th this hour: stored
        Pending(fields(client_request_id="new"), "api", rotator_id=1),  # repeat inside the batch
        Pending(fields(client_request_id="new"), "api", rotator_id=2),  # someone else's id: conflict
        Pending(fields(), "api", rotator_id=1),  # Rita's 61st: over the limit
    ]
    valid = validate_items(items, ctx)
    assert isinstance(valid[0], ValidationError) and valid[1].target == "Finance"
    history = History({"old": stored}, {1: (59, now - timedelta(minutes=30))}, {1: 11})

    plan = plan_batch(items, [rita, rita, rita, otto, rita], valid, history, ctx)

    replay, first, again, conflict, over = plan.results
    assert isinstance(replay, ObservationOut) and replay.replayed and replay.id == 7
    assert replay.target_department == "Finance" and replay.employee_id == "E100"
    assert first is None and again == SameAs(1)  # the first is answered once it is stored
    assert isinstance(conflict, ObservationConflict)
    assert isinstance(over, RateLimited) and over.retry_after == 1800  # the oldest of the hour leaves in 30 min
    assert [p.index for p in plan.placed] == [1] and history.recent[1][0] == 60
    values = plan.placed[0].values
    assert values["text"] == "Refund for [email] failed twice" and values["redactions"] == {"email": 1}
    assert values["rotation_id"] == 11 and values["target_department_id"] == 1 and values["created_at"] == now

    plan.results[1] = replay.model_copy(update={"id": 8, "replayed": False})  # what the record phase answers
    answers = answer_repeats(plan.results)
    assert answers[1].id == answers[2].id == 8 and not answers[1].replayed and answers[2].replayed
