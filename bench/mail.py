"""Mail delivery throughput to a local SMTP server (aiosmtpd on 127.0.0.1), in one run:

1. baseline: a new SMTP connection per message (what a naive sender does);
2. one connection reused for many messages (what ``SMTPTransport`` does per batch);
   1 and 2 alternate in 5 rounds so that load from other processes affects both alike;
3. the whole outbox path: enqueue, claim (compare-and-set), send over one reused connection, mark sent,
   on a temporary SQLite database.

    .venv/bin/python bench/mail.py [--messages 500]

Prints figures, not pass/fail. The SMTP server runs in the same process (a thread), so absolute numbers
are lower than against a separate relay; the ratio between the runs is the point.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiosmtpd.controller import Controller


class CountingHandler:
    def __init__(self):
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=500)
    args = parser.parse_args()
    n = args.messages

    tmp = Path(tempfile.mkdtemp(prefix="frontline-bench-mail-"))
    os.environ.setdefault("FRONTLINE_SECRET_KEY", "bench")
    os.environ["FRONTLINE_DATABASE_URL"] = f"sqlite:///{tmp / 'bench.db'}"
    os.environ.pop("FRONTLINE_SMTP_URL", None)

    from sqlmodel import Session

    from frontline.mail import compose, enqueue
    from frontline.mail.delivery import deliver_pending
    from frontline.mail.transport import SMTPTransport
    from models import get_engine, init_db

    handler = CountingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, server_hostname="localhost", ready_timeout=5.0)
    controller.start()
    url = f"smtp://127.0.0.1:{port}?tls=none"
    html = "<p>" + "Customer pain, observed on the front line. " * 40 + "</p>"
    msgs = []
    for i in range(n):
        m = compose(to=f"person{i}@example.com", subject=f"Bench {i}", text="hello\n" * 20, html=html)
        m["From"] = "Frontline <frontline@example.com>"
        m["Message-ID"] = f"<bench-{i}@example.com>"
        msgs.append(m.as_bytes())
    try:
        # 1 and 2 alternate in rounds, so load from other processes on a shared machine hits both alike
        rounds = 5
        fresh = reused = 0.0
        connections = 0
        chunks = [list(enumerate(msgs))[r::rounds] for r in range(rounds)]
        for chunk in chunks:
            t0 = time.perf_counter()
            for i, raw in chunk:  # baseline: one connection per message
                t = SMTPTransport(url, rate_per_second=0)
                t.send(raw, mail_from="frontline@example.com", recipients=[f"person{i}@example.com"], message_id=str(i))
                t.close()
            fresh += time.perf_counter() - t0
            t = SMTPTransport(url, rate_per_second=0)
            t0 = time.perf_counter()
            for i, raw in chunk:  # one reused connection
                t.send(raw, mail_from="frontline@example.com", recipients=[f"person{i}@example.com"], message_id=str(i))
            t.close()
            reused += time.perf_counter() - t0
            connections += t.connections

        # 3. the full outbox path (enqueue, claim, send, mark) over one reused connection per batch
        engine = get_engine()
        init_db(engine)
        t0 = time.perf_counter()
        with Session(engine) as session:
            for i in range(n):
                m = compose(to=f"person{i}@example.com", subject=f"Bench {i}", text="hello\n" * 20, html=html)
                enqueue(session, m, kind="bench", idempotency_key=f"bench:{i}")
            session.commit()
        queued = time.perf_counter() - t0
        t = SMTPTransport(url, rate_per_second=0)
        t0 = time.perf_counter()
        result = deliver_pending(engine, t, batch_size=200)
        t.close()
        pipeline = time.perf_counter() - t0
    finally:
        controller.stop()

    assert handler.count == 3 * n, handler.count
    print(f"mail delivery to aiosmtpd on loopback, {n} messages of ~{len(msgs[0]) // 1024} KB")
    print(f"  new connection per message (baseline): {n / fresh:8.1f} msg/s  ({fresh:.2f} s)")
    print(
        f"  one reused connection per round:       {n / reused:8.1f} msg/s  ({reused:.2f} s, {connections} connections)"
    )
    print(f"  speed-up from connection reuse:        {fresh / reused:8.2f} x")
    print(
        f"  outbox path (claim+send+mark, SQLite): {result.sent / pipeline:8.1f} msg/s  ({pipeline:.2f} s, "
        f"{t.connections} connection(s)); enqueue {n / queued:.0f} msg/s"
    )


if __name__ == "__main__":
    main()
