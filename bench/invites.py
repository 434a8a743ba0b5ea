"""Invites: CPU milliseconds per email queued, the batch path against the plain one, in the same run.

    .venv/bin/python bench/invites.py [--rotations 300]

Seeds a company in a temporary SQLite database (rotators in six time zones over four start weeks, one
mentor per three rotators, every pairing with a check-in slot, a manager for every rotator: four emails
a rotation) and queues its invites twice, each time in a fresh copy of the database:

* plain: one rotation per ``process_invites`` call, messages built with the standard library's email
  policy and written by its generator, every ``.ics`` built by icalendar for its own message (VTIMEZONE
  built again each time), as ``tests/test_bulk_mail.py`` builds the reference bytes;
* batch: ``process_invites`` on batches of 50 rotations, as ``frontline invites send`` runs it.

Figures, not pass/fail (the byte-for-byte comparison is ``tests/test_bulk_mail.py``).
"""

from __future__ import annotations

import argparse
import email.policy
import os
import shutil
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("FRONTLINE_SECRET_KEY", "bench-secret-key-bench-secret-key")

ZONES = ["Europe/Berlin", "America/New_York", "Asia/Tokyo", "UTC", "Australia/Sydney", "Europe/London"]
AS_OF = date(2026, 3, 2)
MONDAY = date(2026, 3, 16)


def seed(url: str, rotations: int) -> list[int]:
    from sqlmodel import Session

    from models import Department, Employee, MentorPairing, Rotation, get_engine, init_db

    engine = get_engine(url)
    init_db(engine)
    with Session(engine) as s:
        sales = Department(name="Sales", head_name="Hanna Head", head_email="head@example.com")
        support = Department(name="Support", head_name="Sam Lead", head_email="lead@example.com")
        s.add_all([sales, support])
        s.flush()
        mentors = [
            Employee(
                employee_id=f"S{i}",
                name=f"Mentor Ångström {i}",
                email=f"mentor{i}@example.com",
                department_id=support.id,
                hire_date=date(2020, 1, 1),
                timezone=ZONES[i % len(ZONES)],
                country="DE",
                is_mentor=True,
                mentor_capacity=6,
            )
            for i in range(max(1, rotations // 3))
        ]
        rotators = [
            Employee(
                employee_id=f"E{i}",
                name=f"Zoë Rotator {i}",
                email=f"r{i}@example.com",
                department_id=sales.id,
                hire_date=date(2024, 1, 1),
                timezone=ZONES[(i * 5) % len(ZONES)],
                country="DE",
                manager_email=f"manager{i % 20}@example.com",
            )
            for i in range(rotations)
        ]
        s.add_all(mentors + rotators)
        s.flush()
        made = []
        for i, person in enumerate(rotators):
            start = MONDAY + timedelta(weeks=i % 4)
            made.append(
                Rotation(employee_id=person.id, start=start, end=start + timedelta(days=27), kind="cycle", due=start)
            )
        s.add_all(made)
        s.flush()
        for i, rotation in enumerate(made):
            s.add(
                MentorPairing(
                    rotation_id=rotation.id,
                    mentor_id=mentors[i % len(mentors)].id,
                    checkin_weekday=1 + i % 4,
                    checkin_time_utc=f"{9 + i % 4:02d}:00",
                )
            )
        s.commit()
        ids = [r.id for r in made if r.id is not None]
    engine.dispose()
    return ids


def run(url: str, ids: list[int], *, plain: bool) -> tuple[float, int]:
    """CPU seconds and emails queued."""
    from sqlmodel import Session

    from frontline.calendar import ics
    from frontline.calendar.invites import process_invites
    from frontline.mail import outbox
    from models import get_engine

    saved = ics.MAIL_POLICY, outbox._POLICY, ics._itip_bytes, outbox._as_bytes
    if plain:
        ics.MAIL_POLICY = email.policy.default
        outbox._POLICY = email.policy.default.clone(refold_source="none")

        def each_its_own(obj, stamp):
            ics._timezone.cache_clear()
            return ics.itip_calendar(obj, stamp=stamp).to_ical()

        ics._itip_bytes = each_its_own
        outbox._as_bytes = lambda message: message.as_bytes()  # the standard library's generator
    batches = [[i] for i in ids] if plain else [ids[i : i + 50] for i in range(0, len(ids), 50)]
    engine = get_engine(url)
    queued = 0
    try:
        started = time.process_time()
        for batch in batches:
            with Session(engine) as s:
                queued += process_invites(s, batch, as_of=AS_OF, announce_weeks=8).queued
                s.commit()
        return time.process_time() - started, queued
    finally:
        ics.MAIL_POLICY, outbox._POLICY, ics._itip_bytes, outbox._as_bytes = saved
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rotations", type=int, default=300)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="frontline-bench-invites-"))
    try:
        ids = seed(f"sqlite:///{folder / 'seed.db'}", args.rotations)
        from frontline.calendar import ics

        print(f"load: {os.getloadavg()[0]:.2f}; {len(ids)} rotations, {os.cpu_count()} CPUs")
        for label, plain in (("plain, one rotation a call", True), ("batch of 50", False)):
            copy = folder / f"{'plain' if plain else 'batch'}.db"
            shutil.copy(folder / "seed.db", copy)
            ics._timezone.cache_clear()
            ics._itip_bytes_of.cache_clear()
            cpu, queued = run(f"sqlite:///{copy}", ids, plain=plain)
            print(
                f"{label:<28} {queued:>6} emails  {cpu:6.2f} s CPU  {1000 * cpu / max(1, queued):6.2f} ms CPU an email"
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
