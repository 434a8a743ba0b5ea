"""The outbox folder takes a claimed batch at once (issue 14): every file written and synced, the folder
synced once, then the batch marked ``sent`` in one commit. A sender killed (SIGKILL, its own process)
after writing some or all of a batch but before that commit loses nothing: the rows are still
``sending`` and the next delivery, one lease later, writes the same file names with the same bytes.
Every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlmodel import Session, select

from frontline.mail import compose, enqueue
from frontline.mail.delivery import LEASE, deliver_pending
from frontline.mail.transport import FolderTransport, eml_name
from models import OutboundMessage, utcnow

ROOT = Path(__file__).resolve().parent.parent
MESSAGES = 30

# A sender whose folder transport kills its own process with SIGKILL after writing ``after`` files of the
# batch (renamed into place and synced), or right after the whole batch was written ("batch"), before
# the delivery could commit anything.
KILLED_SENDER = """
import os, signal, sys, threading
sys.path.insert(0, sys.argv[4])
from frontline.mail.delivery import deliver_pending
from frontline.mail.transport import FolderTransport
from models import get_engine

url, folder, after = sys.argv[1], sys.argv[2], sys.argv[3]

class Crashing(FolderTransport):
    written = 0
    lock = threading.Lock()

    def _write(self, target, mime):
        super()._write(target, mime)
        with self.lock:  # the files of a batch are written by several threads
            self.written += 1
            if after != "batch" and self.written == int(after):
                os.kill(os.getpid(), signal.SIGKILL)

    def send_batch(self, messages):
        super().send_batch(messages)
        if after == "batch":
            os.kill(os.getpid(), signal.SIGKILL)

deliver_pending(get_engine(url), Crashing(folder), batch_size=50)
print("not killed")
"""


def queue(engine, n: int) -> list[str]:
    ids = []
    with Session(engine) as session:
        for i in range(n):
            msg = compose(to=f"p{i}@example.com", subject=f"Hello {i}", text=f"body {i}\n", html=f"<p>{i}</p>")
            row = enqueue(session, msg, kind="test", idempotency_key=f"folder:{i}")
            assert row is not None
            ids.append(row.message_id)
        session.commit()
    return ids


def states(engine) -> dict[str, str]:
    with Session(engine) as session:
        return {r.message_id: r.state for r in session.exec(select(OutboundMessage)).all()}


def files(folder: Path) -> dict[str, bytes]:
    """The messages in the folder by file name (a kill mid-write may leave a ``.tmp-*`` file, never a
    partial message under a message's name)."""
    if not folder.exists():
        return {}
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if not p.name.startswith(".tmp-")}


@pytest.mark.parametrize("after", ["3", "batch"])
def test_a_sender_killed_before_its_commit_loses_nothing_and_redelivery_rewrites_the_same_files(
    database, settings, after
):
    url, engine = database
    ids = queue(engine, MESSAGES)
    folder = settings.outbox_dir
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_SENDER, url, str(folder), after, str(ROOT)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    # killed before the commit: nothing is recorded as sent, whatever is already on disk
    assert set(states(engine).values()) == {"sending"}
    before = files(folder)
    # mid-batch: the third file and the ones other writer threads finished meanwhile
    assert (len(before) == MESSAGES) if after == "batch" else (3 <= len(before) < MESSAGES)

    result = deliver_pending(engine, now=utcnow() + LEASE + timedelta(seconds=1))  # the lease ran out
    assert (result.claimed, result.sent, result.failed) == (MESSAGES, MESSAGES, 0)
    assert set(states(engine).values()) == {"sent"}
    after_redelivery = files(folder)
    assert sorted(after_redelivery) == sorted(eml_name(m) for m in ids)  # one file per message, no copy
    for name, data in before.items():  # the files written before the kill were rewritten with the same bytes
        assert after_redelivery[name] == data
    with Session(engine) as session:
        for row in session.exec(select(OutboundMessage)).all():
            assert after_redelivery[eml_name(row.message_id)] == row.mime


def test_a_batch_is_fenced_written_and_recorded_in_two_commits(engine, settings):
    """Two commits a batch (fence + load, record), whatever its size; the per-message path took two per
    message. Rows another sender took over meanwhile are neither written nor recorded here."""
    ids = queue(engine, 30)
    commits: list[int] = []

    def count(_conn) -> None:
        commits.append(1)

    event.listen(engine, "commit", count)
    try:
        result = deliver_pending(engine, batch_size=12)
    finally:
        event.remove(engine, "commit", count)
    assert (result.sent, result.failed, result.taken_over) == (30, 0, 0)
    assert len(commits) <= 3 * 3 + 1  # 3 batches: claim, fence and load, record (+ the final empty claim)
    assert sorted(files(settings.outbox_dir)) == sorted(eml_name(m) for m in ids)


def test_rows_taken_over_before_the_write_are_left_to_their_new_holder(engine, settings):
    from frontline.mail.delivery import claim_batch, send_claimed

    queue(engine, 4)
    first = claim_batch(engine, 10, lease=timedelta(seconds=1))
    later = utcnow() + timedelta(seconds=5)
    second = claim_batch(engine, 2, now=later)  # two rows' leases ran out: another sender takes them
    assert len(second) == 2
    result = send_claimed(engine, first, FolderTransport(settings.outbox_dir), now=later)
    assert (result.sent, result.taken_over) == (2, 2)
    assert len(files(settings.outbox_dir)) == 2
    held = states(engine)
    assert sorted(held.values()) == ["sending", "sending", "sent", "sent"]
