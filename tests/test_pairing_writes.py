"""Pairing's write path (issue 13): the new pairings go in as one bulk insert (``models.db.bulk_insert``), not one
ORM object each. The stored rows must be exactly what the ORM path stored (same columns, same raw driver values,
same check-in slots, sequence and reason of a replacement), the run's result and audit must name the ids the rows
got, and a re-run changes nothing; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import text
from sqlmodel import select

from frontline.core.policy import parse_policy
from frontline.mentors.checkins import slot_local, zone_key
from frontline.mentors.service import pair_mentors
from models import Absence, AuditEvent, Employee, MentorPairing, Rotation, session_scope
from tests.test_mentoring import AS_OF, POLICY, _company, _rotation

COLUMNS = (
    "rotation_id, mentor_id, status, score, checkin_weekday, checkin_time_utc, sequence, reason, response, "
    "responded_at, created_at, updated_at"
)


def _raw(engine, where: str) -> list[tuple]:
    """Pairing rows as the database holds them (raw driver values), without ids, by rotation."""
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(text(f"select {COLUMNS} from mentorpairing where {where} order by rotation_id, id"))
        ]


def _setup(engine) -> tuple[dict[int, int], int]:
    """Four planned rotations and one whose active mentor (bert) is absent: it must be replaced. Returns the
    rotations' ids (rotation id -> employee id) and the replaced pairing's id."""
    with session_scope(engine) as s:
        p = _company(s)
        rots = [
            _rotation(s, p[k], date(2027, 3, 1) + timedelta(weeks=i)) for i, k in enumerate(["dora", "emil", "finn"])
        ]
        rots.append(_rotation(s, p["emil"], date(2027, 3, 29)))  # a DST week in Europe and the US
        moved = _rotation(s, p["finn"], date(2027, 6, 7))
        rots.append(moved)
        old = MentorPairing(rotation_id=moved.id, mentor_id=p["bert"].id, checkin_weekday=1, checkin_time_utc="11:00")
        s.add(old)
        s.add(Absence(employee_id=p["bert"].id, start=date(2027, 6, 1), end=date(2027, 6, 30)))
        s.flush()
        return {r.id: r.employee_id for r in rots}, old.id


@pytest.mark.parametrize("review", [False, True])
def test_new_pairings_are_stored_exactly_as_the_orm_stored_them(engine, settings, review):
    policy = parse_policy({"support_department": "Support", "mentoring": {"review": review}}) if review else POLICY
    status = "proposed" if review else "active"
    rotations, old_id = _setup(engine)
    with session_scope(engine) as s:
        dry = pair_mentors(s, policy, AS_OF, dry_run=True)
    with session_scope(engine) as s:
        result = pair_mentors(s, policy, AS_OF)
    assert len(result.created) == len(dry.created) == len(rotations)
    assert len(result.replaced) == 1 and result.replaced[0]["pairing_id"] == old_id

    with session_scope(engine) as s:
        stored = {p.rotation_id: p for p in s.exec(select(MentorPairing).where(MentorPairing.status == status)).all()}
        names = {e.id: e for e in s.exec(select(Employee)).all()}
        rots = {r.id: r for r in s.exec(select(Rotation)).all()}
        events = s.exec(select(AuditEvent).where(AuditEvent.subject_type == "pairing")).all()
        assert set(stored) == set(rotations)
        for row, wet in zip(dry.created, result.created, strict=True):
            p = stored[row["rotation_id"]]
            mentor = names[p.mentor_id]
            assert wet["pairing_id"] == p.id  # the result names the row's id
            assert (row["mentor"], row["cost"]) == (mentor.name, p.score)  # the solver's choice and cost
            first = slot_local(rots[p.rotation_id], p, mentor.timezone)
            assert first is not None and row["checkin"] == f"{first:%a %H:%M} {zone_key(first)}"  # the chosen slot
            assert p.status == status and p.response is None and p.responded_at is None
            assert p.created_at is not None and p.created_at == p.updated_at
            if p.rotation_id == stored_old_rotation(s, old_id):
                assert p.sequence == 1 and p.reason == f"replaces pairing {old_id}: {result.replaced[0]['reason']}"
            else:
                assert p.sequence == 0 and p.reason is None
        created = {e.subject_id for e in events if e.action == "pairing.created"}
        proposed = {e.subject_id for e in events if e.action == "pairing.proposed"}
        assert created == {str(stored[stored_old_rotation(s, old_id)].id)}
        assert proposed == ({str(p.id) for p in stored.values()} if review else set())

        # The same rows through the ORM (the path before the bulk insert), for other rotations: the raw values
        # the database holds must be the same, column by column (timestamps alike in type and format).
        stamp = next(iter(stored.values())).created_at
        for p in stored.values():
            s.add(
                MentorPairing(
                    rotation_id=p.rotation_id,
                    mentor_id=p.mentor_id,
                    status="orm",
                    score=p.score,
                    checkin_weekday=p.checkin_weekday,
                    checkin_time_utc=p.checkin_time_utc,
                    sequence=p.sequence,
                    reason=p.reason,
                    created_at=stamp,
                    updated_at=stamp,
                )
            )
    bulk = _raw(engine, f"status = '{status}'")
    orm = _raw(engine, "status = 'orm'")
    assert [r[:2] + r[3:] for r in bulk] == [r[:2] + r[3:] for r in orm]
    assert [type(v) for v in bulk[0]] == [type(v) for v in orm[0]]

    with session_scope(engine) as s:  # a re-run changes nothing
        again = pair_mentors(s, policy, AS_OF)
    assert (len(again.created), len(again.replaced)) == (0, 0)


def stored_old_rotation(session, old_id: int) -> int:
    return session.get(MentorPairing, old_id).rotation_id
