"""Soak: a simulated year of Frontline on PostgreSQL, on a compressed clock.

52 weekly cycles (``--weeks``), each: a roster import with hires and leavers, the nightly planner, mentor
pairing, invites, daily reminders and mail delivery, rotators' observations (some urgent, some re-sent
with the same client_request_id), heads acknowledging part of the urgent ones, escalation of the rest,
and the Monday digests. The domain functions are called directly (the flows are thin wrappers around
them; Prefect would add ~1 s per flow run and nothing to what is measured here). The simulated clock
starts next Monday and advances a week per cycle; every function that takes a date or ``now`` gets the
simulated one, and observations are stamped inside their simulated week.

Checks at the end (the script exits 1 when one fails): no duplicate mail (one row per idempotency key,
one Message-ID per row, one ``.eml`` file per delivered row, every message delivered, none failed; one
digest per department, week and recipient); no lost observation (every accepted submission is a row,
duplicates were absorbed, every department-week with observations got its digest); reconciled counts
(employees = initial + hires, active = employees - leavers, no leaver with a live future rotation); and
idempotency: every 13th week the whole cycle is run a second time and must create nothing.

Figures: wall time per phase and in total. Baseline (same run): the idempotent re-run of a cycle with
nothing left to do, i.e. the fixed cost of reading the database for one cycle, against a full cycle.

    .venv/bin/python bench/soak.py [--employees 150] [--weeks 52] [--pg postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


class Phases:
    def __init__(self):
        self.seconds: dict[str, float] = collections.defaultdict(float)

    def timed(self, name: str):
        phases = self

        class _T:
            def __enter__(self):
                self.t0 = time.perf_counter()

            def __exit__(self, *exc):
                phases.seconds[name] += time.perf_counter() - self.t0

        return _T()


def _csv(rows: list[dict], columns: list[str], cells) -> str:
    import csv
    import io

    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(cells(r) for r in rows)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--employees", type=int, default=150)
    parser.add_argument("--weeks", type=int, default=52)
    parser.add_argument("--hires-per-week", type=int, default=3)
    parser.add_argument("--leavers-per-week", type=int, default=2)
    parser.add_argument("--observations-per-rotator", type=int, default=2, help="per week on rotation")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--pg", default=os.environ.get("FRONTLINE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
    )
    args = parser.parse_args(argv)

    import psycopg
    from sqlalchemy.engine import make_url

    work = Path(tempfile.mkdtemp(prefix="frontline-soak-"))
    dbname = f"soak_{uuid.uuid4().hex[:10]}"
    admin = args.pg
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'create database "{dbname}"')
    url = make_url(admin).set(database=dbname).render_as_string(hide_password=False)
    os.environ.update(
        {
            "FRONTLINE_DATABASE_URL": url,
            "FRONTLINE_OUTBOX_DIR": str(work / "outbox"),
            "FRONTLINE_POLICY_PATH": str(work / "frontline.toml"),
            "FRONTLINE_SECRET_KEY": "soak-secret-key",
            "FRONTLINE_TIMEZONE": "Europe/Berlin",
        }
    )
    os.environ.pop("FRONTLINE_SMTP_URL", None)
    policy_text = (ROOT / "frontline.example.toml").read_text()
    (work / "frontline.toml").write_text(policy_text)
    try:
        return run(args, url, work)
    finally:
        from models.db import _engine_for, get_engine

        get_engine(url).dispose()
        _engine_for.cache_clear()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{dbname}" with (force)')


def run(args, url: str, work: Path) -> int:
    from sqlalchemy import func
    from sqlmodel import select

    from frontline.calendar.invites import (
        process_invites,
        process_reminders,
        rotations_for_reminders,
        rotations_to_announce,
    )
    from frontline.core.clock import iso_week
    from frontline.core.policy import load_policy
    from frontline.core.settings import get_settings
    from frontline.demo import synth
    from frontline.digests.loading import compute_themes
    from frontline.digests.queue import queue_digests
    from frontline.mail.delivery import deliver_batch
    from frontline.mail.transport import FolderTransport
    from frontline.mentors.service import pair_mentors
    from frontline.observations.acknowledgement import set_ack_state
    from frontline.observations.escalation import escalate_overdue_observations
    from frontline.observations.intake import submit
    from frontline.people.roster import import_roster
    from frontline.rotations.service import plan_rotations
    from models import Department, Employee, Observation, OutboundMessage, Rotation, get_engine, init_db, session_scope

    get_settings.cache_clear()
    settings = get_settings()
    tz = settings.tz
    engine = get_engine(url)
    init_db(engine)
    policy = load_policy()
    rng = random.Random(args.seed)
    phases = Phases()
    transport = FolderTransport(settings.outbox_dir)

    today = date.today()
    start = today + timedelta(days=7 - today.weekday())  # next Monday: the simulated clock never runs behind
    company = synth.generate_company(args.employees, seed=args.seed, today=start)
    departments = company.departments
    staff = [e for e in company.employees if e["hire_date"] <= start]  # on the payroll at the start
    future_hires = sorted((e for e in company.employees if e["hire_date"] > start), key=lambda e: e["hire_date"])
    template = [e for e in company.employees if e["department"] != synth.SUPPORT]
    dept_csv = _csv(
        departments,
        synth.DEPARTMENT_COLUMNS,
        lambda r: {c: synth.format_cell(r.get(c)) for c in synth.DEPARTMENT_COLUMNS},
    )
    counters = collections.Counter(initial=len(staff))
    left_ids: set[str] = set()
    submitted_ids: set[int] = set()
    obs_weeks: set[tuple[int, str]] = set()  # (department id, ISO week) with at least one observation
    serial = 0

    def sim_now(day: date, hour: int = 12) -> datetime:
        return datetime.combine(day, dtime(hour), tz).astimezone(UTC)

    def table_counts() -> tuple[int, int, int]:
        with session_scope(engine) as s:
            return (
                s.exec(select(func.count(OutboundMessage.id))).one(),
                s.exec(select(func.count(Rotation.id))).one(),
                s.exec(select(func.count(Observation.id))).one(),
            )

    def cycle(week: int, monday: date, *, rerun: bool = False) -> None:
        nonlocal serial, staff
        # 1. roster: this week's hires join (synthetic future hires first, then clones), some leave
        if not rerun:
            joining = [e for e in future_hires if monday <= e["hire_date"] < monday + timedelta(days=7)]
            while len(joining) < args.hires_per_week:
                serial += 1
                base = dict(rng.choice(template))
                base.update(
                    employee_id=f"SOAK{serial:05d}",
                    email=f"soak.hire{serial}@example.com",
                    hire_date=monday + timedelta(days=rng.randrange(7)),
                    last_rotation=None,
                    mentor=False,
                    mentor_capacity=0,
                )
                joining.append(base)
            candidates = [e for e in staff if e["department"] != synth.SUPPORT and e["employee_id"] not in left_ids]
            leaving = rng.sample(candidates, min(args.leavers_per_week, len(candidates))) if week else []
            left_ids.update(e["employee_id"] for e in leaving)
            staff = [e for e in staff if e["employee_id"] not in left_ids] + joining
            counters["hires"] += len(joining)
            counters["leavers"] += len(leaving)
        emp_csv = _csv(staff, synth.EMPLOYEE_COLUMNS, synth._employee_cells)
        with phases.timed("roster import"), session_scope(engine) as s:
            import_roster(
                s, ("departments.csv", dept_csv), ("employees.csv", emp_csv), None, actor="soak", today=monday
            )
        # 2. plan and pair (nightly jobs), 3. invites (hourly job)
        with phases.timed("plan"), session_scope(engine) as s:
            plan_rotations(s, policy, start=monday, weeks=52, today=monday, actor="soak")
        with phases.timed("pair"), session_scope(engine) as s:
            pair_mentors(s, policy, as_of=monday, actor="soak")
        with phases.timed("invites"), session_scope(engine) as s:
            process_invites(
                s,
                rotations_to_announce(s, monday, 8),
                as_of=monday,
                announce_weeks=8,
                checkin_minutes=policy.mentoring.checkin_minutes,
            )
        # 4. every day: reminders, observations by people on rotation, escalations, mail delivery
        for offset in range(7):
            day = monday + timedelta(days=offset)
            with phases.timed("reminders"), session_scope(engine) as s:
                process_reminders(
                    s,
                    rotations_for_reminders(s, day, policy.reminders.days_before),
                    as_of=day,
                    days_before=policy.reminders.days_before,
                    weekly_nudge=policy.reminders.weekly_nudge,
                    checkin_minutes=policy.mentoring.checkin_minutes,
                )
            if offset in (1, 3):  # rotators write on Tuesdays and Thursdays
                with phases.timed("observations"), session_scope(engine) as s:
                    on_rotation = s.exec(
                        select(Employee)
                        .join(Rotation, Rotation.employee_id == Employee.id)
                        .where(
                            Rotation.status == "invited",
                            Rotation.start <= day,
                            Rotation.end >= day,
                            Employee.active == True,  # noqa: E712 - SQL
                        )
                        .order_by(Employee.id)
                    ).all()
                    names = [d.name for d in s.exec(select(Department)).all()]
                    for rotator in on_rotation:
                        for k in range(args.observations_per_rotator // 2 or 1):
                            crid = f"soak-{week}-{offset}-{rotator.id}-{k}"
                            data = {
                                "text": rng.choice(
                                    [
                                        "Customer could not find the export button",
                                        "Invoice shows the wrong VAT for jane@example.org",
                                        "Checkout times out on mobile",
                                        "Refund took three weeks",
                                        "Love the new dashboard",
                                    ]
                                ),
                                "impact": rng.randint(1, 5),
                                "customer_count": rng.randint(1, 9),
                                "product_area": rng.choice(policy.observations.product_areas),
                                "category": rng.choice(policy.observations.categories),
                                "urgent": rng.random() < 0.05,
                                "client_request_id": crid,
                            }
                            first = submit(s, rotator, data, "api", policy=policy, departments=names)
                            if rerun:
                                assert not first.created, "a re-sent observation created a row"
                                continue
                            assert first.created
                            again = submit(s, rotator, data, "api", policy=policy, departments=names)  # client retry
                            assert not again.created and again.observation.id == first.observation.id
                            obs = first.observation
                            obs.created_at = sim_now(day, 9 + k)  # stamped inside the simulated week
                            s.add(obs)
                            submitted_ids.add(obs.id)
                            obs_weeks.add((obs.target_department_id, iso_week(day)))
                            counters["observations"] += 1
                            counters["urgent"] += obs.urgent
                            if obs.urgent and rng.random() < 0.5:
                                set_ack_state(s, [obs.id], "acknowledged", by="head@example.com")
                                counters["acknowledged"] += 1
            with phases.timed("escalations"), session_scope(engine) as s:
                counters["escalated"] += len(escalate_overdue_observations(s, as_of=sim_now(day, 23)))
            with phases.timed("mail delivery"):
                while deliver_batch(engine, transport, batch_size=200, now=sim_now(day, 23)).claimed:
                    pass
        # 5. Monday 07:00 of the next week: the digests of this week
        with phases.timed("digests"), session_scope(engine) as s:
            week_name = iso_week(monday)
            queue_digests(s, week_name, themes=compute_themes(s, week_name, persist=True))
        with phases.timed("mail delivery"):
            while deliver_batch(engine, transport, batch_size=200, now=sim_now(monday + timedelta(days=7), 8)).claimed:
                pass

    t0 = time.perf_counter()
    rerun_seconds: list[float] = []
    cycle_seconds: list[float] = []
    for week in range(args.weeks):
        monday = start + timedelta(weeks=week)
        c0 = time.perf_counter()
        cycle(week, monday)
        cycle_seconds.append(time.perf_counter() - c0)
        if week % 13 == 12 or week == args.weeks - 1:
            before = table_counts()
            r0 = time.perf_counter()
            cycle(week, monday, rerun=True)
            rerun_seconds.append(time.perf_counter() - r0)
            after = table_counts()
            assert after == before, (
                f"week {week}: re-running the cycle created rows (mail, rotations, observations) {before} -> {after}"
            )
        if week % 4 == 3:
            print(f"  week {week + 1:>2}: {sum(cycle_seconds[-4:]):6.1f}s for the last 4 weeks", flush=True)
    wall = time.perf_counter() - t0

    # --- reconciliation ---------------------------------------------------------------------------
    problems: list[str] = []
    with session_scope(engine) as s:
        mail = s.exec(select(OutboundMessage)).all()
        keys = collections.Counter(m.idempotency_key for m in mail)
        mids = collections.Counter(m.message_id for m in mail)
        states = collections.Counter(m.state for m in mail)
        kinds = collections.Counter(m.kind for m in mail)
        eml = list(Path(os.environ["FRONTLINE_OUTBOX_DIR"]).glob("*.eml"))
        if any(n > 1 for n in keys.values()) or any(n > 1 for n in mids.values()):
            problems.append("duplicate idempotency key or Message-ID in the outbox")
        if states.get("sent", 0) != len(mail):
            problems.append(f"not every message was delivered: {dict(states)}")
        if len(eml) != states.get("sent", 0):
            problems.append(f"{len(eml)} .eml files for {states.get('sent', 0)} delivered messages")
        digest_keys = [k.rsplit(":", 1)[0] for k in keys if k.startswith("digest:")]
        per_dept_week = collections.Counter(digest_keys)
        missing = [(d, w) for d, w in obs_weeks if f"digest:{d}:{w}" not in per_dept_week]
        if missing:
            problems.append(f"department-weeks with observations but no digest: {missing[:5]}")
        observations = s.exec(select(Observation.id)).all()
        if set(observations) != submitted_ids:
            problems.append(f"{len(submitted_ids)} observations accepted, {len(observations)} rows")
        employees = s.exec(select(Employee)).all()
        expected_total = counters["initial"] + counters["hires"]
        if len(employees) != expected_total:
            problems.append(f"{len(employees)} employees, expected {expected_total}")
            ever = {e["employee_id"] for e in staff} | left_ids
            problems.append(f"  not in the database: {sorted(ever - {e.employee_id for e in employees})[:10]}")
        active = sum(e.active for e in employees)
        if active != expected_total - counters["leavers"]:
            problems.append(f"{active} active employees, expected {expected_total - counters['leavers']}")
        end = start + timedelta(weeks=args.weeks)
        leaver_pk = [e.id for e in employees if e.employee_id in left_ids]
        live = (
            s.exec(
                select(func.count(Rotation.id)).where(
                    Rotation.employee_id.in_(leaver_pk), Rotation.start > end, Rotation.status != "cancelled"
                )
            ).one()
            if leaver_pk
            else 0
        )
        if live:
            problems.append(f"{live} future rotations of leavers are still live")
        rotations = collections.Counter(r.status for r in s.exec(select(Rotation)).all())

    print(
        f"\nFrontline soak: {args.weeks} simulated weeks from {start}, PostgreSQL, {args.employees} employees at the start"
    )
    print(
        f"  employees: {counters['initial']} + {counters['hires']} hired - {counters['leavers']} left = "
        f"{counters['initial'] + counters['hires'] - counters['leavers']} active"
    )
    print(f"  rotations: {dict(rotations)}")
    print(
        f"  observations: {counters['observations']} ({counters['urgent']} urgent, {counters['acknowledged']} "
        f"acknowledged, {counters['escalated']} escalated again); every client retry absorbed"
    )
    print(f"  mail: {len(mail)} messages, {dict(kinds)}; states {dict(states)}; {len(eml)} .eml files")
    print(f"  wall time: {wall:.1f}s ({wall / args.weeks:.2f}s per simulated week)")
    for name, seconds in sorted(phases.seconds.items(), key=lambda kv: -kv[1]):
        print(f"    {name:<15} {seconds:7.1f}s")
    if rerun_seconds:
        full = sum(cycle_seconds) / len(cycle_seconds)
        idle = sum(rerun_seconds) / len(rerun_seconds)
        print(
            f"  baseline: idempotent re-run of a cycle (nothing to do) {idle:.2f}s vs a full cycle {full:.2f}s "
            f"(ratio {full / idle:.1f}x); {len(rerun_seconds)} re-runs created nothing"
        )
    if problems:
        print("\nRECONCILIATION FAILED:")
        for p in problems:
            print(f"  - {p}")
        return 1
    print("  reconciliation: no duplicate mail, no lost observation, counts reconciled")
    return 0


if __name__ == "__main__":
    sys.exit(main())
