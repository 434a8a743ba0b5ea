"""Mail delivery through a real SMTP server on loopback, with faults, crashes and the outbox folder."""

from __future__ import annotations

import threading
from datetime import timedelta
from email import message_from_bytes, policy

import pytest
from mailserver import SMTPServer
from sqlmodel import Session, select
from typer.testing import CliRunner

from frontline.mail import compose, enqueue
from frontline.mail.delivery import LEASE, claim_batch, deliver_pending, send_claimed
from frontline.mail.transport import FolderTransport, SMTPTransport, eml_name
from models import OutboundMessage, utcnow


@pytest.fixture
def smtp():
    with SMTPServer() as server:
        yield server


def queue(engine, n: int, kind: str = "test", prefix: str = "msg") -> list[str]:
    """Queue ``n`` messages; returns their Message-IDs in order."""
    ids = []
    with Session(engine) as session:
        for i in range(n):
            msg = compose(
                to=f"person{i}@example.com", subject=f"Hello {i}", text=f"body {i}\n", html=f"<p>body {i}</p>"
            )
            row = enqueue(session, msg, kind=kind, idempotency_key=f"{prefix}:{i}")
            ids.append(row.message_id)
        session.commit()
    return ids


def rows(engine) -> list[OutboundMessage]:
    with Session(engine) as session:
        return list(session.exec(select(OutboundMessage).order_by(OutboundMessage.id)).all())


def test_smtp_delivery_reuses_one_connection_and_keeps_headers(engine, settings, smtp):
    ids = queue(engine, 5)
    transport = SMTPTransport(smtp.url, rate_per_second=1000)
    result = deliver_pending(engine, transport, batch_size=50)
    transport.close()
    assert (result.sent, result.retry, result.failed) == (5, 0, 0)
    assert transport.connections == 1
    assert smtp.handler.message_ids() == ids
    first = smtp.handler.messages[0]
    assert first["Auto-Submitted"] == "auto-generated"
    assert first.get_content_type() == "multipart/alternative"
    assert first["To"] == "person0@example.com"
    assert smtp.handler.envelopes[0] == ("frontline@example.com", ["person0@example.com"])
    assert all(r.state == "sent" and r.sent_at is not None and r.attempts == 1 for r in rows(engine))
    # nothing is due any more: a second run sends nothing, and re-queuing the same keys is a no-op
    assert queue_again_is_noop(engine)
    again = deliver_pending(engine, SMTPTransport(smtp.url, rate_per_second=1000))
    assert again.claimed == 0 and len(smtp.handler.messages) == 5


def queue_again_is_noop(engine) -> bool:
    with Session(engine) as session:
        row = enqueue(session, compose(to="x@example.com", subject="s", text="t"), kind="test", idempotency_key="msg:0")
        return row is None


def test_rejections_and_dropped_connections_are_retried_and_delivered_exactly_once(engine, settings, smtp):
    ids = queue(engine, 8)
    smtp.handler.faults = {
        ids[0]: ["451"],
        ids[1]: ["550", "554"],
        ids[2]: ["drop"],
        ids[3]: ["drop", "421"],
        ids[5]: ["451", "drop", "451"],
    }
    t0 = utcnow()
    transport = SMTPTransport(smtp.url, rate_per_second=1000)
    first = deliver_pending(engine, transport, now=t0, backoff_seconds=60)
    assert (first.sent, first.retry, first.failed) == (3, 5, 0)
    assert sorted(smtp.handler.message_ids()) == sorted([ids[4], ids[6], ids[7]])
    by_mid = {r.message_id: r for r in rows(engine)}
    assert by_mid[ids[1]].state == "pending" and "550" in by_mid[ids[1]].last_error
    assert "connection dropped" in by_mid[ids[2]].last_error
    assert by_mid[ids[0]].next_attempt_at >= t0 + timedelta(seconds=59)
    # retries are not due yet: an immediate re-run sends nothing
    assert deliver_pending(engine, transport, now=t0 + timedelta(seconds=1)).claimed == 0
    # the server recovers over the next attempts; run until nothing is due
    now = t0
    for _ in range(6):
        now += timedelta(hours=1)
        deliver_pending(engine, transport, now=now, backoff_seconds=60)
    transport.close()
    assert sorted(smtp.handler.message_ids()) == sorted(ids)  # every message exactly once
    final = {r.message_id: r for r in rows(engine)}
    assert all(r.state == "sent" for r in final.values())
    assert final[ids[5]].attempts == 4 and final[ids[4]].attempts == 1
    assert transport.connections >= 3  # reconnected after each drop


def test_message_fails_after_max_attempts_with_the_smtp_error(engine, settings, smtp):
    ids = queue(engine, 2)
    smtp.handler.faults = {ids[0]: ["550"] * 5}
    transport = SMTPTransport(smtp.url, rate_per_second=1000)
    now = utcnow()
    for _ in range(3):
        deliver_pending(engine, transport, now=now, max_attempts=3, backoff_seconds=1)
        now += timedelta(minutes=5)
    transport.close()
    state = {r.message_id: r for r in rows(engine)}
    assert state[ids[0]].state == "failed" and state[ids[0]].attempts == 3
    assert state[ids[0]].last_error.startswith("550")
    assert state[ids[1]].state == "sent"
    assert smtp.handler.message_ids() == [ids[1]]


def test_crash_after_smtp_accepted_resends_only_the_message_in_flight(engine, settings, smtp):
    """At-least-once: a worker claims a batch, the server accepts message 0, the worker dies before it
    records 'sent'. Until the lease runs out nobody touches the batch; afterwards the next run sends
    message 0 again with the SAME Message-ID and bytes, and every other message exactly once."""
    ids = queue(engine, 4)
    t0 = utcnow()
    claimed = claim_batch(engine, 10, now=t0)
    assert len(claimed) == 4
    first = rows(engine)[0]
    crashed = SMTPTransport(smtp.url, rate_per_second=1000)
    crashed.send(first.mime, mail_from=settings.mail_from, recipients=[first.recipient], message_id=first.message_id)
    crashed.close()  # ... and the process died here: row 0 is still 'sending'

    transport = SMTPTransport(smtp.url, rate_per_second=1000)
    early = deliver_pending(engine, transport, now=t0 + LEASE - timedelta(seconds=10))
    assert early.claimed == 0  # the lease protects a worker that may still be running
    later = deliver_pending(engine, transport, now=t0 + LEASE + timedelta(seconds=1))
    transport.close()
    assert later.sent == 4
    got = smtp.handler.message_ids()
    assert sorted(got) == sorted([ids[0]] + ids)  # message 0 twice (same id), the others once
    assert got.count(ids[0]) == 2 and all(got.count(m) == 1 for m in ids[1:])
    copies = [
        raw
        for raw, m in zip(smtp.handler.raw, smtp.handler.messages, strict=True)
        if str(m["Message-ID"]).strip() == ids[0]
    ]
    assert copies[0] == copies[1]
    assert all(r.state == "sent" for r in rows(engine))


def test_a_sender_stopped_mid_batch_gives_its_unsent_rows_back_at_once(engine, settings, smtp):
    """A worker stopped with SIGTERM (Prefect raises TerminationSignal in the flow run) or Ctrl-C while
    sending: the rows it holds go back to pending, due now and with their attempt not counted, instead
    of waiting one lease; what it sent stays sent; the signal itself propagates."""
    from prefect.exceptions import TerminationSignal

    from frontline.mail.delivery import deliver_batch

    ids = queue(engine, 5)

    class StoppedAfterTwo(SMTPTransport):
        sent = 0

        def send(self, *args, **kwargs):
            if self.sent == 2:
                raise TerminationSignal(15)  # the signal arrives while the third message is being sent
            super().send(*args, **kwargs)
            self.sent += 1

    transport = StoppedAfterTwo(smtp.url, rate_per_second=1000)
    with pytest.raises(TerminationSignal):
        deliver_batch(engine, transport, batch_size=10)
    transport.close()
    states = sorted((r.state, r.attempts) for r in rows(engine))
    assert states == [("pending", 0)] * 3 + [("sent", 1)] * 2
    assert all(r.next_attempt_at <= utcnow() and r.lease_token is None for r in rows(engine) if r.state == "pending")
    again = deliver_pending(engine, SMTPTransport(smtp.url, rate_per_second=1000))  # no lease to wait for
    assert again.sent == 3 and sorted(smtp.handler.message_ids()) == sorted(ids)


def test_two_workers_never_claim_the_same_message(engine, settings):
    queue(engine, 60)
    claims: list[list[int]] = [[], []]

    def worker(slot: int) -> None:
        while True:
            got = claim_batch(engine, 7)
            if not got:
                return
            claims[slot].extend(got.ids)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not set(claims[0]) & set(claims[1])
    assert len(claims[0]) + len(claims[1]) == 60
    assert all(r.state == "sending" and r.attempts == 1 for r in rows(engine))


def test_unavailable_server_releases_the_batch(engine, settings):
    queue(engine, 3)
    dead = SMTPTransport(f"smtp://127.0.0.1:{_closed_port()}?tls=none", rate_per_second=1000, timeout=2)
    ids = claim_batch(engine, 10)
    from frontline.mail.transport import TransportUnavailable

    with pytest.raises(TransportUnavailable):
        send_claimed(engine, ids, dead)
    assert all(r.state == "pending" and r.attempts == 0 for r in rows(engine))


def _closed_port() -> int:
    from mailserver import free_port

    return free_port()


def test_folder_transport_writes_atomically_and_redelivery_overwrites(engine, settings):
    ids = queue(engine, 3)
    result = deliver_pending(engine)  # no SMTP URL configured: the outbox folder
    assert result.sent == 3
    folder = settings.outbox_dir
    files = sorted(p.name for p in folder.iterdir())
    assert files == sorted(eml_name(m) for m in ids)
    parsed = message_from_bytes((folder / eml_name(ids[1])).read_bytes(), policy=policy.default)
    assert parsed["Subject"] == "Hello 1" and str(parsed["Message-ID"]).strip() == ids[1]
    # re-delivery (e.g. after a crash) overwrites the same file: still three files, no temp files
    row = rows(engine)[1]
    FolderTransport(folder).send(row.mime, mail_from="x", recipients=[row.recipient], message_id=row.message_id)
    assert sorted(p.name for p in folder.iterdir()) == files


def test_smtp_url_forms():
    t = SMTPTransport("smtps://ops%40corp:p%3Ass@mail.example.com")
    assert (t.host, t.port, t.implicit_tls, t.username, t.password) == (
        "mail.example.com",
        465,
        True,
        "ops@corp",
        "p:ss",
    )
    assert "p:ss" not in repr(t)
    t = SMTPTransport("smtp://relay:2525?tls=none")
    assert (t.port, t.tls, t.username) == (2525, "none", None)
    assert SMTPTransport("smtp://relay").tls == "auto"
    with pytest.raises(ValueError, match="smtp:// or smtps://"):
        SMTPTransport("http://relay")
    with pytest.raises(ValueError, match="tls="):
        SMTPTransport("smtp://relay?tls=maybe")


def test_mail_status_and_retry_cli(engine, settings, smtp):
    from frontline.cli import app

    ids = queue(engine, 2, kind="digest")
    smtp.handler.faults = {ids[0]: ["550"]}
    transport = SMTPTransport(smtp.url, rate_per_second=1000)
    deliver_pending(engine, transport, max_attempts=1)
    transport.close()
    runner = CliRunner()
    out = runner.invoke(app, ["mail", "status"])
    assert out.exit_code == 0, out.output
    assert "failed" in out.output and "550 simulated permanent failure" in out.output
    assert "sent" in out.output and "digest" in out.output
    bad = runner.invoke(app, ["mail", "retry"])
    assert bad.exit_code != 0 and "--all-failed" in bad.output
    failed_id = next(r.id for r in rows(engine) if r.state == "failed")
    out = runner.invoke(app, ["mail", "retry", "--id", str(failed_id)])
    assert out.exit_code == 0 and "1 message(s) queued again" in out.output
    assert {r.state for r in rows(engine)} == {"pending", "sent"}
    transport = SMTPTransport(smtp.url, rate_per_second=1000)
    assert deliver_pending(engine, transport).sent == 1
    transport.close()
    assert sorted(smtp.handler.message_ids()) == sorted(ids)


@pytest.mark.prefect
def test_deliver_mail_flow_batches_and_counts(prefect_harness, sqlite_engine, sqlite_settings, smtp, monkeypatch):
    from flows.mail import deliver_mail
    from frontline.core.settings import get_settings
    from models import AuditEvent

    monkeypatch.setenv("FRONTLINE_SMTP_URL", smtp.url)
    monkeypatch.setenv("FRONTLINE_SMTP_RATE_PER_SECOND", "1000")
    get_settings.cache_clear()
    ids = queue(sqlite_engine, 5)
    smtp.handler.faults = {ids[1]: ["451"]}
    result = deliver_mail(batch_size=2)
    assert result == {"batches": 3, "claimed": 5, "sent": 4, "retry": 1, "failed": 0, "taken_over": 0, "throttled": 0}
    assert sorted(smtp.handler.message_ids()) == sorted(ids[:1] + ids[2:])
    assert deliver_mail(batch_size=2)["claimed"] == 0  # the retry is not due yet
    with Session(sqlite_engine) as session:
        audit = session.exec(select(AuditEvent).where(AuditEvent.action == "mail.deliver")).all()
    assert [a.details["sent"] for a in audit] == [4, 0]
    # `frontline mail send` runs the same flow (the retry kept out of it: on a loaded machine this test
    # can outlast the 60 s backoff)
    from frontline.cli import app
    from models import OutboundMessage

    with Session(sqlite_engine) as session:
        for row in session.exec(select(OutboundMessage).where(OutboundMessage.state == "pending")).all():
            row.next_attempt_at = row.next_attempt_at + timedelta(hours=1)
            session.add(row)
        session.commit()
    queue(sqlite_engine, 1, prefix="cli")
    out = CliRunner().invoke(app, ["mail", "send", "--batch-size", "2"])
    assert out.exit_code == 0, out.output
    assert "sent 1, retry later 0, failed 0" in out.output


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # aiosmtpd; the smtps server IS all-TLS
@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "smtps"])
def test_tls_and_login(engine, settings, tmp_path, implicit):
    """smtp:// upgrades with STARTTLS (the server requires it), smtps:// speaks TLS from the start; both
    verify the certificate against ?cafile= and log in with the URL-decoded user and password."""
    from urllib.parse import quote

    from mailserver import TLSServer, make_certificate

    cert, key = make_certificate(tmp_path)
    server = TLSServer(cert, key, implicit=implicit).start()
    try:
        scheme = "smtps" if implicit else "smtp"
        url = f"{scheme}://{quote('ops@corp', safe='')}:{quote('p:ss w0rd', safe='')}@127.0.0.1:{server.port}?cafile={quote(cert)}"
        ids = queue(engine, 2)
        transport = SMTPTransport(url, rate_per_second=1000)
        assert deliver_pending(engine, transport).sent == 2
        transport.close()
        assert server.handler.message_ids() == ids and server.logins == ["ops@corp"]
        # a wrong password or an untrusted certificate: nothing is sent, the batch is released for later
        from frontline.mail.transport import TransportUnavailable

        queue(engine, 1, prefix="more")
        bad = SMTPTransport(url.replace(quote("p:ss w0rd", safe=""), "wrong"), rate_per_second=1000, timeout=2)
        with pytest.raises(TransportUnavailable, match="cannot connect"):
            deliver_pending(engine, bad)
        untrusted = SMTPTransport(url.split("?")[0], rate_per_second=1000)
        with pytest.raises(TransportUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
            deliver_pending(engine, untrusted)
        assert [r.state for r in rows(engine)] == ["sent", "sent", "pending"]
        if not implicit:  # tls=none against a server that requires STARTTLS: refused, retried later
            plain = SMTPTransport(f"smtp://127.0.0.1:{server.port}?tls=none", rate_per_second=1000)
            result = deliver_pending(engine, plain)
            plain.close()
            assert result.retry == 1 and "530" in result.errors[0]
            assert len(server.handler.messages) == 2
    finally:
        server.stop()


@pytest.mark.prefect
def test_deliver_mail_flow_retries_the_batch_while_the_server_is_down(
    prefect_harness, sqlite_engine, sqlite_settings, monkeypatch
):
    """A listener that hangs up at once: every connection fails, the batch task is retried (3 retries),
    then the run fails and the messages stay pending with no attempt counted."""
    import socket as socketlib

    from flows.mail import deliver_mail
    from frontline.core.settings import get_settings
    from frontline.mail.transport import TransportUnavailable

    listener = socketlib.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted = []

    def hang_up():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(1)
            conn.close()

    threading.Thread(target=hang_up, daemon=True).start()
    monkeypatch.setenv("FRONTLINE_SMTP_URL", f"smtp://127.0.0.1:{listener.getsockname()[1]}?tls=none")
    get_settings.cache_clear()
    queue(sqlite_engine, 3)
    try:
        with pytest.raises(TransportUnavailable):
            deliver_mail(retry_delay_seconds=0)
    finally:
        listener.close()
    assert len(accepted) == 4  # first try + 3 retries
    assert all(r.state == "pending" and r.attempts == 0 for r in rows(sqlite_engine))


def test_rate_limit_spaces_sends_and_the_lease_is_renewed_before_each_send(engine, settings, smtp, monkeypatch):
    from mailserver import VirtualClock

    from frontline.mail import transport as transport_module

    clock = VirtualClock()
    monkeypatch.setattr(transport_module, "time", clock)
    ids = queue(engine, 6)
    transport = SMTPTransport(smtp.url, rate_per_second=20)  # at most one message every 50 ms
    t0 = utcnow()
    assert deliver_pending(engine, transport, batch_size=3, max_batches=1, now=t0).sent == 3
    transport.close()
    assert clock.sleeps == [0.05, 0.05]  # three sends: two full gaps
    assert smtp.handler.message_ids() == ids[:3]
    from frontline.mail.delivery import deliver_batch

    leases = []

    class Throttled:  # a transport that checks the lease of the message it is "sending"
        def send(self, mime, *, message_id, **kw):
            with Session(engine) as session:
                row = session.exec(select(OutboundMessage).where(OutboundMessage.message_id == message_id)).one()
                leases.append((row.state, row.next_attempt_at - t0))

        def close(self):
            pass

    assert deliver_batch(engine, Throttled(), batch_size=3, now=t0).sent == 3
    # each message is sent under a lease just renewed for a full LEASE (fencing compare-and-set)
    assert [state for state, _ in leases] == ["sending"] * 3
    assert all(LEASE <= lease < LEASE + timedelta(seconds=30) for _, lease in leases)
