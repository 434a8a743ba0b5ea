"""Mentor matching benchmark: the whole-horizon optimiser against a week-by-week greedy baseline.

    .venv/bin/python bench/pair.py            # 2,000 x 300 and 20,000 x 3,000 over a year
    .venv/bin/python bench/pair.py --small    # 2,000 x 300 only

``solve`` picks its method by size (2,000 x 300: LP column generation, proven optimal; 20,000 x 3,000:
min-cost flow with weekly repair); at 2,000 x 300 the flow method is also run (forced) for comparison.

Synthetic company (seeded): rotators in 25 departments rotate 4 weeks starting in a random week of the
year; mentors are support staff (a few also belong to rotating departments, so the own-department
rule bites) with 3 seats a week (as in the research instance), an annual cap of 10, languages, skills, time zones and a few
absence weeks. Prints time, objective, bound, gap, matched, weekly-capacity violations for both
methods and the greedy/optimal objective ratio.
"""

from __future__ import annotations

import argparse
import random
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--time-limit", type=float, default=900.0, help="optimiser wall-clock limit per instance (s)")
    args = ap.parse_args()
    run(2_000, 300, args.time_limit)
    if not args.small:
        run(20_000, 3_000, args.time_limit)


if __name__ == "__main__":
    main()
