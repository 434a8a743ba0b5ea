"""Mail queued in bulk (issue 14) is byte for byte the mail queued one message at a time: invites,
updates, cancellations, check-ins and reminders decided for a whole batch of rotations (shared ``.ics``
bytes, cached header classes, reminders already queued not rendered again) against the same decisions
made one rotation per call and built the plain way (the standard library's email policy, every calendar
object built for its own message), ``enqueue_many`` against ``enqueue`` called in turn, and digests
built from the week's department index for many departments against one department per call."""

from __future__ import annotations

import email.policy
import re
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from frontline.calendar import invites
from frontline.calendar.invites import process_invites, process_reminders
from frontline.mail import compose, enqueue, enqueue_many
from frontline.mail import outbox as outbox_module
from models import Department, Employee, MentorPairing, OutboundMessage, Rotation
from models.db import _engine_for, get_engine, init_db

NOW = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)
AS_OF = date(2026, 3, 2)
MONDAY = date(2026, 3, 16)  # Berlin and New York change to summer time around these rotations
ZONES = ["Europe/Berlin", "America/New_York", "Asia/Tokyo", "UTC", "Australia/Sydney", "Europe/London"]
# Names as a roster may hold them: non-ASCII, long enough to fold the headers and the .ics lines (inside
# multi-byte characters too), and hostile (quotes, commas, semicolons, colons, CR/LF, U+2028, a
# backslash, a caret).
ROTATOR_NAMES = [
    "Zoë Ångström {i}",
    'Doe {i}, "Jane"; Bcc: x@evil.example',
    "Maximiliane Aurelia Konstantinopoulou-Wittgenstein von Hohenzollern-Ångström {i}",
    "Line\r\nBreak {i}\u2028Sep",
    "Ōtsuka Ryūnosuke 大塚龍之介 ({i}) \\ caret^ test: ok",
    "{i}",
]
MENTOR_NAMES = [
    "Mentor 0",
    "Siobhán Ní Bhriain-Ó Súilleabháin, Senior Support Engineer; EMEA",
    "Mentor\r\n2 ’quoted’ 'single'",
]


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch):
    """Every message's Date header, DTSTAMP and link signature time come from this one moment on both sides."""
    from itsdangerous import TimestampSigner

    monkeypatch.setattr(invites, "utcnow", lambda: NOW)
    monkeypatch.setattr(outbox_module, "utcnow", lambda: NOW)
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: int(NOW.timestamp()))  # signed links


def _engine(tmp_path: Path, name: str):
    engine = get_engine(f"sqlite:///{tmp_path / name}.db")
    init_db(engine)
    return engine


def _seed(engine) -> list[int]:
    """Twelve rotators in six zones over three start weeks; three mentors; nine paired rotations."""
    with Session(engine) as s:
        sales = Department(name="Sales", head_name="Hanna Head", head_email="head@example.com")
        support = Department(name="Support", head_name="Sam Lead", head_email="lead@example.com")
        s.add_all([sales, support])
        s.flush()
        mentors = [
            Employee(
                employee_id=f"S{i}",
                name=MENTOR_NAMES[i],
                email=f"mentor{i}@example.com",
                department_id=support.id,
                hire_date=date(2020, 1, 1),
                timezone=ZONES[i],
                country="DE",
                is_mentor=True,
                mentor_capacity=6,
            )
            for i in range(3)
        ]
        rotators = [
            Employee(
                employee_id=f"E{i}",
                name=ROTATOR_NAMES[i % len(ROTATOR_NAMES)].format(i=i),
                email=f"r{i}@example.com",
                department_id=sales.id,
                hire_date=date(2024, 1, 1),
                timezone=ZONES[i % len(ZONES)],
                country="DE",
            )
            for i in range(12)
        ]
        s.add_all(mentors + rotators)
        s.flush()
        rotations = []
        for i, person in enumerate(rotators):
            start = MONDAY + timedelta(weeks=i % 3)
            rotations.append(
                Rotation(employee_id=person.id, start=start, end=start + timedelta(days=27), kind="cycle", due=start)
            )
        s.add_all(rotations)
        s.flush()
        for i, rotation in enumerate(rotations[:9]):
            s.add(
                MentorPairing(
                    rotation_id=rotation.id,
                    mentor_id=mentors[i % 3].id,
                    checkin_weekday=i % 5,
                    checkin_time_utc=f"{8 + i % 4:02d}:00",
                )
            )
        s.commit()
        return [r.id for r in rotations if r.id is not None]


def _change(engine, ids: list[int]) -> None:
    """What happens between two runs: one rotation moves, one is cancelled, one gets another mentor."""
    with Session(engine) as s:
        moved, cancelled, remapped = (s.get(Rotation, i) for i in ids[:3])
        assert moved and cancelled and remapped
        moved.start += timedelta(weeks=1)
        moved.end += timedelta(weeks=1)
        cancelled.status = "cancelled"
        old = s.exec(select(MentorPairing).where(MentorPairing.rotation_id == remapped.id)).one()
        old.status = "replaced"
        s.add(
            MentorPairing(
                rotation_id=remapped.id, mentor_id=old.mentor_id % 3 + 1, checkin_weekday=3, checkin_time_utc="14:00"
            )
        )
        s.add_all([moved, cancelled, remapped, old])
        s.commit()


@contextmanager
def plain_path(plain: bool):
    """With ``plain``, messages are built the plain way: the standard library's email policy (a new
    header class per header), every calendar object built by icalendar for its own message (no shared
    ``.ics`` bytes, no cached VTIMEZONE, not ``ics.itip_bytes``) and every message written by the standard
    library's generator (``message.as_bytes()``, not ``frontline.mail.mime``)."""
    if not plain:
        yield
        return
    from frontline.calendar import ics

    saved = ics.MAIL_POLICY, outbox_module._POLICY, ics._itip_bytes, outbox_module._as_bytes
    ics.MAIL_POLICY = email.policy.default
    outbox_module._POLICY = email.policy.default.clone(refold_source="none")
    ics._itip_bytes = _uncached_ics
    outbox_module._as_bytes = lambda message: message.as_bytes()  # the standard library's generator
    try:
        yield
    finally:
        ics.MAIL_POLICY, outbox_module._POLICY, ics._itip_bytes, outbox_module._as_bytes = saved


def _uncached_ics(obj, stamp) -> bytes:
    from frontline.calendar import ics

    ics._timezone.cache_clear()
    return ics.itip_calendar(obj, stamp=stamp).to_ical()


def _invite(engine, batches: list[list[int]]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for batch in batches:
        with Session(engine) as s, plain_path(len(batches) > 1):
            counts = process_invites(s, batch, as_of=AS_OF, announce_weeks=8).as_dict()
            s.commit()
        for k, v in counts.items():
            totals[k] = totals.get(k, 0) + v
    return totals


def _remind(engine, batches: list[list[int]], day: date) -> dict[str, int]:
    totals: dict[str, int] = {}
    for batch in batches:
        with Session(engine) as s, plain_path(len(batches) > 1):
            counts = process_reminders(s, batch, as_of=day, days_before=[7, 1])
            s.commit()
        for k, v in counts.items():
            totals[k] = totals.get(k, 0) + v
    return totals


def _without_boundaries(mime: bytes) -> bytes:
    """The MIME parts' boundaries are random (Python's email generator); number them in order of use."""
    seen: dict[bytes, bytes] = {}
    return re.sub(rb"={15}\d+==", lambda m: seen.setdefault(m.group(0), b"boundary-%d" % len(seen)), mime)


def _outbox(engine) -> dict[str, tuple[str, str, str, bytes]]:
    with Session(engine) as s:
        rows = s.exec(select(OutboundMessage)).all()
        return {r.idempotency_key: (r.kind, r.recipient, r.subject, _without_boundaries(r.mime)) for r in rows}


def test_invites_and_reminders_queued_in_bulk_are_the_ones_queued_one_by_one(sqlite_settings, tmp_path):
    bulk, single = _engine(tmp_path, "bulk"), _engine(tmp_path, "single")
    try:
        ids = _seed(bulk)
        assert _seed(single) == ids
        for step in ("first", "again", "changed"):
            if step == "changed":
                _change(bulk, ids)
                _change(single, ids)
            counted = _invite(bulk, [ids]), _invite(single, [[i] for i in ids])
            assert counted[0] == counted[1]
            if step == "first":
                assert counted[0]["requests"] == 12 and counted[0]["checkin_requests"] == 18
            if step == "again":
                assert counted[0]["queued"] == 0  # nothing twice
            if step == "changed":
                assert counted[0]["cancels"] == 1 and counted[0]["updates"] >= 1
        for day in (MONDAY - timedelta(days=7), MONDAY - timedelta(days=1), MONDAY, MONDAY + timedelta(days=3)):
            reminded = _remind(bulk, [ids], day), _remind(single, [[i] for i in ids], day)
            assert reminded[0] == reminded[1]
        a, b = _outbox(bulk), _outbox(single)
        assert len(a) > 50 and a.keys() == b.keys()
        for key in a:
            if a[key] != b[key]:
                import difflib

                diff = difflib.unified_diff(
                    a[key][3].decode().splitlines(), b[key][3].decode().splitlines(), lineterm=""
                )
                raise AssertionError(key + "\n" + "\n".join(list(diff)[:40]))
    finally:
        bulk.dispose()
        single.dispose()
        _engine_for.cache_clear()


def test_enqueue_many_is_enqueue_called_in_turn(sqlite_settings, tmp_path):
    """Keys queued before and keys repeated within the batch are skipped the same way; the rows and
    their bytes are the same."""
    bulk, single = _engine(tmp_path, "bulk"), _engine(tmp_path, "single")

    def messages():
        items = []
        for i in range(1203):  # more than two chunks of 500
            key = f"note:{i % 1100}"  # 103 keys twice in the batch
            msg = compose(to=f"p{i}@example.com", subject=f"Note {i}", text=f"Hello {i}\n", html=f"<p>Hello {i}</p>")
            items.append((msg, "note", key))
        return items

    try:
        for engine in (bulk, single):  # queued earlier: skipped by both
            with Session(engine) as s:
                enqueue(
                    s,
                    compose(to="early@example.com", subject="Early", text="x\n"),
                    kind="note",
                    idempotency_key="note:7",
                )
                s.commit()
        with Session(bulk) as s:
            queued = enqueue_many(s, messages())
            s.commit()
        with Session(single) as s:
            one_by_one = [key for msg, kind, key in messages() if enqueue(s, msg, kind=kind, idempotency_key=key)]
            s.commit()
        assert queued == one_by_one and len(queued) == 1099
        assert _outbox(bulk) == _outbox(single)
    finally:
        bulk.dispose()
        single.dispose()
        _engine_for.cache_clear()


def test_digests_built_from_the_department_index_are_the_ones_built_one_department_at_a_time(sqlite_settings, tmp_path):
    """The week is indexed by department once (``WeekData.by_department``); every department's digest
    queued in one batch is byte for byte the one queued when its department is loaded alone."""
    from frontline.digests.loading import compute_themes
    from frontline.digests.queue import queue_digests
    from tests.test_digests import WEEK, _make_company

    batch, alone = _engine(tmp_path, "batch"), _engine(tmp_path, "alone")
    try:
        ids = _make_company(batch)
        assert _make_company(alone) == ids
        with Session(batch) as s:
            themes = compute_themes(s, WEEK, persist=True)
            rows = [o.row() for o in queue_digests(s, WEEK, department_ids=sorted(ids.values()), themes=themes)]
            s.commit()
        one_by_one = []
        with Session(alone) as s:
            themes = compute_themes(s, WEEK, persist=True)
            s.commit()
        for department_id in sorted(ids.values()):
            with Session(alone) as s:
                one_by_one += [o.row() for o in queue_digests(s, WEEK, department_ids=[department_id], themes=themes)]
                s.commit()
        assert rows == one_by_one
        a, b = _outbox(batch), _outbox(alone)
        assert len(a) >= 2 and a == b
    finally:
        batch.dispose()
        alone.dispose()
        _engine_for.cache_clear()


def test_digests_queued_in_bulk_are_the_ones_enqueued_one_by_one(sqlite_settings, tmp_path):
    """``queue_digests`` writes a batch's digests with one existence query and one multi-row insert
    (``enqueue_many``); the outbox is byte for byte the one ``enqueue`` writes message by message, each
    department's week loaded alone; and a second run queues nothing on either side."""
    from frontline.digests.content import build_digest
    from frontline.digests.loading import compute_themes, load_week
    from frontline.digests.queue import compose_digest, idempotency_key, queue_digests, recipients_for
    from tests.test_digest_scale import WEEK, make_departments

    bulk, single = _engine(tmp_path, "bulk"), _engine(tmp_path, "single")
    try:
        ids = make_departments(bulk, 6)
        assert make_departments(single, 6) == ids
        with Session(bulk) as s:
            themes = compute_themes(s, WEEK, persist=True)
            queued = sum(o.queued for o in queue_digests(s, WEEK, department_ids=ids, themes=themes))
            assert sum(o.queued for o in queue_digests(s, WEEK, department_ids=ids, themes=themes)) == 0
            s.commit()
        with Session(single) as s:
            themes = compute_themes(s, WEEK, persist=True)
            s.commit()
        one_by_one = 0
        for department_id in ids:
            with Session(single) as s:
                data = load_week(s, WEEK, department_ids=[department_id], themes=themes)
                dept = data.departments[department_id]
                content = build_digest(data, dept)
                for recipient in recipients_for(dept, data.opt_outs):
                    message = compose_digest(dept, content, recipient)
                    key = idempotency_key(department_id, WEEK, recipient)
                    one_by_one += enqueue(s, message, kind="digest", idempotency_key=key) is not None
                s.commit()
        a, b = _outbox(bulk), _outbox(single)
        assert queued == one_by_one == len(a) >= 8
        assert a == b
    finally:
        bulk.dispose()
        single.dispose()
        _engine_for.cache_clear()
