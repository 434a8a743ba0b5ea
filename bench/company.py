"""Demo companies for the planning and pairing benchmarks (``--company demo``), and independent checkers.

A company is made by the product's own generator (:func:`frontline.demo.synth.generate_company`) with
the demo's policy (:func:`frontline.demo.runner.demo_policy_text`: the example policy, seats for everyone
once a year plus 30 %, mentors' annual cap with 30 % slack, 20 % department cap, a year-end freeze),
written to CSV files and imported into a fresh SQLite database by the roster import, as ``frontline
demo`` does. Variants:

* ``base``: as the demo;
* ``tight``: every mentor has 1 seat a week, and both the planner's weekly seats and the mentors' weekly
  seats are 60 % of the need (people to plan x 4 weeks / 52; mentors beyond that are not mentors);
* ``history``: a third of the people who rotated before had a mentor then (a past rotation and its pairing
  are stored), so those mentors are excluded for them.

The commands are then run as a user runs them (``frontline plan``, ``frontline pair``: a subprocess with
the database, policy and outbox in the environment), timed whole, with the peak resident memory of that
process. The checkers below read the database after the command and count hard-rule violations from the
definitions in the README, with their own code (nothing from the planner's or the pairing's modules).
"""

from __future__ import annotations

import math
import os
import random
import re
import shutil
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
TODAY = date(2027, 1, 4)  # a Monday: the company is generated "as of" this day and planned from it
CACHE = Path(os.environ.get("FRONTLINE_BENCH_DIR", "/tmp/frontline-bench"))
VARIANTS = ("base", "tight", "history")
# ``frontline plan``/``pair`` run directly (``--no-flow``): a Prefect flow run adds the start of Prefect's
# temporary server (15-25 s on this machine, more under load); FRONTLINE_BENCH_FLOW=1 measures that path.
FLOW = [] if os.environ.get("FRONTLINE_BENCH_FLOW") == "1" else ["--no-flow"]


@dataclass
class Company:
    directory: Path
    n: int
    variant: str

    @property
    def db(self) -> Path:
        return self.directory / "frontline.db"

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["FRONTLINE_DATABASE_URL"] = f"sqlite:///{self.db}"
        env["FRONTLINE_OUTBOX_DIR"] = str(self.directory / "outbox")
        env["FRONTLINE_POLICY_PATH"] = str(self.directory / "frontline.toml")
        env["PREFECT_HOME"] = str(CACHE / "prefect")
        return env


def _policy_text(company: Any, n: int, variant: str) -> str:
    from frontline.demo.runner import demo_policy_text, mentor_annual_cap_for, seats_for

    mentors = sum(1 for e in company.employees if e["mentor"])
    rotators = sum(1 for e in company.employees if e["department"] != company.support_department)
    seats = seats_for(n)
    if variant == "tight":
        seats = max(2, math.ceil(0.6 * n * 4 / 52))
    return demo_policy_text(company.support_department, seats, mentor_annual_cap_for(rotators, mentors))


def _tighten_mentors(company: Any) -> None:
    """Every mentor 1 seat a week; only as many mentors as 60 % of the rotators on rotation in a week."""
    rotators = sum(1 for e in company.employees if e["department"] != company.support_department)
    keep = max(1, math.ceil(0.6 * rotators * 4 / 52))
    mentors = [e for e in company.employees if e["mentor"]]
    for k, e in enumerate(mentors):
        if k < keep:
            e["mentor_capacity"] = 1
        else:
            e["mentor"], e["mentor_capacity"] = False, 0


CPU_SECONDS: dict[str, float] = {}  # log file name -> user + system CPU seconds of the last run that wrote it


def _run(cmd: list[str], env: dict[str, str], log: Path) -> tuple[float, float, int, str]:
    """Run ``cmd``; (wall seconds, peak RSS in MB of that process, return code, output). Its CPU seconds
    (user + system) are kept in :data:`CPU_SECONDS` under the log's name: on a shared machine they vary far
    less than the wall time."""
    t0 = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    CPU_SECONDS[log.name] = usage.ru_utime + usage.ru_stime
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss / 1024, proc.returncode, log.read_text()


def frontline(company: Company, *args: str, name: str) -> tuple[float, float, str]:
    """Run ``frontline <args>`` as a user would; (wall seconds, peak MB, output). Raises on failure."""
    exe = str(Path(sys.executable).with_name("frontline"))
    wall, peak, rc, out = _run([exe, *args, *FLOW], company.env, company.directory / f"{name}.log")
    if rc != 0:
        raise RuntimeError(f"frontline {' '.join(args)} failed ({rc}):\n{out[-3000:]}")
    return wall, peak, out


def build(n: int, variant: str, seed: int = 7) -> Company:
    """A fresh database with the imported company (cached by size, variant and seed)."""
    directory = CACHE / f"{n}-{variant}-{seed}"
    company = Company(directory, n, variant)
    stamp = directory / "built"
    if stamp.exists():
        return company
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    sys.path.insert(0, str(ROOT))
    from frontline.demo.synth import generate_company, write_csvs

    synth = generate_company(n, seed=seed, today=TODAY)
    if variant == "tight":
        _tighten_mentors(synth)
    csvs = write_csvs(synth, directory / "roster")
    (directory / "frontline.toml").write_text(_policy_text(synth, n, variant), encoding="utf-8")
    script = (
        "from models import init_db, session_scope\n"
        "from frontline.people.roster import import_roster\n"
        "import sys\n"
        "init_db()\n"
        "with session_scope() as s:\n"
        "    import_roster(s, sys.argv[1], sys.argv[2], sys.argv[3], actor='bench', allow_leavers=10**9)\n"
    )
    cmd = [sys.executable, "-c", script, str(csvs["departments"]), str(csvs["employees"]), str(csvs["absences"])]
    _, _, rc, out = _run(cmd, company.env, directory / "import.log")
    if rc != 0:
        raise RuntimeError(f"roster import failed:\n{out[-3000:]}")
    if variant == "history":
        add_history(company, seed)
    snapshot(company, "imported")
    stamp.write_text("ok")
    return company


def add_history(company: Company, seed: int) -> None:
    """A third of the people who rotated before get that past rotation stored, with a mentor."""
    import sqlite3

    rnd = random.Random(seed)
    con = sqlite3.connect(company.db)
    support = con.execute(
        "select id from department where name = ?", (_policy_value(company, "support_department"),)
    ).fetchone()[0]
    mentors = [r[0] for r in con.execute("select id from employee where is_mentor and department_id = ?", (support,))]
    people = con.execute(
        "select id, last_rotation from employee where department_id != ? and last_rotation is not null", (support,)
    ).fetchall()
    now = datetime(2026, 12, 1).isoformat(sep=" ")
    for eid, last in people:
        if rnd.random() >= 1 / 3 or not mentors:
            continue
        start = date.fromisoformat(str(last)[:10])
        end = start + timedelta(days=27)
        cur = con.execute(
            'insert into rotation (employee_id, start, "end", due, kind, status, locked, sequence, created_at, updated_at) '
            "values (?, ?, ?, ?, 'cycle', 'done', 0, 0, ?, ?)",
            (eid, start.isoformat(), end.isoformat(), start.isoformat(), now, now),
        )
        con.execute(
            "insert into mentorpairing (rotation_id, mentor_id, status, sequence, created_at, updated_at) "
            "values (?, ?, 'active', 0, ?, ?)",
            (cur.lastrowid, rnd.choice(mentors), now, now),
        )
    con.commit()
    con.close()


def _policy_value(company: Company, key: str) -> Any:
    import tomllib

    data = tomllib.loads((company.directory / "frontline.toml").read_text(encoding="utf-8"))
    for part in key.split("."):
        data = data[part]
    return data


def snapshot(company: Company, name: str) -> Path:
    """A copy of the database as it is now (restore with :func:`restore`)."""
    target = company.directory / f"{name}.db"
    shutil.copyfile(company.db, target)
    return target


def restore(company: Company, name: str) -> None:
    shutil.copyfile(company.directory / f"{name}.db", company.db)


def parse_figures(text: str, patterns: dict[str, str]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for key, pat in patterns.items():
        m = re.search(pat, text)
        out[key] = None if m is None or m.group(1) in ("n/a", "-", "None") else float(m.group(1).replace(",", ""))
    return out


# --------------------------------------------------------------------------------------------------
# Independent checkers (plain SQL and Python, from the README's rules)


def _d(value: Any) -> date:
    return date.fromisoformat(str(value)[:10])


def plan_violations(company: Company, horizon: date = TODAY, weeks: int = 52) -> dict[str, int]:
    """Hard-rule violations of the stored plan: seats per week, department cap per week, blackouts,
    absences, support staff rotating, before the hire week, length, not a Monday, two in the horizon."""
    import sqlite3

    con = sqlite3.connect(company.db)
    seats = int(_policy_value(company, "seats_per_week"))
    frac = float(_policy_value(company, "max_department_away_fraction"))
    length = int(_policy_value(company, "length_weeks"))
    support = _policy_value(company, "support_department")
    blackouts = [(_d(b["start"]), _d(b["end"])) for b in _policy_value(company, "blackouts")]
    depts = {i: (name, f) for i, name, f in con.execute("select id, name, max_away_fraction from department")}
    emp = {
        i: (d, _d(h), bool(a), lo)
        for i, d, h, a, lo in con.execute("select id, department_id, hire_date, active, left_on from employee")
    }
    headcount = Counter(d for d, _h, a, lo in emp.values() if a and (lo is None or _d(lo) > horizon))
    cap = {
        i: max(1, math.floor((f if f is not None else frac) * headcount.get(i, 0) + 1e-9))
        for i, (_n, f) in depts.items()
    }
    absences = defaultdict(list)
    for e, s, t in con.execute('select employee_id, start, "end" from absence'):
        absences[e].append((_d(s), _d(t)))
    h_end = horizon + timedelta(weeks=weeks)
    rots = [
        (e, _d(s), _d(t))
        for e, s, t in con.execute("select employee_id, start, \"end\" from rotation where status != 'cancelled'")
    ]
    v: Counter[str] = Counter()
    per_week: Counter[int] = Counter()
    per_dept_week: Counter[tuple[int, int]] = Counter()
    in_horizon: Counter[int] = Counter()
    for e, s, t in rots:
        if t < horizon or s >= h_end:
            continue
        dept, hired, _active, _left = emp[e]
        if s >= horizon:
            in_horizon[e] += 1
            if depts[dept][0] == support:
                v["support rotates"] += 1
            if s.weekday() != 0:
                v["not a Monday"] += 1
            if (t - s).days != 7 * length - 1:
                v["wrong length"] += 1
            if s < hired - timedelta(days=hired.weekday()):
                v["before hire week"] += 1
            if any(s <= b1 and t >= b0 for b0, b1 in blackouts):
                v["blackout"] += 1
            if any(s <= a1 and t >= a0 for a0, a1 in absences.get(e, [])):
                v["absence"] += 1
        for k in range(weeks):
            w0 = horizon + timedelta(weeks=k)
            if s <= w0 + timedelta(days=6) and t >= w0:
                per_week[k] += 1
                per_dept_week[(dept, k)] += 1
    v["seats"] = sum(1 for c in per_week.values() if c > seats)
    v["department cap"] = sum(1 for (d, _k), c in per_dept_week.items() if c > cap[d])
    v["twice in horizon"] = sum(1 for c in in_horizon.values() if c > 1)
    con.close()
    return {k: c for k, c in v.items() if c}


def _offset(tzname: str, day: date) -> float:
    off = datetime(day.year, day.month, day.day, 12, tzinfo=ZoneInfo(tzname)).utcoffset()
    return 0.0 if off is None else off.total_seconds() / 3600


def pair_violations(company: Company, as_of: date = TODAY) -> dict[str, int]:
    """Hard-rule violations of the stored active pairings of planned rotations in the horizon: mentor
    not an active support mentor, own department, no shared language, time zones too far apart, a mentor
    the person had before, mentor absent, more than the mentor's seats in a week, more than the annual
    cap; and planned rotations left without a mentor (counted, not a violation)."""
    import json
    import sqlite3

    con = sqlite3.connect(company.db)
    gap = float(_policy_value(company, "mentoring.max_timezone_gap_hours"))
    annual_cap = int(_policy_value(company, "mentoring.annual_cap"))
    support = _policy_value(company, "support_department")
    sid = con.execute("select id from department where name = ?", (support,)).fetchone()[0]
    emp = {
        r[0]: r[1:]
        for r in con.execute(
            "select id, department_id, languages, timezone, is_mentor, mentor_capacity, active from employee"
        )
    }
    h0 = as_of - timedelta(days=as_of.weekday())
    h_end = h0 + timedelta(weeks=52)
    rot = {
        i: (e, _d(s), _d(t), st)
        for i, e, s, t, st in con.execute('select id, employee_id, start, "end", status from rotation')
    }
    absences = defaultdict(list)
    for e, s, t in con.execute('select employee_id, start, "end" from absence'):
        absences[e].append((_d(s), _d(t)))
    pairings = con.execute("select id, rotation_id, mentor_id, status from mentorpairing").fetchall()
    had: dict[int, Counter[int]] = defaultdict(Counter)  # employee -> mentor -> rotations paired with them
    for _p, r, m, _st in pairings:
        had[rot[r][0]][m] += 1
    v: Counter[str] = Counter()
    weekly: Counter[tuple[int, date]] = Counter()
    yearly: Counter[int] = Counter()
    paired = set()
    for _p, r, m, st in pairings:
        e, s, t, rst = rot[r]
        if st != "active" or rst not in ("draft", "invited") or t < as_of or s >= h_end:
            continue
        paired.add(r)
        dept, langs, tz, _im, _cap, _a = emp[e]
        mdept, mlangs, mtz, is_mentor, mcap, mactive = emp[m]
        if mdept != sid or not is_mentor or not mactive or not mcap:
            v["not an active support mentor"] += 1
        if mdept == dept:
            v["own department"] += 1
        if not set(json.loads(langs)) & set(json.loads(mlangs)):
            v["no shared language"] += 1
        if abs(_offset(tz, s) - _offset(mtz, h0)) > gap + 1e-9:
            v["time zones too far apart"] += 1
        if had[e][m] > 1:
            v["mentor had before"] += 1
        if any(s <= a1 and t >= a0 for a0, a1 in absences.get(m, [])):
            v["mentor absent"] += 1
        yearly[m] += 1
        w = s - timedelta(days=s.weekday())
        while w <= t:
            weekly[(m, w)] += 1
            w += timedelta(weeks=1)
    v["mentor over weekly seats"] = sum(1 for (m, _w), c in weekly.items() if c > emp[m][4])
    v["mentor over annual cap"] = sum(1 for m, c in yearly.items() if c > annual_cap)
    planned = [i for i, (_e, s, t, st) in rot.items() if st in ("draft", "invited") and t >= as_of and s < h_end]
    con.close()
    out = {k: c for k, c in v.items() if c}
    out["_unpaired"] = sum(1 for i in planned if i not in paired)
    out["_planned"] = len(planned)
    return out


def _active_pairings(con: Any, as_of: date) -> dict[int, int]:
    """Rotation -> mentor of the active pairings of planned rotations that have not ended by ``as_of``."""
    rows = con.execute(
        "select p.rotation_id, p.mentor_id from mentorpairing p join rotation r on r.id = p.rotation_id "
        "where p.status = 'active' and r.status in ('draft', 'invited') and r.\"end\" >= ?",
        (as_of.isoformat(),),
    )
    return dict(rows.fetchall())


def roster_change(company: Company, share: float = 0.01, seed: int = 7) -> dict[str, Any]:
    """A day's roster change on the paired company, through the product's own paths, and what ``frontline
    pair`` then moves. ``share`` of the mentors who hold pairings leave (they are missing from the
    employees.csv of a full roster import, confirmed with ``--allow-leavers``), and as many others get a
    two-week absence from the second week of one of their paired rotations (a new row of absences.csv); then
    ``frontline pair``. Counted here, from the database before and after (not from the command's output): the
    active pairings that had to move (their mentor left, or is now absent during the rotation), those that
    moved, those that moved without having to (and of them, those whose old pairing says they moved to make
    room for someone), those that had to and did not, and the rotations left without a mentor; the hard-rule
    violations after (:func:`pair_violations`); the two commands' wall times."""
    import csv
    import sqlite3

    rnd = random.Random(seed)
    con = sqlite3.connect(company.db)
    before = _active_pairings(con, TODAY)
    rotations = {i: (_d(s), _d(t)) for i, s, t in con.execute('select id, start, "end" from rotation')}
    code = dict(con.execute("select id, employee_id from employee").fetchall())
    con.close()
    held: dict[int, list[int]] = defaultdict(list)  # mentor -> rotations paired with them
    for r, m in sorted(before.items()):
        held[m].append(r)
    mentors = sorted(held)
    k = max(1, round(share * len(mentors)))
    chosen = rnd.sample(mentors, min(2 * k, len(mentors)))
    leavers, absent = set(chosen[:k]), chosen[k:]
    absences: dict[int, tuple[date, date]] = {}
    for m in absent:
        start, _ = rotations[min(held[m], key=lambda r: rotations[r])]  # its first paired rotation
        absences[m] = (start + timedelta(days=7), start + timedelta(days=20))
    folder = company.directory / "roster-change"
    folder.mkdir(exist_ok=True)
    source = company.directory / "roster"
    shutil.copyfile(source / "departments.csv", folder / "departments.csv")
    gone = {code[m] for m in leavers}
    with open(source / "employees.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    with open(folder / "employees.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f, lineterminator="\n").writerows([rows[0], *(row for row in rows[1:] if row[0] not in gone)])
    with open(source / "absences.csv", newline="", encoding="utf-8") as f:
        rows = [row for row in csv.reader(f) if row[0] not in gone]  # a leaver's absences go with them
    rows += [[code[m], a0.isoformat(), a1.isoformat(), "sick leave"] for m, (a0, a1) in absences.items()]
    with open(folder / "absences.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)
    files = [
        arg for name in ("departments", "employees", "absences") for arg in (f"--{name}", str(folder / f"{name}.csv"))
    ]
    wall_import, _, _ = frontline(company, "roster", "import", *files, "--allow-leavers", str(k), name="roster-change")
    wall_pair, _, _ = frontline(company, "pair", "--as-of", TODAY.isoformat(), name="pair-change")
    con = sqlite3.connect(company.db)
    after = _active_pairings(con, TODAY)
    made_room = {  # rotations whose pairing the re-run replaced saying it moved them to make room
        r for (r,) in con.execute("select rotation_id from mentorpairing where reason like 'moved to make room%'")
    }
    con.close()

    def must_move(r: int, m: int) -> bool:
        if m in leavers:
            return True
        if m not in absences:
            return False
        (s, t), (a0, a1) = rotations[r], absences[m]
        return s <= a1 and t >= a0

    must = {r for r, m in before.items() if must_move(r, m)}
    moved = {r for r, m in before.items() if after.get(r) != m}
    viol = pair_violations(company)
    return {
        "mentors": len(mentors),
        "leavers": len(leavers),
        "absent": len(absent),
        "must": len(must),
        "moved": len(moved & must),
        "others": len(moved - must),
        "others_made_room": len((moved - must) & made_room),
        "stayed": len(must - moved),
        "unmatched": sum(1 for r in must if r not in after),
        "violations": sum(v for key, v in viol.items() if not key.startswith("_")),
        "import_s": wall_import,
        "pair_s": wall_pair,
    }


# --------------------------------------------------------------------------------------------------
# Baselines, run in a subprocess against a company's database (``python bench/company.py ...``)


def _baseline_plan(out_db: str) -> dict[str, Any]:
    """Greedy earliest-due-first (same hard rules) on the input ``frontline plan`` builds; its plan is
    written to ``out_db`` (a copy of the database) for the checker."""
    import sqlite3

    from frontline.core.policy import load_policy
    from frontline.rotations.service import load_input
    from frontline.rotations.solver import greedy
    from frontline.rotations.weeks import rotation_end, week_start
    from models import init_db, session_scope

    init_db()  # as the command does: the database is upgraded to this code's schema first
    policy = load_policy()
    t0 = time.perf_counter()
    with session_scope() as s:
        planning = load_input(s, policy, TODAY, 52)
    t1 = time.perf_counter()
    out = greedy(planning.inp)
    t2 = time.perf_counter()
    con = sqlite3.connect(out_db)
    rows = []
    for key, w in out.assignments.items():
        start = week_start(TODAY, w)
        end = rotation_end(start, policy.length_weeks)
        rows.append(
            (planning.employees[key].id, start.isoformat(), end.isoformat(), planning.due_dates[key].isoformat())
        )
    con.executemany(
        'insert into rotation (employee_id, start, "end", due, kind, status, locked, sequence, created_at, updated_at) '
        "values (?, ?, ?, ?, 'cycle', 'draft', 0, 0, '2027-01-01', '2027-01-01')",
        rows,
    )
    con.commit()
    con.close()
    return {"load_s": t1 - t0, "solve_s": t2 - t1, "objective": out.objective, "unplaced": len(out.unplaced)}


def _pair_input() -> tuple[list[Any], list[Any], Any]:
    """The rotators, mentors and weights ``frontline pair`` builds from the database (``TODAY``)."""
    from frontline.core.policy import load_policy
    from frontline.mentors import solver
    from frontline.mentors.service import load_state, solver_input, support_department, triage
    from models import init_db, session_scope

    init_db()  # as the command does: the database is upgraded to this code's schema first
    policy = load_policy()
    with session_scope() as s:
        state = load_state(s, support_department(s, policy), TODAY)
        rotators, mentors = solver_input(state, triage(state), policy.mentoring.annual_cap)
    return list(rotators), list(mentors), solver.Weights.from_policy(policy.mentoring)


def _baseline_pair() -> dict[str, Any]:
    """Week-by-week greedy on the input ``frontline pair`` builds, checked by the solver package's
    independent checker (:mod:`frontline.mentors.solver.check`)."""
    from frontline.mentors import solver

    t0 = time.perf_counter()
    rotators, mentors, weights = _pair_input()
    t1 = time.perf_counter()
    sol = solver.solve_greedy(rotators, mentors, weights)
    t2 = time.perf_counter()
    bad = solver.violations(rotators, mentors, weights, sol.assignments)
    return {
        "load_s": t1 - t0,
        "solve_s": t2 - t1,
        "objective": sol.objective,
        "unmatched": len(sol.unmatched),
        "violations": len(bad),
        "rotators": len(rotators),
        "mentors": len(mentors),
    }


def _offline_pair_bound(rounds: int, paired_db: str | None) -> dict[str, Any]:
    """A lower bound on the input ``frontline pair`` builds, with no time limit: the kept-week flow for
    ``rounds`` rounds of pricing every eligible pair, then the every-week bound
    (:func:`frontline.mentors.solver.cohorts.flow_bounds`, the same code the command runs up to 40,000
    rotators with 2 rounds and a deadline). Valid for the whole problem whatever pairing it starts from: it
    shows how far the command's pairing is from optimal where the command's own bound is weaker (100k
    employees: the load bound). The first flow also gets the pairs the command stored (``paired_db``, a copy
    of the database after it; active pairings by rotation id), as the command's own bound does."""
    import sqlite3

    import numpy as np

    from frontline.mentors.solver.cohorts import Cohorts, CohortSettings, candidate_scan, flow_bounds
    from frontline.mentors.solver.model import Instance

    rotators, mentors, weights = _pair_input()
    c0 = time.process_time()
    inst = Instance(rotators, mentors, weights)
    cfg = CohortSettings(bound_rounds=rounds)
    pool, found = candidate_scan(inst, cfg.candidates, cfg.block)
    rots = np.nonzero(found.n_eligible > 0)[0]
    stats: dict[str, Any] = {}
    assign = np.full(inst.n, -1, dtype=np.int64)
    if paired_db:
        con = sqlite3.connect(paired_db)
        stored = dict(con.execute("SELECT rotation_id, mentor_id FROM mentorpairing WHERE status = 'active'"))
        con.close()
        mentor_index = {m.key: j for j, m in enumerate(mentors)}
        for i, r in enumerate(rotators):
            assign[i] = mentor_index.get(stored.get(r.key), -1)
    bound, _ = flow_bounds(inst, rots, Cohorts(inst, pool, rots), assign, cfg, (math.inf, math.inf), stats)
    # nobody eligible costs the penalty in every pairing; the flows cover the others
    bound = max(bound, float(np.minimum(inst.w.unmatched_penalty, found.best).sum()))
    return {"bound": bound, "rounds": rounds, "bound_cpu_s": time.process_time() - c0, "log": stats.get("bound_log")}


OFFLINE_LP_PAIRS = 5_000_000  # above: the LP over every pair does not fit (100k employees: 242 M pairs)


def _offline_pair_lp() -> dict[str, Any]:
    """The LP relaxation of the whole pairing problem on the input ``frontline pair`` builds: every eligible
    pair a column, every weekly row that can bind, the annual caps and the convex load cost
    (:class:`frontline.mentors.solver.lp.AssignmentModel`), solved by HiGHS's interior point with crossover,
    no time limit. Its value is the tightest bound any LP-based method can show (the kept-week and
    every-week bounds are Lagrangian duals of weaker or equal relaxations). When its solution is whole
    (every pair and every rotator's unmatched slack 0 or 1), that solution is a pairing: it is checked by
    the solver package's independent checker (hard rules and objective from the definitions), and its
    objective is then the optimum."""
    import numpy as np

    from frontline.mentors import solver
    from frontline.mentors.solver.lp import AssignmentModel
    from frontline.mentors.solver.model import Edges, Instance

    rotators, mentors, weights = _pair_input()
    c0 = time.process_time()
    inst = Instance(rotators, mentors, weights)
    count, cols, costs = inst.eligible_all()
    if len(cols) > OFFLINE_LP_PAIRS:
        return {"skipped": f"{len(cols):,} eligible pairs (the offline LP stops at {OFFLINE_LP_PAIRS:,})"}
    er = np.repeat(np.arange(inst.n), count)
    edges = Edges(er, cols.astype(np.int64), costs)
    model = AssignmentModel(inst, np.arange(inst.n), edges, inst.rescap, inst.annual, np.zeros(inst.m))
    lp = model.solve_lp("highs-ipm", presolve=True)  # raises when HiGHS does not solve it
    x = lp.x[: model.E + model.R]
    whole = bool(np.all(np.minimum(x, 1 - x) < 1e-6))
    out: dict[str, Any] = {
        "lp": float(lp.value),
        "pairs": len(cols),
        "weekly_rows": model.W,
        "whole": whole,
        "fractional_rotators": len(np.unique(model.er[(x[: model.E] > 1e-6) & (x[: model.E] < 1 - 1e-6)])),
        "lp_cpu_s": time.process_time() - c0,
    }
    if whole:
        pick = x[: model.E] > 0.5
        assignments = {rotators[i].key: mentors[j].key for i, j in zip(model.er[pick], model.em[pick], strict=True)}
        out["checked_violations"] = len(solver.violations(rotators, mentors, weights, assignments))
        out["checked_objective"] = solver.objective(rotators, mentors, weights, assignments)
        out["unmatched"] = inst.n - len(assignments)
    return out


def baseline(company: Company, kind: str) -> dict[str, Any]:
    """Run a baseline in its own process (peak memory its own); returns its figures plus ``wall_s``, ``peak_mb``."""
    import json

    args = [sys.executable, __file__, kind]
    if kind == "plan":
        out_db = company.directory / "baseline.db"
        shutil.copyfile(company.db, out_db)
        args.append(str(out_db))
    wall, peak, rc, out = _run(args, company.env, company.directory / f"baseline-{kind}.log")
    if rc != 0:
        raise RuntimeError(f"baseline {kind} failed:\n{out[-3000:]}")
    data = json.loads(out.strip().splitlines()[-1])
    data.update(wall_s=wall, peak_mb=peak, cpu_s=CPU_SECONDS[f"baseline-{kind}.log"])
    if kind == "plan":
        checked = Company(company.directory, company.n, company.variant)
        saved = company.db.read_bytes()
        try:
            shutil.copyfile(company.directory / "baseline.db", company.db)
            data["violations"] = sum(plan_violations(checked).values())
        finally:
            company.db.write_bytes(saved)
    return data


def planned(company: Company) -> None:
    """The database after ``frontline plan`` (snapshot ``planned``, made once): what pairing starts from."""
    if not (company.directory / "planned.db").exists():
        restore(company, "imported")
        frontline(company, "plan", "--from", TODAY.isoformat(), name="plan-setup")
        snapshot(company, "planned")
    restore(company, "planned")


def imported(company: Company) -> None:
    """The database right after the roster import (snapshot ``imported``, made once)."""
    if not (company.directory / "imported.db").exists():
        snapshot(company, "imported")
    restore(company, "imported")


def load_line() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg()) + f" on {os.cpu_count()} cores"


if __name__ == "__main__":
    import json

    sys.path.insert(0, str(ROOT))
    if sys.argv[1] == "plan":
        print(json.dumps(_baseline_plan(sys.argv[2])))
    elif sys.argv[1] == "pair":
        print(json.dumps(_baseline_pair()))
    elif sys.argv[1] == "pair-bound":
        rounds = int(os.environ.get("FRONTLINE_BENCH_BOUND_ROUNDS", "7"))
        print(json.dumps(_offline_pair_bound(rounds, os.environ.get("FRONTLINE_BENCH_PAIRED_DB")), default=str))
    elif sys.argv[1] == "pair-lp":
        print(json.dumps(_offline_pair_lp()))
