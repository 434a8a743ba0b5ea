"""``frontline demo``: a synthetic company taken through every job, end to end, in its own folder.

The demo is an ordered list of steps (:data:`STEPS`). Each step is a function that takes the
:class:`DemoContext`, does one thing (usually runs one flow), and returns one line for the summary.
To add a step, write ``def step_x(ctx) -> str`` and add it to :data:`STEPS`; use ``ctx.results`` to
hand data to later steps and ``ctx.outputs`` to report where something was written.

Everything lives under the demo folder (default ``var/demo``): the SQLite database, the outbox, the
policy file and the generated CSV files. Each run starts from scratch.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from frontline.core import clock
from frontline.core.errors import DemoError
from frontline.demo.synth import SyntheticCompany
from models import Department, Employee, Rotation

EXAMPLE_POLICY = Path(__file__).resolve().parents[2] / "frontline.example.toml"


@dataclass
class DemoContext:
    directory: Path
    n_employees: int
    seed: int
    today: date
    company: SyntheticCompany | None = None
    csvs: dict[str, Path] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)  # step name -> what it returned, for later steps
    outputs: dict[str, Path] = field(default_factory=dict)  # label -> where something was written

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.directory / 'frontline.db'}"

    @property
    def outbox_dir(self) -> Path:
        return self.directory / "outbox"

    @property
    def policy_path(self) -> Path:
        return self.directory / "frontline.toml"


Step = Callable[[DemoContext], str]


def seats_for(n_employees: int, length_weeks: int = 4, cycle_weeks: int = 52) -> int:
    """Seats per week so that everyone can rotate once per cycle, with 30% slack for new hires and PTO."""
    return max(2, math.ceil(n_employees * length_weeks / cycle_weeks * 1.3))


def mentor_annual_cap_for(rotators_per_year: int, mentors: int) -> int:
    """Rotators per mentor per year so the mentors can take a year's rotators, with 30% slack."""
    return max(10, math.ceil(rotators_per_year * 1.3 / max(1, mentors)))


def demo_policy_text(support_department: str, seats_per_week: int, mentor_annual_cap: int | None = None) -> str:
    """The example policy with the support department, the seats and (optionally) the mentors' annual
    cap set for the generated company."""
    text = EXAMPLE_POLICY.read_text(encoding="utf-8")
    text, n1 = re.subn(r'(?m)^support_department = ".*"$', f'support_department = "{support_department}"', text)
    text, n2 = re.subn(r"(?m)^seats_per_week = \d+", f"seats_per_week = {seats_per_week}", text)
    # Small teams: at 10% a team of 15 could only have one person away, and so could not get everyone
    # through in a year; the demo company allows a fifth of a team away at once.
    text, n4 = re.subn(r"(?m)^max_department_away_fraction = [0-9.]+", "max_department_away_fraction = 0.2", text)
    n3 = 1
    if mentor_annual_cap is not None:
        text, n3 = re.subn(r"(?m)^annual_cap = \d+", f"annual_cap = {mentor_annual_cap}", text)
    if (n1, n2, n3, n4) != (1, 1, 1, 1):
        raise RuntimeError(
            f"{EXAMPLE_POLICY} no longer has the support_department/seats_per_week/annual_cap/"
            "max_department_away_fraction lines"
        )
    return text


def prepare(directory: Path, n_employees: int, seed: int = 7, today: date | None = None) -> DemoContext:
    """Point the settings at the demo folder and clear what a previous run left there.

    Must run before anything opens the database: it sets ``FRONTLINE_*`` in the environment and clears
    the cached settings."""
    from frontline.core.settings import get_settings
    from models import get_engine

    directory = Path(directory).resolve()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DemoError(f"cannot use {directory} as the demo folder: {exc.strerror or exc}") from None
    ctx = DemoContext(directory=directory, n_employees=n_employees, seed=seed, today=date.today())
    get_engine(ctx.database_url).dispose()  # pooled connections would keep the deleted file alive
    for name in ("frontline.db", "frontline.db-wal", "frontline.db-shm", "frontline.db-journal"):
        (directory / name).unlink(missing_ok=True)
    outbox = directory / "outbox"
    if outbox.exists():
        import shutil

        shutil.rmtree(outbox)
    os.environ["FRONTLINE_DATABASE_URL"] = ctx.database_url
    os.environ["FRONTLINE_OUTBOX_DIR"] = str(ctx.outbox_dir)
    os.environ["FRONTLINE_POLICY_PATH"] = str(ctx.policy_path)
    get_settings.cache_clear()
    ctx.today = today or clock.today()
    return ctx


# --- steps -------------------------------------------------------------------------------------


def step_generate(ctx: DemoContext) -> str:
    from frontline.demo.synth import generate_company, write_csvs

    ctx.company = company = generate_company(ctx.n_employees, seed=ctx.seed, today=ctx.today)
    ctx.csvs = write_csvs(company, ctx.directory / "roster")
    ctx.outputs["roster CSV files"] = ctx.directory / "roster"
    mentors = sum(1 for e in company.employees if e["mentor"])
    rotators = sum(1 for e in company.employees if e["department"] != company.support_department)
    ctx.policy_path.write_text(
        demo_policy_text(
            company.support_department, seats_for(ctx.n_employees), mentor_annual_cap_for(rotators, mentors)
        ),
        encoding="utf-8",
    )
    ctx.outputs["policy"] = ctx.policy_path
    zones = len({e["timezone"] for e in company.employees})
    return (
        f"{len(company.employees)} employees in {len(company.departments)} departments across {zones} time zones, "
        f"{mentors} mentors in {company.support_department}, {len(company.new_hires)} new hires coming this year, "
        f"{len(company.absences)} absences (seed {ctx.seed})"
    )


def step_init(ctx: DemoContext) -> str:
    from frontline.core.policy import load_policy
    from models import init_db

    policy = load_policy()
    revision = init_db()
    ctx.outputs["database"] = ctx.directory / "frontline.db"
    return (
        f"fresh database at schema revision {revision}; policy: {policy.length_weeks}-week rotations, "
        f"{policy.seats_per_week} seats per week, mentors from {policy.support_department}"
    )


def step_import_roster(ctx: DemoContext) -> str:
    from frontline.cli.common import run_flow

    result = run_flow(
        "import-roster",
        departments=str(ctx.csvs["departments"]),
        employees=str(ctx.csvs["employees"]),
        absences=str(ctx.csvs["absences"]),
        actor="demo",
    )
    ctx.results["import_roster"] = result
    return result.summary()


def step_plan_rotations(ctx: DemoContext) -> str:
    from frontline.cli.common import run_flow

    r = ctx.results["plan_rotations"] = run_flow("plan-rotations", start=ctx.today, weeks=52)
    s = r["summary"]
    gap = "-" if s["gap"] is None else f"{100 * s['gap']:.3f} %"
    return (
        f"{s['planned']} rotations planned from {s['horizon_start']} ({s['new_hires']} new hires, {s['late']} late, "
        f"{s['unplaced_count']} unplaced); objective {s['objective']:.0f}, optimality gap {gap}"
    )


def step_pair_mentors(ctx: DemoContext) -> str:
    from frontline.cli.common import run_flow

    r = ctx.results["pair_mentors"] = run_flow("pair-mentors", as_of=ctx.today)
    s = r["summary"]
    gap = "-" if s["gap"] is None else f"{100 * s['gap']:.3f} %"
    return (
        f"{s['created']} rotations paired with a mentor ({s['kept']} kept, {s['replaced']} re-paired, "
        f"{s['unmatched']} unmatched); optimality gap {gap}"
    )


def step_mentor_leaves(ctx: DemoContext) -> str:
    """A roster change after pairing, through HR's own path: a mentor who holds pairings of rotations not
    over yet (one drawn with the demo's seed) leaves (the next full roster import lacks them, confirmed as
    one leaver), then pairing runs again. Only their pairings move, and others only where that seats
    someone who would be left without a mentor; the invites step below tells both sides of every moved
    pairing."""
    import dataclasses
    import random

    from sqlmodel import col, select

    from frontline.cli.common import run_flow
    from frontline.demo.synth import write_csvs
    from models import Employee, MentorPairing, Rotation, session_scope

    assert ctx.company is not None
    with session_scope() as s:
        held: dict[int, set[int]] = {}
        for mentor_id, rotation_id in s.exec(
            select(MentorPairing.mentor_id, MentorPairing.rotation_id)
            .join(Rotation, col(Rotation.id) == MentorPairing.rotation_id)
            .where(MentorPairing.status == "active", Rotation.end >= ctx.today)
        ):
            held.setdefault(mentor_id, set()).add(rotation_id)
        if not held:
            return "nobody holds a pairing: no roster change to show"
        mentor = s.get(Employee, random.Random(ctx.seed).choice(sorted(held)))
        assert mentor is not None and mentor.id is not None
        code, name, theirs = mentor.employee_id, mentor.name, held[mentor.id]
    company = dataclasses.replace(
        ctx.company,
        employees=[e for e in ctx.company.employees if e["employee_id"] != code],
        absences=[a for a in ctx.company.absences if a["employee_id"] != code],
    )
    csvs = write_csvs(company, ctx.directory / "roster-after-leaver")
    ctx.outputs["roster CSV files after the leaver"] = ctx.directory / "roster-after-leaver"
    run_flow("import-roster", **{k: str(v) for k, v in csvs.items()}, actor="demo", allow_leavers=1)
    r = ctx.results["mentor_leaves"] = run_flow("pair-mentors", as_of=ctx.today)
    summary = r["summary"]
    repaired = sum(1 for x in r["replaced"] if x["rotation_id"] in theirs and x["new_mentor"] is not None)
    stranded = sum(1 for u in r["unmatched"] if u["rotation_id"] in theirs)
    return (
        f"{name} ({code}) left (a roster import without them, confirmed as 1 leaver); of their {len(theirs)} "
        f"pairing(s), {repaired} re-paired and {stranded} without a mentor now; "
        f"{summary.get('moved_to_make_room', 0)} other pairing(s) moved to make room, "
        f"{summary['kept']} kept as they were"
        + (" (`frontline pair --dry-run` says what would help)" if stranded else "")
    )


DEMO_OBSERVATIONS = [
    # (area, category, impact, customers, urgent, text, suggestion)
    (
        "checkout",
        "bug",
        5,
        14,
        True,
        "Checkout charges the card twice when the 3-D Secure window times out; "
        "customer anna.k@example.org sent screenshots of both charges on 4111 1111 1111 1111",
        "Refund both and block retries",
    ),
    (
        "checkout",
        "bug",
        4,
        6,
        False,
        "Double charge again after the 3-D Secure timeout, customer called from +44 20 7946 0958",
        None,
    ),
    (
        "checkout",
        "bug",
        4,
        3,
        False,
        "Card charged twice at checkout after the bank verification popup timed out",
        None,
    ),
    (
        "billing",
        "policy_pricing",
        3,
        5,
        False,
        "Customers do not understand why the yearly plan shows VAT twice on the invoice",
        "Show VAT once, with the rate",
    ),
    (
        "billing",
        "policy_pricing",
        3,
        2,
        False,
        "Invoice shows VAT twice for yearly plans; refund to DE89 3704 0044 0532 0130 00 requested",
        None,
    ),
    (
        "billing",
        "confusing_ux",
        2,
        4,
        False,
        "People cannot find where to download past invoices",
        "Link invoices from the account menu",
    ),
    (
        "export",
        "bug",
        4,
        8,
        True,
        "CSV export times out for accounts with more than 10k rows since 3.14.2; "
        "big customers cannot close their month",
        None,
    ),
    (
        "export",
        "bug",
        3,
        3,
        False,
        "Export to CSV times out on large accounts, customer jo@example.net retried 5 times",
        None,
    ),
    ("export", "missing_feature", 2, 2, False, "Several customers asked for an Excel export instead of CSV", None),
    (
        "onboarding",
        "confusing_ux",
        3,
        7,
        False,
        "New customers skip the bank details step and then cannot get paid out",
        "Make the step mandatory",
    ),
    (
        "onboarding",
        "confusing_ux",
        3,
        4,
        False,
        "Onboarding checklist hides the bank details step below the fold",
        None,
    ),
    (
        "onboarding",
        "documentation",
        2,
        2,
        False,
        "The onboarding guide still shows the old dashboard screenshots",
        None,
    ),
    ("mobile app", "bug", 4, 11, False, "The mobile app logs people out every morning after the last update", None),
    ("mobile app", "bug", 4, 5, False, "Android app signs users out overnight since version 5.2", None),
    ("mobile app", "praise", 1, 3, False, "Customers love the new dark mode in the app", None),
    (
        "shipping",
        "delivery_fulfilment",
        4,
        9,
        True,
        "Parcels to Austria have been stuck at the hub for 6 days; "
        "customer +43 1 58858 0 says the tracking page shows nothing",
        "Tell customers proactively",
    ),
    (
        "shipping",
        "delivery_fulfilment",
        3,
        4,
        False,
        "Deliveries promised in 2 days took 9 for several Austrian customers",
        None,
    ),
    ("hardware", "bug", 5, 2, True, "Two customers report the charger getting very hot after 20 minutes", None),
    ("hardware", "documentation", 2, 1, False, "Manual page 12 shows the wrong button for pairing", None),
    (
        "account",
        "confusing_ux",
        2,
        3,
        False,
        "Password reset link expires after 15 minutes, customers call in frustrated",
        "Make it 1 hour",
    ),
    (
        "account",
        "missing_feature",
        2,
        2,
        False,
        "Customers want two-factor authentication with an authenticator app",
        None,
    ),
    ("other", "praise", 1, 1, False, "A customer thanked us for the quick refund last week", None),
]


def step_collect_observations(ctx: DemoContext) -> str:
    """Rotators file realistic observations (some urgent, some with customer data that is redacted);
    one urgent one is acknowledged, then the SLA check runs as if 25 hours had passed."""
    from frontline.cli.common import run_flow
    from frontline.core.policy import load_policy
    from frontline.observations.acknowledgement import set_ack_state
    from frontline.observations.policy import current_policy
    from models import session_scope, utcnow

    policy = load_policy()
    with session_scope() as session:
        people = _observers(session, policy.support_department)
        if not people:
            return "no employees to file observations"
        stored, urgent, redacted = _file_demo_observations(session, people)
        if urgent:
            set_ack_state(
                session,
                [urgent[0]],
                "acknowledged",
                by="demo: department head",
                note="We are on it; refunds are going out today.",
            )
    sla = current_policy().observations.escalation_sla_hours
    escalated = run_flow("escalate-overdue", as_of=utcnow() + timedelta(hours=sla + 1))["escalated"]
    ctx.results["collect_observations"] = {"stored": stored, "urgent": urgent, "escalated": escalated}
    return (
        f"{len(stored)} observations from {min(len(people), len(stored))} rotators ({redacted} PII items redacted); "
        f"{len(urgent)} urgent mailed to their heads at once, 1 acknowledged; {sla + 1:.0f} h later "
        f"{len(escalated)} unacknowledged escalated to the digest recipients"
    )


def _observers(session: Session, support_department: str) -> list[Employee]:
    """Who files the demo's observations: the people with a rotation (earliest first), else every active
    employee outside support."""
    support = session.exec(select(Department.id).where(Department.name == support_department)).first()
    on_rotation = session.exec(
        select(Employee)
        .join(Rotation, col(Rotation.employee_id) == col(Employee.id))
        .where(Rotation.status != "cancelled")
        .order_by(col(Rotation.start), col(Employee.id))
    ).all()
    if on_rotation:
        return list({e.id: e for e in on_rotation}.values())
    return list(
        session.exec(
            select(Employee)
            .where(col(Employee.active).is_(True), Employee.department_id != support)
            .order_by(col(Employee.id))
        ).all()
    )


def _file_demo_observations(session: Session, people: list[Employee]) -> tuple[list[int], list[int], int]:
    """Each of :data:`DEMO_OBSERVATIONS` filed by every 7th person round the list: (ids stored, ids of the
    urgent ones, PII items redacted)."""
    from frontline.observations.intake import submit_observation

    stored: list[int] = []
    urgent: list[int] = []
    redacted = 0
    for i, (area, category, impact, customers, is_urgent, text, suggestion) in enumerate(DEMO_OBSERVATIONS):
        rotator = people[(i * 7) % len(people)]
        data: dict[str, Any] = {
            "text": text,
            "impact": impact,
            "customer_count": customers,
            "product_area": area,
            "category": category,
            "urgent": is_urgent,
            "client_request_id": f"demo-{i}",
        }
        if suggestion:
            data["suggestion"] = suggestion
        obs = submit_observation(session, rotator, data, "demo")
        assert obs.id is not None
        stored.append(obs.id)
        redacted += sum(obs.redactions.values())
        if obs.urgent:
            urgent.append(obs.id)
    return stored, urgent, redacted


def step_send_digests(ctx: DemoContext) -> str:
    from sqlmodel import func, select

    from frontline.cli.common import run_flow
    from frontline.core.clock import iso_week
    from frontline.core.settings import get_settings
    from frontline.digests.queue import preview_digests
    from models import Observation, session_scope

    with session_scope() as session:  # the week of the newest observation (else this week)
        newest = session.exec(select(func.max(Observation.created_at))).one()
    if newest is not None and newest.tzinfo is None:
        newest = newest.replace(tzinfo=UTC)
    week = iso_week(newest.astimezone(get_settings().tz).date() if newest else ctx.today)
    rows = ctx.results["send_digests"] = run_flow("send-digests", week=week)
    folder = ctx.directory / "digests"
    with session_scope() as session:
        previews = preview_digests(session, week, folder)
    ctx.outputs["digest previews (.html/.txt)"] = folder
    queued = sum(int(r["status"].split()[1]) for r in rows if r["status"].startswith("queued"))
    empty = sum(1 for r in rows if r["status"] == "nothing to report")
    return (
        f"{queued} department digests queued for {week} ({empty} with nothing to report); "
        f"{sum(1 for p in previews if p.files)} previews written"
    )


def step_send_invites(ctx: DemoContext) -> str:
    from frontline.cli.common import run_flow

    r = ctx.results["send_invites"] = run_flow("send-invites", as_of=ctx.today, announce_weeks=8)
    return (
        f"{r['rotations_checked']} rotations in the next 8 weeks: {r['requests']} invites, {r['updates']} updates, "
        f"{r['cancels']} cancellations, {r['checkin_requests']} check-in invites, "
        f"{r['manager_notices']} manager notices; {r['queued']} emails queued"
    )


def step_send_reminders(ctx: DemoContext) -> str:
    from sqlmodel import func, select

    from frontline.cli.common import run_flow
    from models import Rotation, session_scope

    r = ctx.results["send_reminders"] = run_flow("send-reminders", as_of=ctx.today)
    line = f"today: {r['reminders']} reminders, {r['welcomes']} welcomes, {r['nudges']} observation nudges queued"
    # Fast-forward the clock through the first rotation week (the flows are idempotent per day and
    # person, so this is what the hourly schedule would have sent by then).
    with session_scope() as session:
        first = session.exec(
            select(func.min(Rotation.start)).where(Rotation.start > ctx.today, Rotation.status != "cancelled")
        ).one()
    if first is not None:
        totals = {"reminders": 0, "welcomes": 0, "nudges": 0}
        for day in (first - timedelta(days=1), first, first + timedelta(days=3)):
            later = run_flow("send-reminders", as_of=day)
            for key in totals:
                totals[key] += later[key]
        line += (
            f"; by the Thursday of the first rotation week ({(first + timedelta(days=3)).isoformat()}): "
            f"{totals['reminders']} reminders, {totals['welcomes']} welcomes, {totals['nudges']} nudges"
        )
    return line


def step_deliver_mail(ctx: DemoContext) -> str:
    from frontline.cli.common import run_flow

    r = ctx.results["deliver_mail"] = run_flow("deliver-mail")
    ctx.outputs["outbox (.eml files)"] = ctx.outbox_dir
    return f"{r['sent']} emails delivered to the outbox folder in {r['batches']} batch(es), {r['failed']} failed"


def step_web_console(ctx: DemoContext) -> str:
    """An HR admin for the console and the team's calendar feed, so the web app has something to show."""
    from frontline.access.accounts import add_hr
    from frontline.calendar.feeds import create_feed_token
    from frontline.core.settings import get_settings
    from frontline.demo.synth import EMAIL_DOMAIN
    from models import session_scope

    hr = f"hr@{EMAIL_DOMAIN}"
    with session_scope() as session:
        add_hr(session, hr, actor="demo")
        _row, token = create_feed_token(session, employee_id=None, label="demo team feed")
    ctx.results["web_console"] = {"hr": hr}
    return (
        f"HR admin {hr}; team calendar feed {get_settings().base_url}/calendar/{token}.ics; "
        f"with the exports below, run `frontline serve` and sign in with `frontline console link {hr}`"
    )


# The demo, in order. Later jobs add their step here (one line each).
STEPS: list[tuple[str, Step]] = [
    ("generate company", step_generate),
    ("create database", step_init),
    ("import roster", step_import_roster),
    ("plan rotations", step_plan_rotations),
    ("pair mentors", step_pair_mentors),  # after planning (the planner's step goes above this line)
    ("a mentor leaves", step_mentor_leaves),  # a roster change, then pairing again: only what must move
    ("collect observations", step_collect_observations),  # rotators file observations; SLA escalation
    ("send digests", step_send_digests),  # after the steps that create observations; before "deliver mail"
    # keep these three last: they announce what the steps above planned, then deliver all queued mail
    ("send invites", step_send_invites),
    ("send reminders", step_send_reminders),
    ("deliver mail", step_deliver_mail),
    ("web console", step_web_console),
]


def run_demo(
    directory: Path,
    n_employees: int = 300,
    seed: int = 7,
    echo: Callable[[str], Any] = print,
    today: date | None = None,
) -> DemoContext:
    """Run every step in order, echoing one line per step, then where the outputs are."""
    ctx = prepare(directory, n_employees, seed, today)
    started = time.perf_counter()
    echo(f"Frontline demo: {n_employees} synthetic employees, seed {seed}, today {ctx.today}, in {ctx.directory}")
    for number, (name, step) in enumerate(STEPS, start=1):
        t0 = time.perf_counter()
        line = step(ctx)
        echo(f"[{number}/{len(STEPS)}] {name}: {line} ({time.perf_counter() - t0:.1f} s)")
    ctx.outputs.setdefault("outbox (.eml files)", ctx.outbox_dir)
    echo(f"Done in {time.perf_counter() - started:.1f} s. Outputs:")
    for label, path in ctx.outputs.items():
        echo(f"  {label}: {path}")
    echo("To look around with the other commands, first run:")
    echo(
        f"  export FRONTLINE_DATABASE_URL={ctx.database_url} FRONTLINE_OUTBOX_DIR={ctx.outbox_dir} "
        f"FRONTLINE_POLICY_PATH={ctx.policy_path}"
    )
    return ctx
