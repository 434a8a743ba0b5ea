"""RSVP replies (issue 15): the iTIP REPLY a calendar app sends to the organiser, read from a real IMAP
mailbox (Debian's Dovecot on loopback, ``tests/imapserver.py``). Each reply is built with icalendar from the
invite Frontline actually queued and APPENDed as a real MIME mail, inline (``text/calendar; method=REPLY``,
as Outlook sends it) or inline plus an ``.ics`` attachment (as Google does). Both databases."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime

import pytest
from conftest import require
from icalendar import Calendar, Event, vCalAddress
from imapclient import IMAPClient
from imapserver import Dovecot, dovecot_missing
from sqlmodel import Session, col, select

from frontline.calendar.invites import process_invites, rotations_to_announce
from models import AuditEvent, ChangeRequest, ConnectorStatus, Department, Employee, InviteReply, Rotation

ORGANISER = "frontline@example.com"
PASSWORD = "organiser-pw-7Qz"
AS_OF = date(2031, 10, 27)  # a Monday, far from the machine's clock
START = date(2031, 11, 17)


# --- the mailbox, the company, the invite ----------------------------------------------------------------


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    problem = dovecot_missing()
    if problem:
        require(problem, "FRONTLINE_REQUIRE_DOVECOT")
    with Dovecot({ORGANISER: PASSWORD}) as server:
        yield server


@pytest.fixture
def mailbox(settings, dovecot, monkeypatch) -> Dovecot:
    """The organiser mailbox configured in the settings, and the example policy."""
    from observation_factories import write_policy

    from frontline.core.settings import get_settings

    monkeypatch.setenv("FRONTLINE_IMAP_URL", dovecot.url(ORGANISER, PASSWORD))
    monkeypatch.setenv("FRONTLINE_MAIL_FROM", f"Frontline <{ORGANISER}>")
    get_settings.cache_clear()
    write_policy(settings)
    return dovecot


def seed(engine) -> dict[str, int]:
    with Session(engine) as s:
        sales = Department(name="Sales", head_name="Hanna Head", head_email="head@example.com")
        support = Department(name="Support", head_name="Sam Lead", head_email="lead@example.com")
        s.add_all([sales, support])
        s.flush()
        people = {}
        for key, eid, name, email, dept in (
            ("rotator", "E1", "Jane Doe", "jane@example.com", sales.id),
            ("other", "E2", "Omar Other", "omar@example.com", sales.id),
        ):
            e = Employee(
                employee_id=eid,
                name=name,
                email=email,
                department_id=dept,
                hire_date=date(2024, 1, 1),
                timezone="Europe/Berlin",
                country="DE",
            )
            s.add(e)
            s.flush()
            people[key] = e.id
        rot = Rotation(
            employee_id=people["rotator"], start=START, end=START + timedelta(days=27), kind="cycle", due=START
        )
        s.add(rot)
        s.flush()
        ids = {**people, "rotation": rot.id}
        s.commit()
    return ids  # type: ignore[return-value]


def send_invites(engine, as_of: date = AS_OF) -> None:
    with Session(engine) as s:
        process_invites(s, rotations_to_announce(s, as_of, 8), as_of=as_of, announce_weeks=8)
        s.commit()


def queued_invite(engine, rotation_id: int, sequence: int = 0) -> bytes:
    """The ``text/calendar; method=REQUEST`` body of the invite Frontline queued for the rotator."""
    from models import OutboundMessage

    with Session(engine) as s:
        row = s.exec(
            select(OutboundMessage).where(OutboundMessage.idempotency_key == f"invite:{rotation_id}:{sequence}")
        ).one()
    msg = message_from_bytes(row.mime, policy=policy.default)
    for part in msg.walk():
        if part.get_content_type() == "text/calendar":
            assert part.get_param("method") == "REQUEST"
            return part.get_payload(decode=True)
    raise AssertionError("no text/calendar part in the invite")


def reply_ics(
    invite: bytes,
    partstat: str,
    *,
    attendee: str | None = None,
    comment: str | None = None,
    uid: str | None = None,
    stamp: datetime | None = None,
) -> bytes:
    """The REPLY a calendar app makes from ``invite``: same UID, SEQUENCE, dates and organiser, one attendee."""
    request = Calendar.from_ical(invite)
    event = request.walk("VEVENT")[0]
    cal = Calendar()
    cal.add("prodid", "-//Test Mail Client//calendar.test//EN")
    cal.add("version", "2.0")
    cal.add("method", "REPLY")
    ev = Event()
    for key in ("DTSTART", "DTEND", "SUMMARY", "ORGANIZER"):
        ev[key] = event[key]
    ev.add("uid", uid or str(event["UID"]))
    ev.add("sequence", int(event.get("SEQUENCE", 0)))
    ev.add("dtstamp", stamp or datetime(2031, 10, 28, 9, 30, tzinfo=UTC))
    invited = event["ATTENDEE"]
    address = vCalAddress(f"mailto:{attendee}" if attendee else str(invited))
    address.params["CN"] = invited.params.get("CN", "")
    address.params["PARTSTAT"] = partstat
    ev.add("attendee", address)
    if comment:
        ev.add("comment", comment)
    cal.add_component(ev)
    return cal.to_ical()


def reply_mail(
    ics: bytes, *, sender: str = "jane@example.com", message_id: str, attach: bool = False, subject: str = "Reply"
) -> bytes:
    """A reply mail: ``multipart/alternative`` (text + ``text/calendar; method=REPLY``), and with ``attach``
    inside ``multipart/mixed`` with the same object as ``invite.ics``."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ORGANISER
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime(2031, 10, 28, 9, 31, tzinfo=UTC))
    msg["Message-ID"] = message_id
    msg.set_content("See the calendar reply.")
    msg.add_alternative(ics, maintype="text", subtype="calendar", params={"method": "REPLY", "charset": "UTF-8"})
    if attach:
        msg.make_mixed()
        msg.add_attachment(ics, maintype="application", subtype="ics", filename="invite.ics")
    return msg.as_bytes()


def plain_mail(message_id: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "someone@example.com"
    msg["To"] = ORGANISER
    msg["Subject"] = "Out of office"
    msg["Message-ID"] = message_id
    msg.set_content("I am away until Monday.")
    return msg.as_bytes()


def imap(server: Dovecot) -> IMAPClient:
    client = IMAPClient("127.0.0.1", port=server.port, ssl=False, timeout=10)
    client.login(ORGANISER, PASSWORD)
    return client


def append(server: Dovecot, *mails: bytes, folder: str = "INBOX") -> None:
    client = imap(server)
    try:
        for mail in mails:
            client.append(folder, mail)
    finally:
        client.logout()


def flags(server: Dovecot, folder: str = "INBOX") -> list[set[bytes]]:
    client = imap(server)
    try:
        client.select_folder(folder, readonly=True)
        return [set(f) - {b"\\Recent"} for _, f in sorted(client.get_flags(client.search(["ALL"])).items())]
    finally:
        client.logout()


def run(as_of: date = AS_OF) -> dict:
    """One run of the job as ``frontline calendar replies`` runs it (the flow's body, without Prefect)."""
    from flows.runner import run_job

    return run_job("read-rsvp-replies", as_of=as_of)


def written(engine) -> dict[str, int]:
    with Session(engine) as s:
        return {
            "replies": len(s.exec(select(InviteReply)).all()),
            "requests": len(s.exec(select(ChangeRequest)).all()),
            "rsvp_audit": len(s.exec(select(AuditEvent).where(col(AuditEvent.action) == "rotation.rsvp")).all()),
        }


# --- decline, accept -----------------------------------------------------------------------------------


def test_a_decline_becomes_one_request_for_hr_and_is_never_applied_twice(engine, mailbox):
    ids = seed(engine)
    send_invites(engine)
    invite = queued_invite(engine, ids["rotation"])
    ics = reply_ics(invite, "DECLINED", comment="I am on parental leave then")
    append(mailbox, reply_mail(ics, message_id="<decline-1@mail.test>"))

    out = run()
    assert out["counts"]["declined"] == 1 and out["counts"]["requests_opened"] == 1, out
    with Session(engine) as s:
        [req] = s.exec(select(ChangeRequest)).all()
        assert (req.status, req.kind, req.requester_role, req.requester_email, req.rotation_id) == (
            "pending",
            "cannot_do",
            "rotator",
            "jane@example.com",
            ids["rotation"],
        )
        assert req.reason == "declined the calendar invite: I am on parental leave then"
        [reply] = s.exec(select(InviteReply)).all()
        assert (reply.partstat, reply.sequence, reply.request_id) == ("DECLINED", 0, req.id)
    assert flags(mailbox) == [{b"\\Seen"}]

    # a re-run reads nothing new; a reply read again (marked unseen: the run died before marking it)
    # is recognised by its Message-ID
    assert run()["counts"]["read"] == 0
    client = imap(mailbox)
    client.select_folder("INBOX")
    client.remove_flags(client.search(["ALL"]), [b"\\Seen"])
    client.logout()
    again = run()
    assert again["counts"]["duplicate"] == 1 and again["counts"]["declined"] == 0, again
    assert written(engine) == {"replies": 1, "requests": 1, "rsvp_audit": 1}

    # a second decline (another mail, the Google layout with the .ics attached) while the request waits
    second = reply_ics(invite, "DECLINED", comment="still no", stamp=datetime(2031, 10, 29, 8, 0, tzinfo=UTC))
    append(mailbox, reply_mail(second, message_id="<decline-2@mail.test>", attach=True))
    out = run()
    assert out["counts"]["declined"] == 1 and out["counts"]["requests_opened"] == 0, out
    assert f"change request {req.id} is already waiting for HR" in " ".join(out["lines"])
    assert written(engine) == {"replies": 2, "requests": 1, "rsvp_audit": 2}


def test_an_accept_and_a_tentative_are_recorded_and_shown_to_hr(engine, mailbox):
    from fastapi.testclient import TestClient
    from test_console import sign_in

    from frontline.calendar.replies import answers
    from frontline.web.app import create_app

    ids = seed(engine)
    send_invites(engine)
    invite = queued_invite(engine, ids["rotation"])
    append(
        mailbox,
        reply_mail(reply_ics(invite, "TENTATIVE"), message_id="<t@mail.test>"),
        reply_mail(
            reply_ics(invite, "ACCEPTED", stamp=datetime(2031, 10, 29, 10, 0, tzinfo=UTC)),
            message_id="<a@mail.test>",
            attach=True,
        ),
    )
    out = run()
    assert (out["counts"]["tentative"], out["counts"]["accepted"], out["counts"]["skipped"]) == (1, 1, 0), out
    assert written(engine) == {"replies": 2, "requests": 0, "rsvp_audit": 2}
    with Session(engine) as s:
        answer = answers(s, [ids["rotation"]])[ids["rotation"]]
        assert (answer.partstat, answer.label()) == ("ACCEPTED", "accepted 2031-10-29 10:00 UTC")
    # the head of the rotator's department sees it on the console's rotation page
    with TestClient(create_app(), base_url="http://frontline.test") as client:
        sign_in(client, engine, "head@example.com")
        page = client.get(f"/console/plan/rotations/{ids['rotation']}")
    assert page.status_code == 200 and 'id="rotation-rsvp">accepted 2031-10-29 10:00 UTC<' in page.text, page.text

    # the rotation moves: its new invite (SEQUENCE 1) waits for a new answer
    with Session(engine) as s:
        rot = s.get(Rotation, ids["rotation"])
        rot.start, rot.end = START + timedelta(weeks=1), START + timedelta(weeks=1, days=27)
        s.add(rot)
        s.commit()
    send_invites(engine)
    with Session(engine) as s:
        assert answers(s, [ids["rotation"]]) == {}


def test_a_decline_once_the_rotation_has_started_is_recorded_without_a_request(engine, mailbox):
    ids = seed(engine)
    send_invites(engine)
    ics = reply_ics(queued_invite(engine, ids["rotation"]), "DECLINED", comment="ill\x00 all\x07 week")
    append(mailbox, reply_mail(ics, message_id="<late@m>"))
    out = run(as_of=START + timedelta(days=2))
    assert out["counts"]["declined"] == 1 and out["counts"]["requests_opened"] == 0, out
    assert "no change request: the rotation has started" in out["lines"][0]
    with Session(engine) as s:
        [reply] = s.exec(select(InviteReply)).all()
        assert reply.comment == "ill all week" and reply.request_id is None
    assert written(engine) == {"replies": 1, "requests": 0, "rsvp_audit": 1}


def test_two_runs_applying_the_same_mail_at_once_open_one_request(engine, mailbox):
    """A command run beside the scheduled one: both read the same decline before either commits. The unique
    Message-ID makes the later commit fail whole (its change request included)."""
    import threading

    from sqlalchemy.exc import IntegrityError, OperationalError

    from frontline.calendar.replies import apply_reply, read_message
    from frontline.core.policy import load_policy

    ids = seed(engine)
    send_invites(engine)
    message = read_message(
        reply_mail(reply_ics(queued_invite(engine, ids["rotation"]), "DECLINED"), message_id="<d@m>")
    )
    pol = load_policy()
    now = datetime(2031, 10, 28, 10, 0, tzinfo=UTC)
    outcome: dict[str, str] = {}

    def apply(session: Session) -> None:
        apply_reply(session, pol, message, sender=ORGANISER, received_at=now, today=AS_OF)

    def second(ready: threading.Event) -> None:
        with Session(engine) as s2:
            try:
                s2.connection()  # its transaction starts before the first run commits
                ready.set()
                apply(s2)
                s2.commit()
                outcome["second"] = "committed"
            except (IntegrityError, OperationalError) as exc:
                s2.rollback()
                outcome["second"] = type(exc).__name__

    with Session(engine) as s1:
        apply(s1)
        ready = threading.Event()
        thread = threading.Thread(target=second, args=(ready,))
        thread.start()
        ready.wait(10)
        time.sleep(0.5)
        s1.commit()
    thread.join(30)
    assert outcome == {"second": "IntegrityError"}, outcome
    assert written(engine) == {"replies": 1, "requests": 1, "rsvp_audit": 1}


# --- bad input ---------------------------------------------------------------------------------------------


def test_mail_that_is_not_a_current_reply_of_the_rotator_is_skipped_with_the_reason(engine, mailbox):
    ids = seed(engine)
    send_invites(engine)
    invite = queued_invite(engine, ids["rotation"])
    with Session(engine) as s:  # the rotation moves: the first invite (SEQUENCE 0) is now stale
        rot = s.get(Rotation, ids["rotation"])
        rot.start, rot.end = START + timedelta(weeks=1), START + timedelta(weeks=1, days=27)
        s.add(rot)
        s.commit()
    send_invites(engine)
    current = queued_invite(engine, ids["rotation"], 1)
    garbage = b"BEGIN:VCALENDAR\r\nMETHOD:REPLY\r\nBEGIN:VEVENT\r\nUID:rotation-1@example.com\r\nDTSTART:notadate\r\n"
    append(
        mailbox,
        reply_mail(reply_ics(current, "DECLINED", uid="rotation-999@example.com"), message_id="<unknown-uid@m>"),
        reply_mail(reply_ics(current, "DECLINED", uid="meeting-42@elsewhere.test"), message_id="<foreign@m>"),
        reply_mail(
            reply_ics(current, "DECLINED", attendee="omar@example.com"), sender="omar@example.com", message_id="<o@m>"
        ),
        reply_mail(
            reply_ics(current, "ACCEPTED", attendee="stranger@elsewhere.test"),
            sender="stranger@elsewhere.test",
            message_id="<stranger@m>",
        ),
        reply_mail(garbage, message_id="<malformed@m>"),
        plain_mail("<plain@m>"),
        reply_mail(reply_ics(invite, "DECLINED"), message_id="<stale@m>"),
    )
    out = run()
    assert out["counts"]["read"] == 7 and out["counts"]["skipped"] == 6 and out["counts"]["stale"] == 1, out
    reasons = "\n".join(out["skips"] + out["lines"])
    for expected in (
        "<unknown-uid@m>: unknown UID 'rotation-999@example.com': rotation 999 does not exist",
        "<foreign@m>: unknown UID 'meeting-42@elsewhere.test'",
        f"<o@m>: attendee omar@example.com is not the rotator of rotation {ids['rotation']}",
        f"<stranger@m>: attendee stranger@elsewhere.test is not the rotator of rotation {ids['rotation']}",
        "<malformed@m>: malformed calendar",
        "<plain@m>: not a calendar reply",
        "<stale@m>: stale: the reply of jane@example.com answers SEQUENCE 0",
    ):
        assert expected in reasons, (expected, reasons)
    assert written(engine) == {"replies": 0, "requests": 0, "rsvp_audit": 0}
    # every mail is handled: skipped ones flagged for a person to look at, the stale one only seen
    assert flags(mailbox) == [{b"\\Seen", b"\\Flagged"}] * 6 + [{b"\\Seen"}]
    assert run()["counts"]["read"] == 0


def test_wrong_password_or_a_server_that_is_down_is_a_clear_error_and_writes_nothing(
    engine, mailbox, monkeypatch, settings
):
    from flows.jobs import JobFailed
    from frontline.core.settings import get_settings
    from frontline.operations.status import collect_status

    ids = seed(engine)
    send_invites(engine)
    append(mailbox, reply_mail(reply_ics(queued_invite(engine, ids["rotation"]), "DECLINED"), message_id="<d@m>"))

    monkeypatch.setenv("FRONTLINE_IMAP_URL", mailbox.url(ORGANISER, "wrong-pw-Xy9"))
    get_settings.cache_clear()
    with pytest.raises(JobFailed) as failed:
        run()
    message = str(failed.value)
    assert f"IMAP 127.0.0.1:{mailbox.port}: login as 'frontline@example.com' refused" in message, message
    assert "wrong-pw-Xy9" not in message
    with Session(engine) as s:
        [row] = s.exec(select(ConnectorStatus)).all()
        assert row.name == "rsvp-replies" and "login" in row.last_error and row.last_success_at is None
        assert "wrong-pw-Xy9" not in row.last_error
    assert written(engine) == {"replies": 0, "requests": 0, "rsvp_audit": 0}

    monkeypatch.setenv("FRONTLINE_IMAP_URL", mailbox.url(ORGANISER, PASSWORD))
    get_settings.cache_clear()
    assert run()["counts"]["declined"] == 1
    append(mailbox, reply_mail(reply_ics(queued_invite(engine, ids["rotation"]), "ACCEPTED"), message_id="<a@m>"))
    mailbox.stop()  # the server is down
    with pytest.raises(JobFailed) as failed:
        run()
    assert f"IMAP 127.0.0.1:{mailbox.port}: no answer while connecting" in str(failed.value), str(failed.value)
    assert written(engine) == {"replies": 1, "requests": 1, "rsvp_audit": 1}
    with Session(engine) as s:
        report = collect_status(s, now=datetime.now(UTC) + timedelta(seconds=5), with_prefect=False)
    failing = report["stuck"]["connectors_failing"]
    assert [f["connector"] for f in failing] == ["rsvp-replies"] and "no answer" in failing[0]["last_error"]
    assert PASSWORD not in str(report) and report["ok"] is False


def test_the_command_reads_the_mailbox_and_moves_handled_mail_to_the_processed_folder(
    sqlite_engine, sqlite_settings, dovecot, monkeypatch
):
    from observation_factories import write_policy
    from typer.testing import CliRunner

    from frontline.cli import app
    from frontline.core.settings import get_settings

    monkeypatch.setenv("FRONTLINE_IMAP_URL", dovecot.url(ORGANISER, PASSWORD))
    monkeypatch.setenv("FRONTLINE_IMAP_PROCESSED_FOLDER", "Processed")
    monkeypatch.setenv("FRONTLINE_MAIL_FROM", f"Frontline <{ORGANISER}>")
    get_settings.cache_clear()
    write_policy(sqlite_settings)
    ids = seed(sqlite_engine)
    send_invites(sqlite_engine)
    invite = queued_invite(sqlite_engine, ids["rotation"])
    append(
        dovecot,
        reply_mail(reply_ics(invite, "ACCEPTED"), message_id="<a@m>"),
        plain_mail("<plain@m>"),
    )
    out = CliRunner().invoke(app, ["calendar", "replies", "--as-of", AS_OF.isoformat()])
    assert out.exit_code == 0, out.output
    assert f"<a@m>: rotation {ids['rotation']}: jane@example.com accepted; recorded" in out.output
    assert "skipped <plain@m>: not a calendar reply" in out.output
    assert flags(dovecot) == [] and flags(dovecot, "Processed") == [{b"\\Seen"}, {b"\\Seen", b"\\Flagged"}]

    monkeypatch.setenv("FRONTLINE_IMAP_URL", dovecot.url(ORGANISER, "not-the-password"))
    get_settings.cache_clear()
    out = CliRunner().invoke(app, ["calendar", "replies"])
    assert out.exit_code == 1 and "login as 'frontline@example.com' refused" in out.output, out.output
    assert "not-the-password" not in out.output


def test_tls_and_starttls_with_a_private_ca_and_a_refused_certificate(sqlite_engine, sqlite_settings, monkeypatch):
    from flows.jobs import JobFailed
    from frontline.core.settings import get_settings

    if dovecot_missing():
        require(str(dovecot_missing()), "FRONTLINE_REQUIRE_DOVECOT")
    monkeypatch.setenv("FRONTLINE_MAIL_FROM", f"Frontline <{ORGANISER}>")
    write_policy_for(sqlite_settings)
    ids = seed(sqlite_engine)
    send_invites(sqlite_engine)
    invite = queued_invite(sqlite_engine, ids["rotation"])
    user = "frontline%40example.com"
    with Dovecot({ORGANISER: PASSWORD}, tls=True) as server:
        append(server, reply_mail(reply_ics(invite, "TENTATIVE"), message_id="<t@m>"))
        append(server, reply_mail(reply_ics(invite, "ACCEPTED"), message_id="<a@m>"))

        def use(url: str) -> dict:
            monkeypatch.setenv("FRONTLINE_IMAP_URL", url)
            get_settings.cache_clear()
            return run()

        # without the private CA the certificate is refused: nothing read, nothing written
        with pytest.raises(JobFailed) as failed:
            use(f"imaps://{user}:{PASSWORD}@127.0.0.1:{server.tls_port}/INBOX")
        assert f"IMAP 127.0.0.1:{server.tls_port}: TLS failed while connecting" in str(failed.value)
        assert "certificate verify failed" in str(failed.value) and PASSWORD not in str(failed.value)
        assert written(sqlite_engine)["replies"] == 0 and flags(server) == [set(), set()]
        # implicit TLS, then STARTTLS, each trusting the private CA
        assert (
            use(f"imaps://{user}:{PASSWORD}@127.0.0.1:{server.tls_port}/INBOX?cafile={server.cafile}")["counts"]["read"]
            == 2
        )
        append(server, reply_mail(reply_ics(invite, "DECLINED"), message_id="<d@m>"))
        out = use(f"imap://{user}:{PASSWORD}@127.0.0.1:{server.port}/INBOX?cafile={server.cafile}")
        assert out["counts"]["declined"] == 1 and out["counts"]["requests_opened"] == 1, out
    # a server without STARTTLS never gets the password on imap:// (unless ?tls=none says so)
    with Dovecot({ORGANISER: PASSWORD}) as plain:
        with pytest.raises(JobFailed) as failed:
            use(f"imap://{user}:{PASSWORD}@127.0.0.1:{plain.port}/INBOX")
        assert "offers no STARTTLS: refusing to send the password unencrypted" in str(failed.value)
        assert "Login: user=" not in plain.log()
    assert written(sqlite_engine) == {"replies": 3, "requests": 1, "rsvp_audit": 3}


def write_policy_for(settings) -> None:
    from observation_factories import write_policy

    write_policy(settings)


@pytest.mark.prefect
def test_the_password_can_come_from_a_prefect_secret_block(
    sqlite_engine, sqlite_settings, prefect_harness, monkeypatch
):
    from prefect.blocks.system import Secret

    from frontline.core.settings import get_settings

    if dovecot_missing():
        require(str(dovecot_missing()), "FRONTLINE_REQUIRE_DOVECOT")
    Secret(value=PASSWORD).save("frontline-test-imap-password", overwrite=True)
    monkeypatch.setenv("FRONTLINE_MAIL_FROM", f"Frontline <{ORGANISER}>")
    write_policy_for(sqlite_settings)
    ids = seed(sqlite_engine)
    send_invites(sqlite_engine)
    with Dovecot({ORGANISER: PASSWORD}) as server:
        append(
            server, reply_mail(reply_ics(queued_invite(sqlite_engine, ids["rotation"]), "ACCEPTED"), message_id="<a@m>")
        )
        monkeypatch.setenv(
            "FRONTLINE_IMAP_URL", f"imap://frontline%40example.com@127.0.0.1:{server.port}/INBOX?tls=none"
        )
        monkeypatch.setenv("FRONTLINE_IMAP_PASSWORD_BLOCK", "frontline-test-imap-password")
        get_settings.cache_clear()
        assert PASSWORD not in repr(get_settings())
        assert run()["counts"]["accepted"] == 1
        # the scheduled deployment's flow: a real Prefect flow run with its task
        from flows.replies import read_rsvp_replies

        append(
            server, reply_mail(reply_ics(queued_invite(sqlite_engine, ids["rotation"]), "DECLINED"), message_id="<d@m>")
        )
        state = read_rsvp_replies(as_of=AS_OF, return_state=True)
        assert state.is_completed() and state.result()["counts"]["requests_opened"] == 1
        Secret(value="not-the-password").save("frontline-test-imap-password", overwrite=True)
        state = read_rsvp_replies(as_of=AS_OF, return_state=True)
        assert state.is_failed() and "login as 'frontline@example.com' refused" in (state.message or ""), state
        assert server.log().count("auth failed") == 1, "a refused login is not retried"
    assert written(sqlite_engine) == {"replies": 2, "requests": 1, "rsvp_audit": 2}


def test_without_a_mailbox_the_job_and_the_command_do_nothing(sqlite_engine, sqlite_settings, monkeypatch):
    from typer.testing import CliRunner

    from frontline.cli import app

    monkeypatch.delenv("FRONTLINE_IMAP_URL", raising=False)
    write_policy_for(sqlite_settings)
    out = run()
    assert out["configured"] is False and out["counts"] == {}
    with Session(sqlite_engine) as s:
        assert s.exec(select(ConnectorStatus)).all() == []
    result = CliRunner().invoke(app, ["calendar", "replies"])
    assert result.exit_code == 0 and "FRONTLINE_IMAP_URL is not set" in result.output, result.output


# --- pure parts ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("imaps://bot%40corp.example:p%40ss@imap.corp.example/INBOX", ("imap.corp.example", 993, "implicit")),
        ("imap://bot@imap.corp.example/Replies", ("imap.corp.example", 143, "starttls")),
        ("imap://bot@127.0.0.1:1143/?tls=none", ("127.0.0.1", 1143, "none")),
    ],
)
def test_imap_urls(url, expected):
    from frontline.mail.imap import parse_imap_url

    parsed = parse_imap_url(url)
    assert (parsed.host, parsed.port, parsed.tls) == expected
    assert "p@ss" not in repr(parsed)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://bot:secret@host/INBOX", "must start with imaps://"),
        ("imaps://host/INBOX", "no user name"),
        ("imaps://bot:secret@host/INBOX?tls=none", "tls='none' is not one of"),
        ("imap://bot:secret@host/INBOX?verify=no", "unknown option(s) verify"),
    ],
)
def test_bad_imap_urls_are_refused_without_the_password(url, problem):
    from frontline.mail.imap import parse_imap_url

    with pytest.raises(ValueError) as raised:
        parse_imap_url(url)
    assert problem in str(raised.value) and "secret" not in str(raised.value)
