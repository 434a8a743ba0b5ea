"""Mentor matching benchmark: the whole-horizon optimiser against a week-by-week greedy baseline.

    .venv/bin/python bench/pair.py            # 2,000 x 300 and 20,000 x 3,000 over a year
    .venv/bin/python bench/pair.py --small    # 2,000 x 300 only

``solve`` picks its method by size (2,000 x 300: LP column generation, proven optimal; 20,000 x 3,000:
cohort flows with the kept-week bound); the full-year flow with weekly repair (the method before the
cohorts) is also run (forced) for comparison.

Synthetic company (seeded): rotators in 25 departments rotate 4 weeks starting in a random week of the
year; mentors are support staff (a few also belong to rotating departments, so the own-department
rule bites) with 3 seats a week (as in the research instance), an annual cap of 10, languages, skills, time zones and a few
absence weeks. Prints time, objective, bound, gap, matched, weekly-capacity violations for both
methods and the greedy/optimal objective ratio.

    .venv/bin/python bench/pair.py --company demo --sizes 1000,10000 --variants base,tight,history

``--company demo``: the whole ``frontline pair`` command on a demo company (``bench/company.py``: the
product's generator and the demo's policy, imported into SQLite and planned by ``frontline plan``):
wall time of the command (Prefect flow run, loading, solving, choosing check-in slots, writing), the
solve time, the peak resident memory of its process, objective, bound, gap, the hard-rule violations
of the stored pairings counted by an independent checker (SQL and Python from the README's rules), and
what a second run changes (stability: it must create and replace nothing); beside the week-by-week
greedy baseline on the same input (own process) and the ratios.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from frontline.mentors.solver import Mentor, Rotator, Weights, solve, solve_greedy, violations

ZONES = [-8, -7, -6, -5, -4, -3, 0, 0, 1, 1, 1, 2, 2, 3, 5.5, 8, 9, 10]
LANGS = ["en"] * 6 + ["de", "fr", "es", "pt", "ja", "pl", "nl"]
SKILLS = [f"skill{i}" for i in range(24)]


def synthetic(n_rot: int, n_ment: int, weeks: int = 52, length: int = 4, seed: int = 7):
    rnd = random.Random(seed)
    depts = [f"Dept{i}" for i in range(25)]

    def langs():
        out = {rnd.choice(LANGS)}
        if rnd.random() < 0.4:
            out.add(rnd.choice(LANGS))
        return frozenset(out)

    mentors = []
    for j in range(n_ment):
        unavailable = set()
        if rnd.random() < 0.3:
            w0 = rnd.randrange(weeks)
            unavailable = set(range(w0, min(weeks, w0 + rnd.randint(1, 3))))
        mentors.append(
            Mentor(
                key=f"m{j}",
                dept="Support" if rnd.random() < 0.9 else rnd.choice(depts),
                languages=langs() | ({"en"} if rnd.random() < 0.5 else set()),
                skills=frozenset(rnd.sample(SKILLS, rnd.randint(1, 4))),
                tz_hours=rnd.choice(ZONES),
                capacity=3,
                annual_cap=10,
                unavailable_weeks=frozenset(unavailable),
                ever_mentored=rnd.random() < 0.7,
                feedback=None if rnd.random() < 0.3 else round(rnd.uniform(2.0, 5.0), 1),
            )
        )
    rotators = []
    for i in range(n_rot):
        s = rnd.randrange(weeks - length + 1)
        rotators.append(
            Rotator(
                key=f"r{i}",
                dept=rnd.choice(depts),
                languages=langs(),
                skills=frozenset(rnd.sample(SKILLS, rnd.randint(0, 3))),
                tz_hours=rnd.choice(ZONES),
                start_week=s,
                end_week=s + length,
                is_new_hire=rnd.random() < 0.2,
                previous_mentors=frozenset(f"m{rnd.randrange(n_ment)}" for _ in range(rnd.randint(0, 2))),
            )
        )
    return rotators, mentors


def run(n_rot: int, n_ment: int, time_limit: float = 900.0) -> None:
    t = time.perf_counter()
    rotators, mentors = synthetic(n_rot, n_ment)
    gen = time.perf_counter() - t
    w = Weights()
    c0 = time.process_time()
    opt = solve(rotators, mentors, w, time_limit=time_limit)
    opt_cpu = time.process_time() - c0
    runs = [(opt, opt_cpu)]
    if opt.method not in ("flow", "flow+repair", "flow+greedy"):
        c0 = time.process_time()
        flow = solve(rotators, mentors, w, time_limit=time_limit, method="flow")
        runs.append((flow, time.process_time() - c0))
    c0 = time.process_time()
    greedy = solve_greedy(rotators, mentors, w)
    greedy_cpu = time.process_time() - c0
    runs.append((greedy, greedy_cpu))
    print(f"\n== {n_rot:,} rotators x {n_ment:,} mentors, 52 weeks (generated in {gen:.1f} s)")
    for sol, cpu in runs:
        weekly = sum(1 for p in violations(rotators, mentors, w, sol.assignments) if " in week " in p)
        other = len(violations(rotators, mentors, w, sol.assignments)) - weekly
        bound = "-" if sol.bound is None else f"{sol.bound:,.1f}"
        gap = "-" if sol.gap is None else f"{100 * sol.gap:.4f} %"
        print(
            f"{sol.method:14s} time {sol.seconds:6.2f} s (cpu {cpu:6.2f} s)  objective {sol.objective:,.1f}  bound {bound}  gap {gap}  "
            f"matched {sol.matched:,}/{n_rot:,}  weekly-cap violations {weekly}  other violations {other}"
        )
    for sol, _ in runs[:-1]:
        print(f"greedy / {sol.method} objective: {greedy.objective / sol.objective:.4f}")
    print("(wall time depends on the load of the machine; cpu is this process's processor time)")
    for sol, _ in runs[:-1]:
        print(f"{sol.method} stats: { {k: v for k, v in sol.stats.items() if k != 'lp_log'} }")


def demo(
    sizes: list[int],
    variants: list[str],
    seed: int,
    offline_rounds: int = 0,
    offline_lp: bool = False,
    change: float = 0.01,
) -> None:
    """``--company demo`` (see the module docstring); ``offline_rounds`` > 0: also the offline bound
    (:func:`company._offline_pair_bound`, own process) and the command's gap against it; ``offline_lp``: also
    the LP over every eligible pair (:func:`company._offline_pair_lp`, own process): the best bound an LP
    can show, and the optimum itself when its solution is whole; ``change`` > 0: then a roster change (that
    share of the mentors leave, as many get an absence: :func:`company.roster_change`) and what ``frontline
    pair`` moves."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import company as co

    print(co.load_line())
    head = (
        f"{'employees':>9} {'variant':>7} {'rotators':>8} | {'wall s':>7} {'solve s':>7} {'peak MB':>7} {'objective':>11} "
        f"{'bound':>11} {'gap':>8} {'unmatched':>9} {'viol':>4} {'rerun':>5} | {'greedy s':>8} {'objective':>11} "
        f"{'viol':>4} | {'obj ratio':>9}"
    )
    print(head)
    print("-" * len(head), flush=True)
    for n in sizes:
        for variant in variants:
            c = co.build(n, variant, seed)
            co.planned(c)
            wall, peak, out = co.frontline(c, "pair", "--as-of", co.TODAY.isoformat(), name="pair")
            f = co.parse_figures(
                out,
                {
                    "objective": r"objective ([\d.,]+)",
                    "bound": r"bound ([\d.,]+|None|-)",
                    "gap": r"gap ([\d.]+|-)",
                    "solve": r"solve ([\d.]+) s",
                    "seconds": r", ([\d.]+) s\)",
                    "created": r"(\d+) created",
                    "unmatched": r"(\d+) unmatched",
                },
            )
            viol = co.pair_violations(c)
            _, _, again = co.frontline(c, "pair", "--as-of", co.TODAY.isoformat(), name="pair-again")
            g = co.parse_figures(again, {"created": r"(\d+) created", "replaced": r"(\d+) replaced"})
            rerun = int((g["created"] or 0) + (g["replaced"] or 0))
            paired = c.directory / "paired.db"  # the command's pairings, for the offline bound's first flow
            shutil.copyfile(c.db, paired)
            moved = co.roster_change(c, change, seed) if change > 0 else None
            co.planned(c)
            b = co.baseline(c, "pair")
            obj = f["objective"] or 0.0
            gap = "-" if f["gap"] is None else f"{f['gap']:.3f}%"
            bound = "-" if f["bound"] is None else f"{f['bound']:,.0f}"
            solve_s = f["solve"] if f["solve"] is not None else (f["seconds"] or 0.0)
            hard = sum(v for k, v in viol.items() if not k.startswith("_"))
            print(
                f"{n:>9} {variant:>7} {b['rotators']:>8} | {wall:>7.2f} {solve_s:>7.2f} {peak:>7.0f} {obj:>11,.0f} "
                f"{bound:>11} {gap:>8} {int(f['unmatched'] or 0):>9} {hard:>4} {rerun:>5} | {b['solve_s']:>8.2f} "
                f"{b['objective']:>11,.0f} {b['violations']:>4} | {b['objective'] / max(obj, 1e-9):>8.3f}x",
                flush=True,
            )
            if hard:
                print(f"{'':>9} violations: {viol}")
            if moved is not None:
                _print_roster_change(moved)
            if offline_rounds > 0:
                os.environ["FRONTLINE_BENCH_BOUND_ROUNDS"] = str(offline_rounds)
                os.environ["FRONTLINE_BENCH_PAIRED_DB"] = str(paired)
                o = co.baseline(c, "pair-bound")
                best = max(o["bound"], f["bound"] or 0.0)
                print(
                    f"{'':>9} offline bound {o['bound']:,.0f} ({offline_rounds} kept-week rounds at most, "
                    f"{o['wall_s']:.0f} s wall, {o['bound_cpu_s']:.0f} s CPU, {o['peak_mb']:.0f} MB): the command's "
                    f"gap against the best bound {100 * (obj - best) / max(obj, 1e-9):.3f}% (objective - bound over objective)",
                    flush=True,
                )
            if offline_lp:
                _print_offline_lp(co.baseline(c, "pair-lp"), obj)
    print(co.load_line())


def _print_roster_change(r: dict) -> None:
    """One line: what ``frontline pair`` moved after a roster change (:func:`company.roster_change`)."""
    print(
        f"{'':>9} roster change: {r['leavers']} of {r['mentors']:,} mentors left, {r['absent']} absent two weeks: "
        f"{r['must']} pairings had to move, {r['moved']} moved ({r['unmatched']} now without a mentor), "
        f"{r['others']} others moved ({r['others_made_room']} to make room), {r['stayed']} stayed put; "
        f"import {r['import_s']:.2f} s, pair {r['pair_s']:.2f} s, {r['violations']} violations",
        flush=True,
    )


def _print_offline_lp(o: dict, obj: float) -> None:
    """One line: the offline LP's value and what it says about the command's objective ``obj``."""
    above = max(0.0, 100 * (obj - o.get("lp", obj)) / max(obj, 1e-9))  # the printed objective is rounded
    if "skipped" in o:
        print(f"{'':>9} offline LP skipped: {o['skipped']}", flush=True)
        return
    head = (
        f"{'':>9} offline LP over every pair ({o['pairs']:,} pairs, {o['weekly_rows']:,} weekly rows; "
        f"{o['wall_s']:.0f} s wall, {o['lp_cpu_s']:.0f} s CPU, {o['peak_mb']:.0f} MB): {o['lp']:,.1f}"
    )
    if o["whole"]:
        tail = (
            f", whole: the optimum ({o['unmatched']} unmatched; checked: {o['checked_violations']} violations, "
            f"objective {o['checked_objective']:,.1f}); the command is {above:.3f}% above it"
        )
    else:
        tail = (
            f", {o['fractional_rotators']} rotators fractional: the command is at most {above:.3f}% above the optimum"
        )
    print(head + tail, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--company", choices=("synthetic", "demo"), default="synthetic")
    ap.add_argument("--sizes", default="1000,10000,100000", help="demo company sizes (employees)")
    ap.add_argument("--variants", default="base,tight,history", help="demo variants: base, tight, history")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--time-limit", type=float, default=900.0, help="optimiser wall-clock limit per instance (s)")
    ap.add_argument(
        "--offline-bound",
        type=int,
        default=0,
        metavar="ROUNDS",
        help="demo: also a lower bound without time limit (kept-week flow rounds, then every week; own process)",
    )
    ap.add_argument(
        "--offline-lp",
        action="store_true",
        help="demo: also the LP over every eligible pair (own process, no time limit; up to 5 M pairs)",
    )
    ap.add_argument(
        "--change",
        type=float,
        default=0.01,
        metavar="SHARE",
        help="demo: after the runs, this share of the mentors leave and as many get an absence; what a pair run "
        "then moves (0: skip)",
    )
    args = ap.parse_args()
    if args.company == "demo":
        sizes, variants = [int(x) for x in args.sizes.split(",") if x], [v for v in args.variants.split(",") if v]
        demo(sizes, variants, args.seed, args.offline_bound, args.offline_lp, args.change)
        return
    run(2_000, 300, args.time_limit)
    if not args.small:
        run(20_000, 3_000, args.time_limit)


if __name__ == "__main__":
    main()
