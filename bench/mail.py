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

Prints figures, not pass/fail. The SMTP server runs in its own process on the same machine (as a local
relay would), so client and server share its cores; the ratio between the runs is the point.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import re
import smtplib
import socket
import sys
import tempfile
import time
from collections import Counter, deque
from email.utils import parseaddr
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiosmtpd.controller import Controller

from frontline.mail.transport import _CRLF, PartialDelivery, SendError, SMTPTransport, _decode

MESSAGE_ID = re.compile(rb"(?im)^Message-ID:\s*(<[^>\r\n]+>)")


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
        found = MESSAGE_ID.search(envelope.original_content or envelope.content)  # cheaper than parsing it all
        self.ids[found.group(1).decode() if found else ""] += 1
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


def _serve(port: int, limit: int | None, reply: str, ready, stop, results) -> None:
    handler = CountingHandler(limit, reply)
    controller = Controller(handler, hostname="127.0.0.1", port=port, server_hostname="localhost", ready_timeout=5.0)
    controller.start()
    ready.set()
    stop.wait()
    controller.stop()
    results.put((handler.count, dict(handler.ids), handler.throttled, handler.times))


class Server:
    """aiosmtpd in its own process (as a relay would be: client and server do not share a GIL); what
    it counted is read back when it stops (:attr:`handler`)."""

    def __init__(self, limit: int | None = None, reply: str = "451 4.7.1 rate limited, slow down"):
        self.port = free_port()
        self._ready, self._stop, self._results = mp.Event(), mp.Event(), mp.Queue()
        self.process = mp.Process(
            target=_serve, args=(self.port, limit, reply, self._ready, self._stop, self._results), daemon=True
        )
        self.process.start()
        if not self._ready.wait(30):
            raise RuntimeError("the bench SMTP server did not start")
        self.url = f"smtp://127.0.0.1:{self.port}?tls=none"
        self.handler = CountingHandler(limit, reply)

    def stop(self) -> CountingHandler:
        if self.process.is_alive():
            self._stop.set()
            count, ids, throttled, times = self._results.get(timeout=60)
            self.process.join(30)
            self.handler.count, self.handler.ids = count, Counter(ids)
            self.handler.throttled, self.handler.times = throttled, times
        return self.handler


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


def outbox_run(engine, tag: str, n: int, transport=None) -> tuple[float, Any]:
    """Queue ``n`` messages, then deliver them all (``transport`` None: the product's default transport
    from the settings, as ``deliver-mail`` does); returns (seconds of the delivery, DeliveryResult)."""
    from frontline.mail.delivery import deliver_pending

    queue(engine, tag, n)
    t0 = time.perf_counter()
    result = deliver_pending(engine, transport, batch_size=200)
    return time.perf_counter() - t0, result


def send_all(transport, chunk: list[tuple[int, bytes]]) -> float:
    t0 = time.perf_counter()
    for i, raw in chunk:
        transport.send(raw, mail_from="frontline@example.com", recipients=[f"person{i}@example.com"], message_id=str(i))
    return time.perf_counter() - t0


def transport_only(url: str, msgs: list[bytes]) -> None:
    """Connection per message vs the old transport (smtplib, reused connection, no spacing: the figure
    the old settings could not reach) vs the transport now with defaults, alternating in 5 rounds."""
    n, rounds = len(msgs), 5
    took = {"fresh": 0.0, "old": 0.0, "new": 0.0}
    pipelined = 0
    for r in range(rounds):
        chunk = list(enumerate(msgs))[r::rounds]
        t0 = time.perf_counter()
        for item in chunk:  # baseline: one connection per message
            t = SMTPTransport(url)
            send_all(t, [item])
            t.close()
        took["fresh"] += time.perf_counter() - t0
        old = OldPathTransport(url, rate=0)
        took["old"] += send_all(old, chunk)
        old.close()
        new = SMTPTransport(url)  # the defaults: no rate ceiling, PIPELINING when offered
        took["new"] += send_all(new, chunk)
        new.close()
        pipelined += new.pipelined
    print(f"1. transport only (no database), {n} messages of ~{len(msgs[0]) // 1024} KB, 5 alternating rounds")
    print(f"   new connection per message:                 {n / took['fresh']:8.1f} msg/s")
    print(f"   old transport, reused connection, unpaced:  {n / took['old']:8.1f} msg/s  (old settings refused this)")
    print(f"   transport now, defaults (pipelined {pipelined}/{n}): {n / took['new']:8.1f} msg/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=600)
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
    print(f"load average before the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    msgs = []
    for i in range(n):
        m = compose_bench(i)
        m["From"] = "Frontline <frontline@example.com>"
        m["Message-ID"] = f"<bench-{i}@example.com>"
        msgs.append(m.as_bytes())
    server = Server()
    try:
        transport_only(server.url, msgs)
    finally:
        server.stop()

    server = Server()
    try:
        os.environ["FRONTLINE_SMTP_URL"] = server.url  # defaults: nothing else set
        get_settings.cache_clear()
        assert get_settings().smtp_rate_per_second is None
        rounds, took = 4, {"new": 0.0, "fast": 0.0}
        per_round = max(1, n // rounds)
        for r in range(rounds):  # alternate, and swap who goes first, so that load hits both alike
            for which in ("new", "fast") if r % 2 == 0 else ("fast", "new"):
                old = OldPathTransport(server.url, rate=0) if which == "fast" else None
                seconds, result = outbox_run(engine, f"{which}{r}", per_round, old)
                if old is not None:
                    old.close()
                assert result.sent == per_round, result
                took[which] += seconds
        old = OldPathTransport(server.url, rate=10.0)
        old_s, old_result = outbox_run(engine, "old10", args.old_messages, old)
        old.close()
    finally:
        counted = server.stop()
    done = rounds * per_round
    old_rate, new_rate = old_result.sent / old_s, done / took["new"]
    twice = sum(c - 1 for c in counted.ids.values() if c > 1)
    print(f"\n2. outbox path (claim + send + mark sent, SQLite), {done} messages each, 4 alternating rounds")
    print(f"   old path, old default 10 msg/s (baseline):  {old_rate:8.1f} msg/s  ({args.old_messages} messages)")
    print(f"   old path, unpaced (old settings refused):   {done / took['fast']:8.1f} msg/s")
    print(f"   now, default settings:                      {new_rate:8.1f} msg/s  ({new_rate / old_rate:.0f}x)")
    print(f"   messages delivered twice: {twice}")

    print(f"\n3. throttling server: accepts {args.limit} msg/s (any 1-s window), {args.throttle_messages} messages")
    for reply in ("451 4.7.1 rate limited, slow down", "421 4.7.0 try again later"):
        throttled_run(engine, args, reply)


def throttled_run(engine, args, reply: str) -> None:
    from frontline.core.settings import get_settings

    rows = []
    for label, old_rate in (
        ("now, default settings", None),
        ("old path, 10 msg/s (baseline)", 10.0),
        ("old path, unpaced", 0.0),
    ):
        server = Server(args.limit, reply)
        os.environ["FRONTLINE_SMTP_URL"] = server.url
        get_settings.cache_clear()
        count = min(args.throttle_messages, args.old_messages) if old_rate else args.throttle_messages
        transport = None if old_rate is None else OldPathTransport(server.url, rate=old_rate)
        try:
            seconds, result = outbox_run(engine, f"{reply[:3]}-{server.port}", count, transport)
        finally:
            if transport is not None:
                transport.close()
            handler = server.stop()
        half = handler.times[len(handler.times) // 2 :]
        span = half[-1] - half[0] if len(half) > 2 else 0.0
        second_half = (len(half) - 1) / span if span > 0 else 0.0
        twice = sum(c - 1 for c in handler.ids.values() if c > 1)
        rows.append((label, handler.count / seconds, second_half, handler.throttled, result, twice, count))
    print(f"   server answers {reply!r}")
    print(
        f"   {'':30} {'msg/s':>6} {'2nd half':>8} {'throttled':>9} {'sent':>5} {'later':>5} {'failed':>6} {'twice':>5}"
    )
    for label, rate, half_rate, throttled, result, twice, count in rows:
        print(
            f"   {label:30} {rate:6.1f} {half_rate:8.1f} {throttled:9d} {result.sent:5d} {result.retry:5d} "
            f"{result.failed:6d} {twice:5d}   of {count}"
        )


if __name__ == "__main__":
    main()
