"""Fault injection (issue 12): two outbox senders at once, each its own process, against a real SMTP
server on loopback (``tests/mailserver.py``) that is slow, refuses (4xx/5xx), drops connections, and is
killed mid-batch; and a sender killed with SIGKILL mid-batch. Whatever happens: no message is lost, and
a message arrives twice only when it was the one in flight at a crash (counted by Message-ID at the
server). Every test runs on SQLite and PostgreSQL; the whole suite takes about a minute.

Run alone with ``pytest -m faults``; ``make test`` runs it with everything else.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from mailserver import SMTPServer
from sqlmodel import Session, select

from frontline.mail import compose, enqueue
from models import OutboundMessage

pytestmark = pytest.mark.faults

SENDER = Path(__file__).resolve().parent / "fault_sender.py"
MESSAGES = 30


@pytest.fixture
def smtp():
    server = SMTPServer().start()
    yield server
    server.stop()


def queue(engine, n: int = MESSAGES) -> list[str]:
    ids = []
    with Session(engine) as session:
        for i in range(n):
            msg = compose(to=f"person{i}@example.com", subject=f"Message {i}", text=f"body {i}\n")
            row = enqueue(session, msg, kind="test", idempotency_key=f"fault:{i}")
            assert row is not None
            ids.append(row.message_id)
        session.commit()
    return ids


def start_sender(url: str, smtp: SMTPServer, *, lease: float = 1.5, batch: int = 10) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(SENDER), url, smtp.url, "--lease", str(lease), "--batch", str(batch)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(sender: subprocess.Popen) -> dict | None:
    """The sender's totals once it ended by itself (None for a killed one)."""
    out, err = sender.communicate(timeout=120)
    if sender.returncode != 0:
        assert sender.returncode < 0, f"sender failed:\n{err}"  # negative: killed on purpose
        return None
    return json.loads(out.strip().splitlines()[-1])


def delivered(engine, smtp: SMTPServer, ids: list[str]) -> Counter:
    """How often each message reached the server; asserts nothing was lost and the outbox is done."""
    counts = Counter(smtp.handler.message_ids())
    lost = [m for m in ids if counts[m] == 0]
    assert not lost, f"{len(lost)} message(s) lost"
    with Session(engine) as session:
        rows = session.exec(select(OutboundMessage)).all()
    assert all(r.state == "sent" and r.lease_token is None for r in rows), Counter(r.state for r in rows)
    return counts


def duplicates(counts: Counter) -> int:
    return sum(n - 1 for n in counts.values() if n > 1)


def wait_for(condition, timeout: float = 30.0) -> None:
    stop = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < stop, "timed out"
        time.sleep(0.01)


def test_slow_server_two_senders_nothing_twice(database, smtp):
    """0.05 s per message, and four messages take 1.5 s each, longer than the whole lease (1 s). Only the
    heartbeat keeps a sender's batch, and the message it is sending, its own; without it the other sender
    takes the slow message over while it is still being sent, and it arrives twice."""
    url, engine = database
    ids = queue(engine)
    smtp.handler.delay = 0.05
    smtp.handler.slow = {ids[i]: 1.5 for i in (3, 11, 19, 27)}
    senders = [start_sender(url, smtp, lease=1.0, batch=10) for _ in range(2)]
    totals = [finish(s) for s in senders]
    counts = delivered(engine, smtp, ids)
    assert duplicates(counts) == 0, counts.most_common(3)
    assert sum(t["sent"] for t in totals if t) == MESSAGES


def test_refusals_and_dropped_connections_two_senders(database, smtp):
    """Four attempts in ten fail at random: 421/451 (temporary), 550/554 (permanent-looking) or the
    connection dropped in the middle of DATA. Everything arrives, exactly once."""
    url, engine = database
    ids = queue(engine)
    smtp.handler.delay = 0.01
    smtp.handler.misbehave(0.4, seed=12)
    senders = [start_sender(url, smtp) for _ in range(2)]
    totals = [finish(s) for s in senders]
    counts = delivered(engine, smtp, ids)
    assert duplicates(counts) == 0, counts.most_common(3)
    assert sum(t["retry"] for t in totals if t) >= 10  # the faults did happen
    assert smtp.handler.attempts > MESSAGES


def test_server_killed_mid_batch_two_senders(database, smtp):
    """The server dies after 10 messages (connections cut, nothing answered) and comes back 1 s later.
    A message each sender had in flight may have been taken by the server without an answer: at most
    those (one per sender) arrive twice."""
    url, engine = database
    ids = queue(engine)
    smtp.handler.delay = 0.05

    def kill_and_restart() -> None:
        wait_for(lambda: len(smtp.handler.messages) >= 10)
        smtp.kill()
        time.sleep(1.0)
        smtp.restart()

    killer = threading.Thread(target=kill_and_restart)
    killer.start()
    senders = [start_sender(url, smtp) for _ in range(2)]
    totals = [finish(s) for s in senders]
    killer.join(30)
    counts = delivered(engine, smtp, ids)
    assert duplicates(counts) <= 2, counts.most_common(3)
    assert sum(t["unavailable"] + t["retry"] for t in totals if t) >= 1  # the senders did notice


def test_sender_killed_mid_batch(database, smtp):
    """One of two senders is killed with SIGKILL in the middle of its batch. Its rows stay 'sending'
    until their lease (1.5 s) runs out unrenewed; the other sender then sends them. Only the message the
    dead sender had in flight may arrive twice."""
    url, engine = database
    ids = queue(engine)
    smtp.handler.delay = 0.1
    victim, survivor = (start_sender(url, smtp, lease=1.5, batch=10) for _ in range(2))
    wait_for(lambda: len(smtp.handler.messages) >= 5)  # both are under way
    victim.kill()
    assert finish(victim) is None
    finish(survivor)
    counts = delivered(engine, smtp, ids)
    assert duplicates(counts) <= 1, counts.most_common(3)
