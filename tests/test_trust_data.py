"""Issue 12, *Data and messages*: one regression test (or a few) per item, on SQLite and PostgreSQL where
the database matters. Each says what it guards; the model-based test of item 2 is
``tests/test_told_matches_database.py`` and the fault-injection suite ``tests/test_faults.py``."""

from __future__ import annotations

import threading
from datetime import date, timedelta
from email import message_from_bytes, policy

import pytest
from icalendar import Calendar
from mailserver import SMTPServer
from sqlmodel import Session, select

from frontline.mail import compose, enqueue
from frontline.mail.delivery import claim_batch, deliver_pending, send_claimed
from frontline.mail.transport import SMTPTransport
from models import AuditEvent, Department, Employee, MentorPairing, OutboundMessage, Rotation, utcnow


@pytest.fixture
def smtp():
    with SMTPServer() as server:
        yield server


def outbox(engine) -> list[OutboundMessage]:
    with Session(engine) as session:
        return list(session.exec(select(OutboundMessage).order_by(OutboundMessage.id)).all())


def queue(engine, n: int, kind: str = "test") -> list[str]:
    """``n`` messages of ``kind``, committed; returns their Message-IDs."""
    ids = []
    with Session(engine) as session:
        for i in range(n):
            row = enqueue(
                session,
                compose(to=f"p{i}@example.com", subject=f"{kind} {i}", text="x\n"),
                kind=kind,
                idempotency_key=f"{kind}:{i}",
            )
            assert row is not None
            ids.append(row.message_id)
        session.commit()
    return ids


# --- item 2: outbox rows live and die with the caller's transaction --------------------------------


def test_a_queued_message_is_rolled_back_with_the_callers_transaction(engine, settings):
    """On SQLite the outbox row used to survive the rollback when it was the first thing written (its
    savepoint committed on its own), so an invite went out for dates the database never recorded and the
    corrected invite collided with its idempotency key."""
    with Session(engine) as session:
        first = compose(to="ann@example.com", subject="Your support rotation: Monday 7 June", text="7 June\n")
        assert enqueue(session, first, kind="invite", idempotency_key="invite:1:0") is not None
        session.rollback()  # the job failed after queuing: nothing of it may remain
    assert outbox(engine) == []
    with Session(engine) as session:
        fixed = compose(to="ann@example.com", subject="Your support rotation: Monday 14 June", text="14 June\n")
        assert enqueue(session, fixed, kind="invite", idempotency_key="invite:1:0") is not None
        session.commit()
    assert [r.subject for r in outbox(engine)] == ["Your support rotation: Monday 14 June"]


def test_an_invite_run_that_fails_before_its_commit_leaves_no_invite(engine, settings):
    """The same through the invite job: it queues the invite, then dies before committing."""
    from frontline.calendar.invites import process_invites
    from models import session_scope

    rotation_id = _rotation(engine, date(2031, 6, 2))

    class Died(Exception):
        pass

    with pytest.raises(Died), session_scope(engine) as session:
        process_invites(session, [rotation_id], as_of=date(2031, 5, 26))
        assert len(session.exec(select(OutboundMessage)).all()) == 1
        raise Died()
    assert outbox(engine) == []
    with Session(engine) as session:
        rot = session.get(Rotation, rotation_id)
        assert rot is not None and rot.announced_state is None and rot.sequence == 0


def test_a_savepoint_opened_before_any_write_does_not_commit_on_its_own(engine):
    """The root cause on SQLite (pysqlite begins a transaction only at the first write): a SAVEPOINT
    started one of its own and its RELEASE committed. Observation intake uses savepoints too."""
    with Session(engine) as session:
        session.exec(select(Department)).all()  # reads only so far
        with session.begin_nested():
            session.add(AuditEvent(actor="test", action="test.savepoint"))
        session.rollback()
    with Session(engine) as session:
        assert session.exec(select(AuditEvent)).all() == []


def test_concurrent_enqueues_of_one_key_queue_it_once(engine, settings):
    """Without a savepoint, the unique key still decides between two transactions queuing the same key."""
    barrier = threading.Barrier(2)
    outcomes: list[bool] = []

    def writer(i: int) -> None:
        with Session(engine) as session:
            session.exec(select(Department)).all()
            barrier.wait()
            row = enqueue(
                session, compose(to="a@example.com", subject=f"s{i}", text="t"), kind="t", idempotency_key="same"
            )
            session.commit()
            outcomes.append(row is not None)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes) == [False, True]
    assert len(outbox(engine)) == 1


def _rotation(engine, start: date, name: str = "Ann Rot", mentor_name: str | None = None) -> int:
    """A Sales rotator with one draft rotation starting ``start`` (a Monday), optionally with a mentor
    and a check-in slot; returns the rotation id."""
    with Session(engine) as s:
        sales = Department(name="Sales", head_name="H", head_email="head@example.com")
        support = Department(name="Support", head_name="S", head_email="lead@example.com")
        s.add_all([sales, support])
        s.flush()
        rotator = Employee(
            employee_id="E1",
            name=name,
            email="ann@example.com",
            department_id=sales.id,
            hire_date=date(2020, 1, 1),
            timezone="Europe/Berlin",
            country="DE",
        )
        s.add(rotator)
        s.flush()
        rot = Rotation(employee_id=rotator.id, start=start, end=start + timedelta(days=27), kind="cycle", due=start)
        s.add(rot)
        s.flush()
        if mentor_name is not None:
            mentor = Employee(
                employee_id="S1",
                name=mentor_name,
                email="max@example.com",
                department_id=support.id,
                hire_date=date(2015, 1, 1),
                timezone="Europe/Berlin",
                country="DE",
                is_mentor=True,
                mentor_capacity=1,
            )
            s.add(mentor)
            s.flush()
            s.add(MentorPairing(rotation_id=rot.id, mentor_id=mentor.id, checkin_weekday=2, checkin_time_utc="09:00"))
        rotation_id = rot.id
        s.commit()
    assert rotation_id is not None
    return rotation_id


# --- item 3: leases renewed while a sender lives; fencing; a bounded immediate delivery -----------------


def test_a_sender_whose_lease_ran_out_mid_batch_stops_after_the_message_in_flight(engine, settings, smtp):
    """Sender A is slow (the server takes 0.4 s per message) and, from sender B's point of view, its lease
    has run out (B's clock is past it: A was frozen, or its lease too short). B takes the batch over.
    A must not go on sending what B now holds: only the message A had in flight may arrive twice. Before
    fencing, A sent its whole batch and B sent it again (the issue saw 45 duplicates)."""
    from frontline.mail.delivery import LEASE

    ids = queue(engine, 6)
    smtp.handler.delay = 0.4
    t0 = utcnow()
    a_result = {}

    def sender_a() -> None:
        transport = SMTPTransport(smtp.url, rate_per_second=0)
        try:
            a_result["r"] = deliver_pending(engine, transport, batch_size=10, now=t0)
        finally:
            transport.close()

    a = threading.Thread(target=sender_a)
    a.start()
    assert smtp.handler.accepted.wait(10)  # A is under way (its first message is accepted)
    b = SMTPTransport(smtp.url, rate_per_second=0)
    try:
        b_result = deliver_pending(engine, b, batch_size=10, now=t0 + LEASE + timedelta(minutes=1))
    finally:
        b.close()
    a.join(30)
    got = smtp.handler.message_ids()
    assert sorted(set(got)) == sorted(ids)  # nothing lost
    duplicates = len(got) - len(set(got))
    assert duplicates <= 1, f"{duplicates} messages sent twice"
    assert a_result["r"].taken_over >= 1 and b_result.sent >= 4
    assert all(r.state == "sent" and r.lease_token is None for r in outbox(engine))


def test_a_live_sender_renews_its_lease_so_nobody_takes_over_a_slow_batch(engine, settings, smtp):
    """Real time: the lease is 1 s, the server needs 0.3 s per message, the batch of 8 takes ~2.4 s. A
    second sender polling all along finds nothing to take while the first is alive."""
    ids = queue(engine, 8)
    smtp.handler.delay = 0.3
    lease = timedelta(seconds=1)
    done = threading.Event()

    def sender_a() -> None:
        transport = SMTPTransport(smtp.url, rate_per_second=0)
        try:
            deliver_pending(engine, transport, batch_size=8, lease=lease)
        finally:
            transport.close()
            done.set()

    a = threading.Thread(target=sender_a)
    a.start()
    b = SMTPTransport(smtp.url, rate_per_second=0)
    taken = 0
    try:
        while not done.wait(0.2):
            taken += deliver_pending(engine, b, batch_size=8, lease=lease).claimed
    finally:
        b.close()
    a.join(30)
    assert taken == 0
    assert sorted(smtp.handler.message_ids()) == sorted(ids)


def test_a_frozen_senders_late_outcome_does_not_overwrite_the_new_holders(engine, settings, smtp):
    """Fencing also guards the outcome: a sender that lost its rows cannot mark them sent or failed."""
    queue(engine, 2)
    t0 = utcnow()
    frozen = claim_batch(engine, 10, now=t0, lease=timedelta(seconds=30))
    later = claim_batch(engine, 10, now=t0 + timedelta(seconds=31))
    assert sorted(later.ids) == sorted(frozen.ids) and later.token != frozen.token
    transport = SMTPTransport(smtp.url, rate_per_second=0)
    try:
        assert send_claimed(engine, frozen, transport).taken_over == 2  # nothing sent by the frozen sender
        assert smtp.handler.message_ids() == []
        assert send_claimed(engine, later, transport).sent == 2
    finally:
        transport.close()
    assert len(smtp.handler.message_ids()) == 2


def test_the_sign_in_request_delivers_only_sign_in_links_at_once(engine, settings, smtp, monkeypatch):
    """The web app's immediate delivery after a sign-in request used to run a whole outbox sender (200 of
    anything due) in a background task; now it sends only the due sign-in links, a small batch."""
    import re

    from fastapi.testclient import TestClient

    from frontline.core.settings import get_settings
    from frontline.web.app import create_app
    from models import ConsoleUser

    monkeypatch.setenv("FRONTLINE_SMTP_URL", smtp.url)
    get_settings.cache_clear()
    queue(engine, 30, kind="digest")
    with Session(engine) as s:
        s.add(ConsoleUser(email="hr@example.com"))
        s.commit()
    with TestClient(create_app()) as client:
        page = client.get("/console/signin").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        assert client.post("/console/signin", data={"email": "hr@example.com", "csrf_token": token}).status_code == 200
    sent = [m["Subject"] for m in smtp.handler.messages]
    assert sent == ["Your Frontline sign-in link"]
    assert sum(r.state == "pending" for r in outbox(engine) if r.kind == "digest") == 30


# --- item 4: control characters and line separators -------------------------------------------------


EMPLOYEE_HEADER = "employee_id,name,email,department,hire_date,timezone,country\n"
DEPARTMENTS = "department,head_name,head_email\nSales,Hanna,head@example.com\n"


def _problems(employees: str, departments: str = DEPARTMENTS) -> list[str]:
    from frontline.core.errors import RosterError
    from frontline.people.roster_csv import parse_roster

    try:
        parse_roster(("departments.csv", departments), ("employees.csv", employees))
    except RosterError as exc:
        return exc.problems
    return []


@pytest.mark.parametrize(
    ("cell", "named"),
    [
        ('"Ann\r\nBcc: x@evil.example"', "U+000D (carriage return)"),
        ('"Ann\nSmith"', "U+000A (line feed)"),
        ("Ann\tSmith", "U+0009 (tab)"),
        ("Ann\x0bSmith", "U+000B"),
        ("Ann\x85Smith", "U+0085 (next line)"),
        ("Ann\u2028Smith", "line separator U+2028"),
        ("Ann\u2029Smith", "paragraph separator U+2029"),
        ("Ann\x1cSmith", "U+001C"),
    ],
    ids=["crlf", "lf", "tab", "vt", "nel", "u2028", "u2029", "fs"],
)
def test_control_and_line_separator_characters_are_refused_with_file_row_column(cell, named):
    """Names with CR/LF passed the check and broke every invite run later; U+2028 / U+0085 in unquoted
    cells split the row into dozens of misleading errors. Now: exactly one problem, on the right row."""
    employees = (
        EMPLOYEE_HEADER
        + "E1,Bob,bob@example.com,Sales,2020-01-01,Europe/Berlin,DE\n"
        + f"E2,{cell},ann@example.com,Sales,2020-01-01,Europe/Berlin,DE\n"
        + "E3,Cy,cy@example.com,Sales,2020-01-01,Europe/Berlin,DE\n"
    )
    problems = _problems(employees)
    assert len(problems) == 1, problems
    assert problems[0].startswith("employees.csv:3: name: contains ") and named in problems[0], problems


def test_every_roster_field_is_checked_departments_and_absences_included():
    from frontline.core.errors import RosterError
    from frontline.people.roster_csv import parse_roster

    departments = 'department,head_name,head_email\nSales,"Hanna\nHead",head@example.com\n'
    employees = EMPLOYEE_HEADER + "E1,Bob,bob@example.com,Sales,2020-01-01,Europe/Berlin,DE\n"
    absences = "employee_id,start,end,reason\nE1,2031-01-01,2031-01-02,holiday\u2028trip\n"
    with pytest.raises(RosterError) as caught:
        parse_roster(("departments.csv", departments), ("employees.csv", employees), ("absences.csv", absences))
    assert caught.value.problems == [
        "departments.csv:2: head_name: contains the control character U+000A (line feed); remove it (every field "
        "is one line of text)",
        "absences.csv:2: reason: contains the line separator U+2028; remove it (every field is one line of text)",
    ]


def test_names_with_line_breaks_already_in_the_database_still_get_safe_invites(engine, settings, smtp):
    """Data from before the check (or typed elsewhere): every header built from a name is made one line.
    The invite run used to fail with 'Header values may not contain linefeed'."""
    from frontline.calendar.invites import process_invites
    from models import session_scope

    evil = "Ann\r\nBcc: victim@evil.example\u2028X-Injected: 1"
    rotation_id = _rotation(engine, date(2031, 6, 2), name=evil, mentor_name="Max\x85Mentor\nBcc: m@evil.example")
    with session_scope(engine) as session:
        counts = process_invites(session, [rotation_id], as_of=date(2031, 5, 26))
    assert counts.requests == 1 and counts.checkin_requests == 2
    transport = SMTPTransport(smtp.url, rate_per_second=0)
    try:
        assert deliver_pending(engine, transport).sent == 3
    finally:
        transport.close()
    for raw in smtp.handler.raw:
        msg = message_from_bytes(raw, policy=policy.default)
        assert msg["Bcc"] is None and msg["X-Injected"] is None
        for header in ("To", "Subject", "From"):
            assert not any(c in str(msg[header]) for c in "\r\n\u2028\u2029\x85"), (header, msg[header])
        part = next(p for p in msg.walk() if p.get_content_type() == "text/calendar")
        cal = Calendar.from_ical(part.get_payload(decode=True))
        for event in cal.walk("VEVENT"):
            for attendee in event.get("ATTENDEE") if isinstance(event.get("ATTENDEE"), list) else [event["ATTENDEE"]]:
                cn = attendee.params.get("CN", "")
                assert not any(c in cn for c in "\r\n\u2028\u2029\x85"), cn
    envelopes = {to for _sender, tos in smtp.handler.envelopes for to in tos}
    assert envelopes == {"ann@example.com", "max@example.com"}  # nobody else received anything


def test_compose_makes_every_header_one_line():
    from email.headerregistry import Address

    msg = compose(
        to=[
            Address(display_name="Eve\u2028Bcc: x@evil.example", addr_spec="eve@example.com"),
            "Bob\x85 <bob@example.com>",
        ],
        subject="Hello\nBcc: y@evil.example",
        text="body\n",
        cc=["Cy\x85 <cy@example.com>"],
        headers={"X-Frontline-Observation": "1\r\nX-Evil: 1"},
    )
    parsed = message_from_bytes(msg.as_bytes(), policy=policy.default)
    assert parsed["Bcc"] is None and parsed["X-Evil"] is None
    assert str(parsed["Subject"]) == "Hello Bcc: y@evil.example"
    assert [a.addr_spec for a in parsed["To"].addresses] == ["eve@example.com", "bob@example.com"]
