"""RSVP replies read from a real IMAP mailbox (Debian's Dovecot on loopback, ``make dovecot``), in one run:

1. baseline: N mails that are not replies (read, skipped, flagged): the mailbox's own cost per mail;
2. N accepts of N announced rotations (each one transaction: the answer and its audit event);
3. N declines of N other rotations (each also a change request for HR).

    .venv/bin/python bench/rsvp.py [--replies 200]

On a temporary SQLite database; prints mails per second for each, not pass/fail.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

ORGANISER = "frontline@example.com"
PASSWORD = "bench-pw"
AS_OF = date(2031, 10, 27)
START = date(2031, 11, 17)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replies", type=int, default=200)
    n = parser.parse_args().replies
    work = Path(tempfile.mkdtemp(prefix="frontline-bench-rsvp-"))
    os.environ.update(
        FRONTLINE_DATABASE_URL=f"sqlite:///{work / 'bench.db'}",
        FRONTLINE_POLICY_PATH=str(work / "frontline.toml"),
        FRONTLINE_OUTBOX_DIR=str(work / "outbox"),
        FRONTLINE_SECRET_KEY="bench",
        FRONTLINE_MAIL_FROM=f"Frontline <{ORGANISER}>",
    )
    (work / "frontline.toml").write_text((ROOT / "frontline.example.toml").read_text())
    from imapserver import Dovecot, dovecot_missing
    from sqlmodel import Session
    from test_rsvp_replies import plain_mail, queued_invite, reply_ics, reply_mail, send_invites

    from flows.runner import run_job
    from frontline.core.settings import get_settings
    from models import Department, Employee, Rotation, get_engine, init_db

    if dovecot_missing():
        sys.exit(str(dovecot_missing()))
    import logging

    logging.getLogger("frontline.jobs").setLevel(logging.ERROR)  # one warning per skipped mail otherwise
    engine = get_engine(os.environ["FRONTLINE_DATABASE_URL"])
    init_db(engine)
    with Session(engine) as s:
        dept = Department(name="Sales", head_name="H", head_email="head@example.com")
        s.add(dept)
        s.flush()
        rotations = []
        for i in range(2 * n):
            e = Employee(
                employee_id=f"E{i}",
                name=f"Person {i}",
                email=f"p{i}@example.com",
                department_id=dept.id or 0,
                hire_date=date(2024, 1, 1),
                timezone="Europe/Berlin",
                country="DE",
            )
            s.add(e)
            s.flush()
            start = START + timedelta(weeks=i % 4)
            r = Rotation(employee_id=e.id or 0, start=start, end=start + timedelta(days=27), kind="cycle", due=start)
            s.add(r)
            s.flush()
            rotations.append((r.id or 0, e.email))
        s.commit()
    send_invites(engine, AS_OF)
    with Dovecot({ORGANISER: PASSWORD}) as server:
        os.environ["FRONTLINE_IMAP_URL"] = server.url(ORGANISER, PASSWORD)
        get_settings.cache_clear()
        from imapclient import IMAPClient

        def fill(mails: list[bytes]) -> None:
            client = IMAPClient("127.0.0.1", port=server.port, ssl=False)
            client.login(ORGANISER, PASSWORD)
            for mail in mails:
                client.append("INBOX", mail)
            client.logout()

        def timed(label: str, mails: list[bytes], key: str) -> None:
            fill(mails)
            t0 = time.perf_counter()
            out = run_job("read-rsvp-replies", as_of=AS_OF)
            seconds = time.perf_counter() - t0
            assert out["counts"][key] == len(mails), out["counts"]
            print(f"{label:<44} {len(mails):>5} mails {seconds:7.2f} s {len(mails) / seconds:8.1f} mails/s")

        timed("baseline: not replies (read, skip, flag)", [plain_mail(f"<p{i}@b>") for i in range(n)], "skipped")
        accepts = [
            reply_mail(reply_ics(queued_invite(engine, rid), "ACCEPTED"), sender=email, message_id=f"<a{rid}@b>")
            for rid, email in rotations[:n]
        ]
        timed("accepts (answer + audit, one transaction each)", accepts, "accepted")
        declines = [
            reply_mail(reply_ics(queued_invite(engine, rid), "DECLINED"), sender=email, message_id=f"<d{rid}@b>")
            for rid, email in rotations[n:]
        ]
        timed("declines (+ change request for HR)", declines, "requests_opened")
    engine.dispose()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
