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


# --- item 1: a partial roster is refused unless the leavers are confirmed ---------------------------------

DEPARTMENT_ROWS = "department,head_name,head_email\nSales,Hanna,head@example.com\nSupport,Sam,lead@example.com\n"


def employees_csv(ids: range) -> str:
    rows = "".join(f"E{i},Person {i},p{i}@example.com,Sales,2020-01-01,Europe/Berlin,DE\n" for i in ids)
    return EMPLOYEE_HEADER + rows


def _import(engine, employees: str, departments: str = DEPARTMENT_ROWS, **options):
    from frontline.people.roster import import_roster
    from models import session_scope

    with session_scope(engine) as session:
        return import_roster(
            session, ("departments.csv", departments), ("employees.csv", employees), today=date(2031, 3, 3), **options
        )


def _company_of_80_with_future_rotations(engine) -> None:
    _import(engine, employees_csv(range(80)))
    with Session(engine) as s:
        for e in s.exec(select(Employee).order_by(Employee.id)).all()[2:66]:  # 64 of those who will leave
            s.add(
                Rotation(
                    employee_id=e.id, start=date(2031, 4, 7), end=date(2031, 5, 4), kind="cycle", due=date(2031, 4, 7)
                )
            )
        s.commit()


def _state(engine) -> tuple[int, int]:
    """(active employees, cancelled rotations)."""
    with Session(engine) as s:
        active = len(s.exec(select(Employee).where(Employee.active == True)).all())  # noqa: E712
        cancelled = len(s.exec(select(Rotation).where(Rotation.status == "cancelled")).all())
    return active, cancelled


def test_a_partial_employees_file_is_refused_naming_the_count(engine, settings):
    """The issue's case: a two-row employees.csv marked 78 of 80 people as left and cancelled 64 future
    rotations without a warning. Now the import is refused, naming the counts, and nothing is written."""
    from frontline.core.errors import LeaversNotConfirmed

    _company_of_80_with_future_rotations(engine)
    with pytest.raises(LeaversNotConfirmed) as refused:
        _import(engine, employees_csv(range(2)))
    assert (refused.value.count, refused.value.active, refused.value.allowed) == (78, 80, 8)
    assert refused.value.problems[0].startswith(
        "employees.csv: this import would mark 78 of 80 active employees as left and cancel 64 future rotation(s); "
        "more than 8 (policy roster: 10% of active staff, at least 5) needs an explicit confirmation of the count."
    )
    assert _state(engine) == (80, 0)
    import pickle  # a flow run's result may be pickled: the refusal survives it whole

    copy = pickle.loads(pickle.dumps(refused.value))
    assert (copy.count, copy.problems, str(copy)) == (78, refused.value.problems, str(refused.value))
    with pytest.raises(LeaversNotConfirmed):  # confirming fewer than would leave is not a confirmation
        _import(engine, employees_csv(range(2)), allow_leavers=77)
    assert _state(engine) == (80, 0)
    result = _import(engine, employees_csv(range(2)), allow_leavers=78)
    assert (result.employees_left, result.rotations_cancelled) == (78, 64)
    assert _state(engine) == (2, 64)


def test_a_few_leavers_need_no_confirmation(engine, settings):
    """Up to the policy's allowance (max(5, 10%)) an import goes through as before."""
    _import(engine, employees_csv(range(80)))
    assert _import(engine, employees_csv(range(72))).employees_left == 8  # 10% of 80
    _import(engine, employees_csv(range(6)), allow_leavers=66)
    assert _import(engine, employees_csv(range(1))).employees_left == 5  # at least five, however small


def test_the_threshold_is_the_policy(engine, settings):
    from observation_factories import write_policy

    from frontline.core.errors import LeaversNotConfirmed

    write_policy(settings, "")
    text = settings.policy_path.read_text().replace("max_leaver_fraction = 0.1", "max_leaver_fraction = 0.5")
    settings.policy_path.write_text(text.replace("min_leavers_allowed = 5", "min_leavers_allowed = 0"))
    _import(engine, employees_csv(range(10)))
    assert _import(engine, employees_csv(range(5))).employees_left == 5  # 50% of 10
    with pytest.raises(LeaversNotConfirmed):
        _import(engine, employees_csv(range(2)))  # 3 of 5 > 2


def test_roster_check_and_import_on_the_command_line(engine, settings, tmp_path):
    from typer.testing import CliRunner

    from frontline.cli import app

    _company_of_80_with_future_rotations(engine)
    (tmp_path / "departments.csv").write_text(DEPARTMENT_ROWS)
    (tmp_path / "employees.csv").write_text(employees_csv(range(2)))
    files = ["--departments", str(tmp_path / "departments.csv"), "--employees", str(tmp_path / "employees.csv")]
    runner = CliRunner()
    check = runner.invoke(app, ["roster", "check", *files])
    assert check.exit_code == 1, check.output
    assert "would mark 78 of 80 active employees as left and cancel 64 future rotation(s)" in check.stderr
    refused = runner.invoke(app, ["roster", "import", "--no-flow", *files])
    assert refused.exit_code == 1 and "--allow-leavers 78" in refused.stderr
    assert _state(engine) == (80, 0)
    confirmed_check = runner.invoke(app, ["roster", "check", *files, "--allow-leavers", "78"])
    assert confirmed_check.exit_code == 0, confirmed_check.output
    assert confirmed_check.stdout.splitlines() == [
        "roster OK: 2 departments, 2 employees",
        "against the database: 78 of 80 active employees would be marked as left (64 future rotation(s) cancelled)",
    ]
    done = runner.invoke(app, ["roster", "import", "--no-flow", *files, "--allow-leavers", "78"])
    assert done.exit_code == 0, done.output
    assert _state(engine) == (2, 64)


@pytest.mark.prefect
def test_the_import_flow_takes_the_confirmation(sqlite_engine, sqlite_settings, prefect_harness, tmp_path):
    from flows.roster import import_roster_flow
    from frontline.core.errors import LeaversNotConfirmed

    _import(sqlite_engine, employees_csv(range(40)))
    (tmp_path / "departments.csv").write_text(DEPARTMENT_ROWS)
    (tmp_path / "employees.csv").write_text(employees_csv(range(3)))
    paths = dict(departments=str(tmp_path / "departments.csv"), employees=str(tmp_path / "employees.csv"))
    with pytest.raises(LeaversNotConfirmed):
        import_roster_flow(**paths)
    assert _state(sqlite_engine) == (40, 0)
    assert import_roster_flow(**paths, allow_leavers=37).employees_left == 37


def test_the_console_upload_asks_to_confirm_the_leavers(engine, settings):
    """HR uploads a partial file: the page names the count and asks for a confirmation (the files chosen
    again and a box ticked); only then is the import written."""
    from fastapi.testclient import TestClient

    from frontline.web.app import create_app

    _company_of_80_with_future_rotations(engine)
    files = {
        "departments": ("departments.csv", DEPARTMENT_ROWS.encode(), "text/csv"),
        "employees": ("employees.csv", employees_csv(range(2)).encode(), "text/csv"),
    }
    with TestClient(create_app()) as client:
        _sign_in_hr(client, engine)
        token = _csrf(client.get("/console/roster").text)
        asked = client.post("/console/roster", data={"csrf_token": token}, files=files)
        assert asked.status_code == 409
        assert "78 of 80 active employees would be marked as left" in asked.text
        assert 'name="allow_leavers" type="checkbox" value="78" required' in asked.text
        assert _state(engine) == (80, 0)
        confirmed = client.post(
            "/console/roster",
            data={"csrf_token": _csrf(asked.text), "allow_leavers": "78"},
            files=files,
            follow_redirects=False,
        )
        assert confirmed.status_code == 303, confirmed.text
    assert _state(engine) == (2, 64)


def _csrf(html: str) -> str:
    import re

    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def _sign_in_hr(client, engine, email: str = "hr@example.com") -> None:
    """An HR admin signs in through the magic link that the outbox holds."""

    from models import ConsoleUser

    with Session(engine) as s:
        if s.exec(select(ConsoleUser).where(ConsoleUser.email == email)).first() is None:
            s.add(ConsoleUser(email=email))
            s.commit()
    _follow_signin_link(client, engine, email)


def _follow_signin_link(client, engine, email: str) -> None:
    import re

    assert (
        client.post(
            "/console/signin", data={"email": email, "csrf_token": _csrf(client.get("/console/signin").text)}
        ).status_code
        == 200
    )
    with Session(engine) as s:
        row = s.exec(
            select(OutboundMessage).where(OutboundMessage.kind == "signin").order_by(OutboundMessage.id.desc())
        ).first()
    msg = message_from_bytes(row.mime, policy=policy.default)
    link = re.search(r"(https?://\S+/console/signin/\S+)", msg.get_body(("plain",)).get_content()).group(1)
    path = "/" + link.split("/", 3)[3]
    r = client.post(path, data={"csrf_token": _csrf(client.get(path).text)}, follow_redirects=False)
    assert r.status_code == 303, r.text


# --- item 5: departments missing from an import are deactivated -------------------------------------------

THREE_DEPARTMENTS = DEPARTMENT_ROWS + "Finance,Fiona,fiona@example.com\n"


def test_a_department_missing_from_the_import_is_deactivated_and_its_head_loses_access(engine, settings):
    """A department removed from departments.csv kept its head, who still signed in and read its
    observations, and it stayed a target. Now it is deactivated (kept, with its history) and leaves every
    target list; listed again, it is back."""
    from observation_factories import write_policy

    from frontline.access.principal import load_principal
    from frontline.digests.loading import all_department_ids
    from frontline.observations.acknowledgement import receives_department_mail
    from frontline.observations.intake import department_names
    from frontline.people.directory import departments
    from models import Observation

    write_policy(settings)
    employees = employees_csv(range(3)) + "F1,Fin Person,f1@example.com,Finance,2020-01-01,Europe/Berlin,DE\n"
    _import(engine, employees, THREE_DEPARTMENTS)
    with Session(engine) as s:
        finance = s.exec(select(Department).where(Department.name == "Finance")).one()
        rotator = s.exec(select(Employee).where(Employee.employee_id == "E1")).one()
        s.add(
            Observation(
                rotator_id=rotator.id,
                text="t",
                impact=3,
                product_area="billing",
                category="bug",
                target_department_id=finance.id,
            )
        )
        s.commit()
        assert load_principal(s, "fiona@example.com").head_of == {finance.id: "Finance"}

    result = _import(engine, employees_csv(range(3)))
    assert result.departments_deactivated == 1 and result.deactivated_departments == ["Finance"]
    assert "1 deactivated" in result.summary()
    with Session(engine) as s:
        finance = s.exec(select(Department).where(Department.name == "Finance")).one()
        assert (finance.active, finance.deactivated_on) == (False, date(2031, 3, 3))
        assert len(s.exec(select(Observation)).all()) == 1  # history kept
        assert load_principal(s, "fiona@example.com") is None  # no console any more
        assert "Finance" not in department_names(s)  # observation form and API
        assert finance.id not in all_department_ids(s)  # digests
        assert "Finance" not in [d.name for d in departments(s)]  # console filters, plan, dashboard
        assert not receives_department_mail(finance, "fiona@example.com")  # escalation and digest links

    _import(engine, employees_csv(range(3)), THREE_DEPARTMENTS)  # listed again: active again
    with Session(engine) as s:
        assert load_principal(s, "fiona@example.com") is not None
        assert "Finance" in department_names(s)


def test_an_observation_cannot_be_addressed_to_a_deactivated_department(engine, settings):
    from observation_factories import write_policy
    from pydantic import ValidationError

    from frontline.observations.intake import submit_observation
    from models import session_scope

    write_policy(settings)
    _import(engine, employees_csv(range(3)), THREE_DEPARTMENTS)
    _import(engine, employees_csv(range(3)))
    with session_scope(engine) as s:
        rotator = s.exec(select(Employee).where(Employee.employee_id == "E1")).one()
        data = dict(text="Customers cannot pay", impact=3, product_area="billing", category="bug")
        with pytest.raises(ValidationError, match="target_department"):
            submit_observation(s, rotator, {**data, "target_department": "Finance"}, "web")
        stored = submit_observation(s, rotator, data, "web")  # billing suggests Finance: now the fallback
        target = s.get(Department, stored.target_department_id)
        assert target is not None and target.name == "Support"


# --- item 6: status flags what needs a human ----------------------------------------------------------


def _invited_rotation_with_mentor(engine) -> tuple[int, int]:
    """An announced (invited) rotation starting next Monday, paired with the only mentor; (rotation, mentor)."""
    from frontline.core import clock

    start = clock.monday(clock.today()) + timedelta(weeks=1)
    rotation_id = _rotation(engine, start, mentor_name="Max Mentor")
    with Session(engine) as s:
        rot = s.get(Rotation, rotation_id)
        pairing = s.exec(select(MentorPairing).where(MentorPairing.rotation_id == rotation_id)).one()
        rot.status, rot.announced_state, rot.announced_start, rot.announced_mentor_id = (
            "invited",
            "invited",
            start,
            pairing.mentor_id,
        )
        s.add(rot)
        s.commit()
        return rotation_id, pairing.mentor_id


def test_status_flags_a_rotation_that_lost_its_mentor_after_the_invite(engine, settings):
    """The mentor becomes absent after the invite went out; the pairing job finds nobody else: the rotator
    is alone while status used to say 'all clear'."""
    from typer.testing import CliRunner

    from frontline.cli import app
    from frontline.core.policy import load_policy
    from frontline.mentors.service import pair_mentors
    from models import Absence, session_scope

    (settings.policy_path).write_text('support_department = "Support"\n')
    rotation_id, mentor_id = _invited_rotation_with_mentor(engine)
    runner = CliRunner()
    before = runner.invoke(app, ["status", "--no-prefect", "--check"])
    assert before.exit_code == 0, before.output
    with session_scope(engine) as s:
        rot = s.get(Rotation, rotation_id)
        s.add(Absence(employee_id=mentor_id, start=rot.start, end=rot.end, reason="sick"))
        s.flush()
        result = pair_mentors(s, load_policy(), actor="test")
        assert len(result.replaced) == 1 and result.created == []
    after = runner.invoke(app, ["status", "--no-prefect", "--check", "--json"])
    assert after.exit_code == 1, after.output
    import json

    flagged = json.loads(after.output)["stuck"]["rotations_without_mentor"]
    assert [(r["rotation"], r["mentor"], r["state"]) for r in flagged] == [
        (rotation_id, "lost after the invite", "invited")
    ]
    text = runner.invoke(app, ["status", "--no-prefect"]).output
    assert "Rotations announced or under way without a mentor" in text and "attention needed" in text


@pytest.mark.parametrize(
    "content",
    ["support_department = [\n", 'support_department = "Support"\nlength_weeks = "four"\n', None],
    ids=["not-toml", "invalid", "missing"],
)
def test_a_corrupt_policy_file_fails_status_check_and_answers_503(engine, settings, content):
    """A corrupt policy file made the observation form and the API answer a bare 500, and status --check
    exited 0. Now: 503 with a clear message (no server paths), and status names the problem."""
    import json

    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    from frontline.cli import app
    from frontline.core.links import observe_url
    from frontline.observations.api_tokens import create_api_token
    from frontline.observations.policy import forget_cached_policies
    from frontline.web.app import create_app

    _import(engine, employees_csv(range(2)))
    with Session(engine) as s:
        rotator = s.exec(select(Employee).where(Employee.employee_id == "E1")).one()
        _token, secret = create_api_token(s, "test", rotator)
        s.commit()
        link = observe_url(rotator.id)
    if content is not None:
        settings.policy_path.write_text(content)
    forget_cached_policies()
    report = CliRunner().invoke(app, ["status", "--no-prefect", "--check", "--json"])
    assert report.exit_code == 1, report.output
    problems = json.loads(report.output)["stuck"]["policy_unusable"]
    assert problems and all(str(settings.policy_path) in p["problem"] for p in problems)
    with TestClient(create_app(), raise_server_exceptions=False) as client:
        form = client.get("/" + link.split("/", 3)[3])
        api = client.post(
            "/api/observations",
            json={"text": "x", "impact": 3, "product_area": "billing", "category": "bug"},
            headers={"Authorization": f"Bearer {secret}"},
        )
    assert form.status_code == 503 and "Frontline is not available right now" in form.text
    assert str(settings.policy_path) not in form.text and form.headers["Retry-After"] == "300"
    assert api.status_code == 503 and "configuration needs fixing" in api.json()["detail"]
