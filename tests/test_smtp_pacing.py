"""SMTP pacing (issue 14): no fixed cap by default, PIPELINING when the server offers it, and slowing
down (without failing anything) when a real SMTP server on loopback throttles."""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta

import pytest
from mailserver import SMTPServer, VirtualClock
from sqlmodel import Session, select

from frontline.mail import compose, enqueue
from frontline.mail.delivery import MAX_THROTTLED_IN_A_ROW, deliver_pending
from frontline.mail.transport import Pacer, SMTPTransport, TransportUnavailable, is_throttle
from models import OutboundMessage, utcnow


@pytest.fixture
def smtp():
    with SMTPServer() as server:
        yield server


def queue(engine, n: int, *, text: str = "body {i}\n", prefix: str = "pacing") -> list[str]:
    ids = []
    with Session(engine) as session:
        for i in range(n):
            msg = compose(to=f"person{i}@example.com", subject=f"Hello {i}", text=text.format(i=i))
            row = enqueue(session, msg, kind="test", idempotency_key=f"{prefix}:{i}")
            assert row is not None
            ids.append(row.message_id)
        session.commit()
    return ids


def rows(engine) -> list[OutboundMessage]:
    with Session(engine) as session:
        return list(session.exec(select(OutboundMessage).order_by(OutboundMessage.id)).all())


def test_default_settings_do_not_cap_delivery_at_the_old_rate(engine, settings, smtp, monkeypatch):
    """The product's default path (``FRONTLINE_SMTP_URL`` set, nothing else) delivers 500 messages in
    well under 50 s. The old default (10 msg/s) needs 49.9 s for the gaps between 500 sends alone, so it
    cannot pass however fast the machine; the new path takes a few seconds even on a loaded machine
    (the margin is 5-10x)."""
    from frontline.core.settings import get_settings

    monkeypatch.setenv("FRONTLINE_SMTP_URL", smtp.url)
    monkeypatch.delenv("FRONTLINE_SMTP_RATE_PER_SECOND", raising=False)
    get_settings.cache_clear()
    assert get_settings().smtp_rate_per_second is None
    ids = queue(engine, 500)
    started = time.monotonic()
    result = deliver_pending(engine, batch_size=200)  # the transport from the settings, as deliver-mail does
    elapsed = time.monotonic() - started
    assert (result.sent, result.retry, result.failed) == (500, 0, 0)
    assert Counter(smtp.handler.message_ids()) == Counter(ids)
    assert elapsed < 50, f"500 messages took {elapsed:.1f} s: paced at the old 10 msg/s default?"


def test_rate_setting_is_an_optional_ceiling(monkeypatch, settings):
    from frontline.core.settings import get_settings
    from frontline.mail.transport import transport_from_settings

    monkeypatch.setenv("FRONTLINE_SMTP_URL", "smtp://relay.example:2525?tls=none")
    monkeypatch.setenv("FRONTLINE_SMTP_RATE_PER_SECOND", "25")
    get_settings.cache_clear()
    capped = transport_from_settings()
    assert isinstance(capped, SMTPTransport) and capped.pacer.rate == 25 and capped.pacer.ceiling == 25
    # each deliver-mail batch opens its own transport: they share what was learned about the server
    assert transport_from_settings().pacer is capped.pacer  # type: ignore[union-attr]
    monkeypatch.setenv("FRONTLINE_SMTP_RATE_PER_SECOND", "0")
    get_settings.cache_clear()
    with pytest.raises(ValueError, match="FRONTLINE_SMTP_RATE_PER_SECOND: Input should be greater than 0"):
        get_settings()


@pytest.mark.parametrize(
    "reply", ["451 4.7.1 rate limited, slow down", "421 4.7.0 try again later"], ids=["451", "421"]
)
def test_throttling_server_slows_down_and_every_message_arrives_once(engine, settings, smtp, reply):
    """The server accepts 15 msg/s and answers ``reply`` above that. The sender slows down to about
    that rate: few throttling replies (an unpaced sender that simply resends draws hundreds), every
    message arrives exactly once, none is failed or put back for later, no attempt is counted for a
    throttled send, and delivery keeps near the server's rate (not halved and halved again)."""
    smtp.handler.limit(15, reply)
    ids = queue(engine, 90)
    transport = SMTPTransport(smtp.url)
    started = time.monotonic()
    result = deliver_pending(engine, transport, batch_size=200)
    elapsed = time.monotonic() - started
    transport.close()
    assert (result.sent, result.retry, result.failed) == (90, 0, 0), result.errors[:3]
    assert Counter(smtp.handler.message_ids()) == Counter(ids)  # exactly once each
    assert all(r.state == "sent" and r.attempts == 1 and r.last_error is None for r in rows(engine))
    assert 1 <= smtp.handler.throttled == result.throttled <= 25, smtp.handler.throttled
    assert transport.pacer.rate is not None and transport.pacer.floor >= 5  # paced now, near what it accepts
    assert elapsed < 90 / 5, f"{elapsed:.1f} s: slowed far below the 15 msg/s the server accepts"
    if reply.startswith("421"):
        assert transport.connections > 1  # reconnected after each 421


def test_a_server_that_keeps_throttling_gets_the_batch_back(engine, settings, smtp, monkeypatch):
    """Twelve throttling replies in a row for one message: that message gets a counted attempt with its
    backoff (so a reply that only looks like throttling cannot hold the queue forever: it fails after
    max_attempts like any 4xx), the rest of the batch is released untouched (pending, due now, no
    attempt counted), and ``TransportUnavailable`` tells deliver-mail to retry the batch later."""
    monkeypatch.setattr(Pacer, "PAUSE", 0.001)  # the pauses double from here: 12 in a row take ~4 s
    monkeypatch.setattr(Pacer, "MIN_RATE", 1000.0)  # and the halved rate does not space sends further
    smtp.handler.limit(0, "451 4.7.1 rate limited")
    ids = queue(engine, 3)
    transport = SMTPTransport(smtp.url)
    started = utcnow()
    with pytest.raises(TransportUnavailable, match="keeps throttling: 451 4.7.1"):
        deliver_pending(engine, transport, backoff_seconds=60)
    transport.close()
    assert smtp.handler.throttled == MAX_THROTTLED_IN_A_ROW and smtp.handler.messages == []
    state = {r.message_id: r for r in rows(engine)}
    first = state[ids[0]]
    assert first.state == "pending" and first.attempts == 1 and first.last_error.startswith("451 4.7.1")
    assert first.next_attempt_at >= started + timedelta(seconds=59)
    assert all(state[m].state == "pending" and state[m].attempts == 0 for m in ids[1:])
    assert all(r.lease_token is None for r in state.values())


def test_permanent_refusal_still_fails_the_message_even_when_it_mentions_a_rate(engine, settings, smtp):
    """5xx is not throttling: the message gets its attempts and backoff, then fails, as before."""
    ids = queue(engine, 3)
    smtp.handler.faults = {ids[1]: ["554 5.7.1 rate limit exceeded, message refused"] * 3}
    transport = SMTPTransport(smtp.url)
    now = utcnow()
    for _ in range(3):
        deliver_pending(engine, transport, now=now, max_attempts=3, backoff_seconds=1)
        now += timedelta(minutes=5)
    transport.close()
    state = {r.message_id: r for r in rows(engine)}
    assert state[ids[1]].state == "failed" and state[ids[1]].attempts == 3
    assert state[ids[1]].last_error.startswith("554 5.7.1")
    assert transport.pacer.throttles == 0
    assert sorted(smtp.handler.message_ids()) == sorted([ids[0], ids[2]])


def test_a_plain_temporary_failure_keeps_its_own_backoff(engine, settings, smtp):
    """ "451" without 4.7.x or rate words is about the message: retried later with its backoff, the
    attempt counted, the pacer untouched (the fault suite relies on this)."""
    ids = queue(engine, 2)
    smtp.handler.faults = {ids[0]: ["451"]}
    transport = SMTPTransport(smtp.url)
    result = deliver_pending(engine, transport, backoff_seconds=60)
    transport.close()
    assert (result.sent, result.retry, result.throttled) == (1, 1, 0)
    assert transport.pacer.throttles == 0 and transport.pacer.rate is None


@pytest.mark.parametrize(
    ("code", "text", "throttle"),
    [
        (451, "4.7.1 rate limited, slow down", True),
        (421, "4.7.0 try again later", True),
        (450, "4.7.28 unusual rate of mail", True),
        (451, "Too many messages, throttled", True),
        (451, "simulated temporary failure", False),
        (421, "closing", False),
        (452, "4.2.2 mailbox full", False),
        (550, "5.7.1 rate limit exceeded", False),
        (554, "too many recipients", False),
    ],
)
def test_what_counts_as_throttling(code, text, throttle):
    assert is_throttle(code, text) is throttle


def test_pipelined_and_plain_sends_deliver_the_same_bytes(engine, settings):
    """With PIPELINING (one write for MAIL, RCPT, DATA) the server receives exactly what smtplib's
    sendmail delivers: lines starting with a dot are dot-stuffed on the wire and restored, bare LFs
    become CRLF."""
    text = "line {i}\n.leading dot\n..two dots\n.\nend\n"
    got = {}
    for pipelining in (True, False):
        with SMTPServer() as server:
            server.handler.pipelining = pipelining
            ids = queue(engine, 3, text=text, prefix=f"pipelining-{pipelining}")
            transport = SMTPTransport(server.url)
            assert deliver_pending(engine, transport).sent == 3
            transport.close()
            assert transport.pipelined == (3 if pipelining else 0)
            assert transport.connections == 1
            assert server.handler.message_ids() == ids
            got[pipelining] = [raw.split(b"\r\n\r\n", 1)[1] for raw in server.handler.raw]  # the bodies
    assert got[True][0].startswith(b"line 0\r\n.leading dot\r\n..two dots\r\n.\r\nend\r\n"), got[True][0]
    assert got[True] == got[False]


@pytest.fixture
def clock(monkeypatch):
    from frontline.mail import transport as transport_module

    clock = VirtualClock()
    monkeypatch.setattr(transport_module, "time", clock)
    return clock


def send_accepted(pacer: Pacer, clock: VirtualClock, n: int, gap: float) -> None:
    for _ in range(n):
        clock.now += gap
        pacer.wait()
        pacer.accepted()


def test_pacer_halves_but_never_below_the_accepted_rate_and_probes_back_up(clock):
    pacer = Pacer()
    send_accepted(pacer, clock, 100, 0.01)  # unpaced: 100 msg/s, nothing slept
    assert clock.sleeps == [] and pacer.rate is None
    # a server that accepted 100 in the last second throttles: half of 100 would be 50, but it accepted 100
    pause = pacer.throttled()
    assert pacer.rate == pytest.approx(100) and pause == pytest.approx(0.1)
    # a server that accepted only 30 of the last 100 msg/s: halve (50), not down to 30
    pacer = Pacer()
    for i in range(100):
        clock.now += 0.01
        pacer.wait()
        if i % 10 < 3:
            pacer.accepted()
    pacer.throttled()
    assert pacer.rate == pytest.approx(50)
    assert pacer.floor == pytest.approx(30)
    # throttling replies in a row: rate halves down to the accepted rate, pauses double
    pacer.wait()
    assert clock.sleeps[-1] == pytest.approx(0.1)
    assert pacer.throttled() == pytest.approx(0.2)
    assert pacer.rate == pytest.approx(27)  # not 25: 27 accepted in the last second
    # two seconds without throttling: probe upward additively (step 5 % of the accepted rate, min 1)
    before = pacer.rate
    pacer.wait()
    clock.now += 2.0
    pacer.wait()
    assert pacer.rate == pytest.approx(before + 2 * pacer.step, rel=0.05)


def test_pacer_ceiling_spaces_sends_and_caps_the_probing(clock):
    pacer = Pacer(ceiling=20)
    send_accepted(pacer, clock, 3, 0.0)
    assert clock.sleeps == [0.05, 0.05]
    pacer.throttled()
    clock.now += 100
    pacer.wait()
    assert pacer.rate is not None and pacer.rate <= 20
