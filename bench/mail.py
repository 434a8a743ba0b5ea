"""Mail delivery throughput to a local SMTP server (aiosmtpd on 127.0.0.1), in one run:

1. transport only: a new SMTP connection per message (what a naive sender does) vs one reused
   connection, alternating in 5 rounds so that load from other processes affects both alike;
2. the whole outbox path (enqueue, claim, send, mark sent; temporary SQLite database) with the default
   settings (``FRONTLINE_SMTP_URL`` set, nothing else: adaptive pacing, PIPELINING when the server
   offers it) beside the old path measured in the same run: ``smtplib.sendmail`` over one connection
   per batch spaced to the old default of 10 msg/s, and the same old path with no spacing at all (a rate
   the old settings refused), alternating in rounds;
3. against a throttling server (answers ``451 4.7.1`` above ``--limit`` msg/s in any second; and one
   answering ``421 4.7.0``): the rate achieved with defaults, over the whole run and its second half
   (convergence), throttling replies, messages failed or delivered twice; beside the old path (fixed
   10 msg/s; and unpaced, which leaves throttled messages waiting for their 1-minute backoff).

    .venv/bin/python bench/mail.py [--messages 500] [--old-messages 100] [--limit 50]

Prints figures, not pass/fail. The SMTP server runs in the same process (a thread), so absolute numbers
are lower than against a separate relay; the ratio between the runs is the point.
"""

from __future__ import annotations

import argparse
import os
import smtplib
import socket
import sys
import tempfile
import time
from collections import Counter, deque
from email import message_from_bytes, policy
from email.utils import parseaddr
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiosmtpd.controller import Controller

from frontline.mail.transport import _CRLF, PartialDelivery, SendError, SMTPTransport, _decode


class CountingHandler:
    """Counts accepted messages by Message-ID; advertises PIPELINING like Postfix; optionally throttles:
    above ``limit`` messages accepted in the last second it answers ``reply``."""

    def __init__(self, limit: int | None = None, reply: str = "451 4.7.1 rate limited, slow down"):
        self.count = 0
        self.ids: Counter[str] = Counter()
        self.limit, self.reply = limit, reply
        self.throttled = 0
        self.window: deque[float] = deque()
        self.times: list[float] = []

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_DATA(self, server, session, envelope):
        now = time.monotonic()
        if self.limit is not None:
            while self.window and self.window[0] <= now - 1.0:
                self.window.popleft()
            if len(self.window) >= self.limit:
                self.throttled += 1
                return self.reply
            self.window.append(now)
        self.count += 1
        self.times.append(now)
        msg = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        self.ids[str(msg.get("Message-ID", "")).strip()] += 1
        return "250 OK"


class OldPathTransport(SMTPTransport):
    """Baseline: the transport before adaptive pacing, as it was. ``smtplib.sendmail`` (no PIPELINING)
    over one connection per batch, every send spaced to a fixed ``rate`` (the old default setting: 10
    msg/s), every refusal (also a throttling one) a failed attempt of its message."""

    def __init__(self, url: str, rate: float):
        super().__init__(url, pipelining=False)
        self.min_interval = 1.0 / rate if rate > 0 else 0.0
        self._last_send = 0.0

    def send(self, mime: bytes, *, mail_from: str, recipients: list[str], message_id: str) -> None:
        if self._smtp is None:
            self._smtp = self._connect()
        if self.min_interval:
            wait = self._last_send + self.min_interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        self._last_send = time.monotonic()
        envelope_from = parseaddr(mail_from)[1] or mail_from
        try:
            refused = self._smtp.sendmail(envelope_from, recipients, _CRLF.sub(b"\r\n", mime))
        except smtplib.SMTPServerDisconnected as exc:
            self._drop()
            raise SendError(f"connection dropped: {exc}") from exc
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            raise SendError(f"recipient refused: {code} {_decode(text)}", code) from exc
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            self._reset()
            raise SendError(f"{exc.smtp_code} {_decode(exc.smtp_error)}", exc.smtp_code) from exc
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            raise SendError(f"SMTP error: {exc}") from exc
        if refused:
            raise PartialDelivery(f"some recipients refused: {refused}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, handler: CountingHandler):
        self.handler = handler
        self.port = free_port()
        self.controller = Controller(
            handler, hostname="127.0.0.1", port=self.port, server_hostname="localhost", ready_timeout=5.0
        )
        self.controller.start()
        self.url = f"smtp://127.0.0.1:{self.port}?tls=none"

    def stop(self) -> None:
        self.controller.stop()


HTML = "<p>" + "Customer pain, observed on the front line. " * 40 + "</p>"


def compose_bench(i: int):
    from frontline.mail import compose

    return compose(to=f"person{i}@example.com", subject=f"Bench {i}", text="hello\n" * 20, html=HTML)


def queue(engine, tag: str, n: int) -> None:
    from sqlmodel import Session

    from frontline.mail import enqueue

    with Session(engine) as session:
        for i in range(n):
            enqueue(session, compose_bench(i), kind="bench", idempotency_key=f"bench:{tag}:{i}")
        session.commit()


def outbox_run(engine, tag: str, n: int, transport=None) -> tuple[float, object, float]:
    """Queue ``n`` messages, deliver them all (``transport`` None: the product's default transport from
    the settings); returns (seconds, DeliveryResult, seconds of the second half of the sends)."""
    from frontline.mail.delivery import deliver_pending

    queue(engine, tag, n)
    t0 = time.perf_counter()
    result = deliver_pending(engine, transport, batch_size=200)
    return time.perf_counter() - t0, result, 0.0


def transport_only(url: str, msgs: list[bytes]) -> None:
    n = len(msgs)
    rounds = 5
    fresh = reused = 0.0
    connections = 0
    for r in range(rounds):
        chunk = list(enumerate(msgs))[r::rounds]
        t0 = time.perf_counter()
        for i, raw in chunk:  # baseline: one connection per message
            t = SMTPTransport(url)
            t.send(raw, mail_from="frontline@example.com", recipients=[f"person{i}@example.com"], message_id=str(i))
            t.close()
        fresh += time.perf_counter() - t0
        t = SMTPTransport(url)
        t0 = time.perf_counter()
        for i, raw in chunk:  # one reused connection
            t.send(raw, mail_from="frontline@example.com", recipients=[f"person{i}@example.com"], message_id=str(i))
        t.close()
        reused += time.perf_counter() - t0
        connections += t.connections
    print(f"1. transport only, {n} messages of ~{len(msgs[0]) // 1024} KB, 5 alternating rounds")
    print(f"   new connection per message (baseline): {n / fresh:8.1f} msg/s  ({fresh:.2f} s)")
    print(f"   one reused connection, pipelined:      {n / reused:8.1f} msg/s  ({reused:.2f} s, {connections} conn.)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--old-messages", type=int, default=100, help="messages for the old 10 msg/s path")
    parser.add_argument("--limit", type=int, default=50, help="msg/s the throttling server accepts")
    parser.add_argument("--throttle-messages", type=int, default=400)
    args = parser.parse_args()
    n = args.messages

    tmp = Path(tempfile.mkdtemp(prefix="frontline-bench-mail-"))
    os.environ.setdefault("FRONTLINE_SECRET_KEY", "bench")
    os.environ["FRONTLINE_DATABASE_URL"] = f"sqlite:///{tmp / 'bench.db'}"
    os.environ.pop("FRONTLINE_SMTP_RATE_PER_SECOND", None)

    from frontline.core.settings import get_settings
    from models import get_engine, init_db

    engine = get_engine()
    init_db(engine)
    plain = Server(CountingHandler())
    try:
        msgs = []
        for i in range(n):
            m = compose_bench(i)
            m["From"] = "Frontline <frontline@example.com>"
            m["Message-ID"] = f"<bench-{i}@example.com>"
            msgs.append(m.as_bytes())
        transport_only(plain.url, msgs)

        os.environ["FRONTLINE_SMTP_URL"] = plain.url  # defaults: nothing else set
        get_settings.cache_clear()
        assert get_settings().smtp_rate_per_second is None
        rounds, new_s, fast_s, old_s = 3, 0.0, 0.0, 0.0
        per_round = max(1, n // rounds)
        for r in range(rounds):  # alternate, so that load from other engineers hits both alike
            seconds, result, _ = outbox_run(engine, f"new{r}", per_round)
            assert result.sent == per_round, result
            new_s += seconds
            old = OldPathTransport(plain.url, rate=0)
            seconds, result, _ = outbox_run(engine, f"fast{r}", per_round, old)
            old.close()
            assert result.sent == per_round, result
            fast_s += seconds
        old = OldPathTransport(plain.url, rate=10.0)
        old_s, old_result, _ = outbox_run(engine, "old10", args.old_messages, old)
        old.close()
        done = rounds * per_round
        print(f"\n2. outbox path (claim + send + mark sent, SQLite), {done} messages each, 3 alternating rounds")
        print(
            f"   old path, default 10 msg/s (baseline): {old_result.sent / old_s:8.1f} msg/s  ({args.old_messages} msgs)"
        )
        print(f"   old path, no spacing (setting refused): {done / fast_s:8.1f} msg/s")
        print(f"   defaults now (adaptive, pipelined):     {done / new_s:8.1f} msg/s")
        print(f"   speed-up over the old default:          {(done / new_s) / (old_result.sent / old_s):8.1f} x")
        duplicates = sum(c - 1 for c in plain.handler.ids.values() if c > 1)
        print(f"   delivered twice: {duplicates}")
    finally:
        plain.stop()

    print(f"\n3. throttling server: accepts {args.limit} msg/s (any 1-s window), {args.throttle_messages} messages")
    for reply in ("451 4.7.1 rate limited, slow down", "421 4.7.0 try again later"):
        throttled_run(engine, args, reply)


def throttled_run(engine, args, reply: str) -> None:
    from frontline.core.settings import get_settings

    m = args.throttle_messages
    rows = []
    for label, make in (
        ("defaults now (adaptive)", lambda url: None),
        ("old path, 10 msg/s (baseline)", lambda url: OldPathTransport(url, rate=10.0)),
        ("old path, no spacing", lambda url: OldPathTransport(url, rate=0)),
    ):
        handler = CountingHandler(limit=args.limit, reply=reply)
        server = Server(handler)
        os.environ["FRONTLINE_SMTP_URL"] = server.url
        get_settings.cache_clear()
        count = m if "10 msg/s" not in label else min(m, args.old_messages)
        transport = make(server.url)
        tag = f"{label[:3]}-{reply[:3]}-{server.port}"
        try:
            seconds, result, _ = outbox_run(engine, tag, count, transport)
        finally:
            if transport is not None:
                transport.close()
            server.stop()
        times = handler.times
        half = times[len(times) // 2 :]
        second_half = (len(half) - 1) / (half[-1] - half[0]) if len(half) > 2 and half[-1] > half[0] else 0.0
        dup = sum(c - 1 for c in handler.ids.values() if c > 1)
        rows.append((label, handler.count / seconds, second_half, handler.throttled, result, dup, count))
    print(f"   server answers {reply!r}")
    print(
        f"   {'':32} {'msg/s':>7} {'2nd half':>8} {'throttle':>8} {'sent':>5} {'retry':>5} {'failed':>6} {'twice':>5}"
    )
    for label, rate, half, throttled, result, dup, count in rows:
        print(
            f"   {label:32} {rate:7.1f} {half:8.1f} {throttled:8d} {result.sent:5d} {result.retry:5d} "
            f"{result.failed:6d} {dup:5d}   of {count}"
        )


if __name__ == "__main__":
    main()
