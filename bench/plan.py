"""Benchmark the rotation planner on generated companies, against a greedy baseline in the same run.

    .venv/bin/python bench/plan.py                      # 1k, 10k, 100k employees
    .venv/bin/python bench/plan.py --sizes 1000,10000

For every size, two fresh subprocesses (so peak memory is per method) generate the company with
``frontline.demo.synth.generate_company``, build the planner input exactly as the service does
(``frontline.rotations.service.build_input``; 52 weeks, 4-week rotations, seats as in the demo) and solve it with
the optimiser (LP + repair, with the LP lower bound) or with the greedy earliest-due-first baseline
(same hard rules). Printed: wall and CPU seconds of the solve, peak resident memory of the process,
objective (placement costs + a large penalty per unplaced person), lower bound, gap, unplaced, the
baseline/optimiser objective ratio, and the lateness cost alone (objective without unplaced penalties)
with its own baseline/optimiser ratio.
Figures, not pass/fail.

    .venv/bin/python bench/plan.py --company demo --sizes 1000,10000 --variants base,tight

``--company demo``: the whole ``frontline plan`` command on a demo company (:mod:`bench.company`: the
product's generator and the demo's policy, imported into SQLite; variants ``base``, ``tight``, ``history``):
wall time of the command (Prefect flow run, loading, solving, writing), the solve time it reports, the
peak resident memory of its process, objective, LP bound, gap, and the hard-rule violations of the stored
plan counted by an independent checker; beside the greedy baseline run in the same run on the same input
(its own process; its plan checked the same way) and the ratios.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
TODAY = date(2027, 1, 4)  # a Monday: the company is generated "as of" this day and planned from it


def build(n: int, seed: int):
    sys.path.insert(0, str(ROOT))
    from frontline.core.policy import parse_policy
    from frontline.demo.synth import generate_company
    from frontline.rotations.inputs import build_input

    company = generate_company(n, seed=seed, today=TODAY)
    seats = max(2, math.ceil(n * 4 / 52 * 1.3))  # as the demo: everyone once a year plus 30% slack
    policy = parse_policy(
        {
            "support_department": company.support_department,
            "length_weeks": 4,
            "new_hire_within_weeks": 8,
            "cycle_months": 12,
            "seats_per_week": seats,
            "max_department_away_fraction": 0.1,
            "blackouts": [{"start": "2027-12-20", "end": "2028-01-02", "reason": "year-end freeze"}],
        }
    )
    depts = [
        SimpleNamespace(id=i, name=d["department"], max_away_fraction=d["max_away_fraction"])
        for i, d in enumerate(company.departments)
    ]
    dept_id = {d.name: d.id for d in depts}
    emps, pk = [], {}
    for i, e in enumerate(company.employees):
        pk[e["employee_id"]] = i
        emps.append(
            SimpleNamespace(
                id=i,
                employee_id=e["employee_id"],
                email=e["email"],
                department_id=dept_id[e["department"]],
                hire_date=e["hire_date"],
                last_rotation=e["last_rotation"],
                active=True,
                left_on=None,
                exempt_until=None,
                country=e["country"],
            )
        )
    absences = [
        SimpleNamespace(employee_id=pk[a["employee_id"]], start=a["start"], end=a["end"]) for a in company.absences
    ]
    return build_input(policy, TODAY, 52, depts, emps, absences, []).inp


def one(n: int, seed: int, method: str) -> dict:
    from frontline.rotations.solver import greedy, solve

    t0 = time.perf_counter()
    inp = build(n, seed)
    build_s = time.perf_counter() - t0
    w0, c0 = time.perf_counter(), time.process_time()
    out = solve(inp) if method == "optimiser" else greedy(inp)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "n": n,
        "method": method,
        "people": len(inp.people),
        "seats": inp.seats_per_week,
        "build_s": round(build_s, 2),
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "peak_mb": round(peak_mb),
        "objective": out.objective,
        "lower_bound": out.lower_bound,
        "gap": out.gap,
        "planned": len(out.assignments),
        "unplaced": len(out.unplaced),
        "placement_cost": sum(out.costs.values()),
        "classes": out.stats.get("classes"),
        "columns": out.stats.get("columns"),
        "lp_rounds": out.stats.get("lp_rounds"),
    }


def demo(sizes: list[int], variants: list[str], seed: int) -> None:
    """``--company demo`` (see the module docstring)."""
    sys.path.insert(0, str(ROOT / "bench"))
    import company as co

    print(co.load_line())
    head = (
        f"{'employees':>9} {'variant':>7} | {'wall s':>7} {'cpu s':>6} {'solve s':>7} {'peak MB':>7} {'objective':>11} "
        f"{'bound':>11} {'gap':>8} {'viol':>4} | {'greedy wall s':>13} {'cpu s':>6} {'solve s':>7} {'objective':>11} "
        f"{'viol':>4} | {'obj ratio':>9} {'wall ratio':>10} {'cpu ratio':>9}"
    )
    print(head)
    print("-" * len(head), flush=True)
    for n in sizes:
        for variant in variants:
            c = co.build(n, variant, seed)
            co.imported(c)
            wall, peak, out = co.frontline(c, "plan", "--from", co.TODAY.isoformat(), name="plan")
            cpu = co.CPU_SECONDS["plan.log"]
            f = co.parse_figures(
                out,
                {
                    "objective": r"objective ([\d.,]+)",
                    "bound": r"lower bound ([\d.,]+|n/a)",
                    "gap": r"gap ([\d.]+|n/a)%?",
                    "solve": r"solved in ([\d.]+) s",
                },
            )
            viol = co.plan_violations(c)
            co.imported(c)
            b = co.baseline(c, "plan")
            obj = f["objective"] or 0.0
            gap = "-" if f["gap"] is None else f"{f['gap']:.3f}%"
            bound = "-" if f["bound"] is None else f"{f['bound']:,.0f}"
            print(
                f"{n:>9} {variant:>7} | {wall:>7.2f} {cpu:>6.2f} {f['solve'] or 0:>7.2f} {peak:>7.0f} {obj:>11,.0f} "
                f"{bound:>11} {gap:>8} {sum(viol.values()):>4} | {b['wall_s']:>13.2f} {b['cpu_s']:>6.2f} "
                f"{b['solve_s']:>7.2f} {b['objective']:>11,.0f} {b['violations']:>4} | "
                f"{b['objective'] / max(obj, 1e-9):>8.2f}x {wall / b['wall_s']:>9.2f}x {cpu / b['cpu_s']:>8.2f}x",
                flush=True,
            )
            if viol:
                print(f"{'':>9} violations: {viol}")
    print(co.load_line())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000,100000", help="comma-separated company sizes")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--company", choices=("synthetic", "demo"), default="synthetic")
    ap.add_argument("--variants", default="base,tight", help="demo variants: base, tight, history")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--method", default="optimiser", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.seed, args.method)))
        return
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if args.company == "demo":
        demo(sizes, [v for v in args.variants.split(",") if v], args.seed)
        return
    head = f"{'employees':>9} {'method':>9} {'to plan':>7} {'wall s':>7} {'cpu s':>7} {'peak MB':>7} {'objective':>13} {'LP bound':>13} {'gap':>8} {'unplaced':>8} {'ratio':>6} {'lateness cost':>13} {'ratio':>6}"
    print(head)
    print("-" * len(head))
    for n in sizes:
        rows = {}
        for method in ("optimiser", "greedy"):
            proc = subprocess.run(
                [sys.executable, __file__, "--one", str(n), "--seed", str(args.seed), "--method", method],
                capture_output=True,
                text=True,
                cwd=ROOT,
            )
            if proc.returncode != 0:
                print(f"{n:>9} {method:>9} failed: {proc.stderr.strip().splitlines()[-1:]}")
                continue
            rows[method] = r = json.loads(proc.stdout.strip().splitlines()[-1])
            lb = "-" if r["lower_bound"] is None else f"{r['lower_bound']:.0f}"
            gap = "-" if r["gap"] is None else f"{100 * r['gap']:.4f}%"
            ratio = late_ratio = ""
            if method == "greedy" and "optimiser" in rows and rows["optimiser"]["objective"] > 0:
                ratio = f"{r['objective'] / rows['optimiser']['objective']:.2f}x"
                if rows["optimiser"]["placement_cost"] > 0:
                    late_ratio = f"{r['placement_cost'] / rows['optimiser']['placement_cost']:.2f}x"
            print(
                f"{n:>9} {method:>9} {r['people']:>7} {r['wall_s']:>7.2f} {r['cpu_s']:>7.2f} {r['peak_mb']:>7} "
                f"{r['objective']:>13.0f} {lb:>13} {gap:>8} {r['unplaced']:>8} {ratio:>6} {r['placement_cost']:>13.0f} {late_ratio:>6}",
                flush=True,
            )
        if "optimiser" in rows:
            o = rows["optimiser"]
            print(
                f"{'':>9} (optimiser: {o['classes']} classes, {o['columns']} columns, {o['lp_rounds']} LP rounds; "
                f"{o['seats']} seats/week; input built in {o['build_s']} s)",
                flush=True,
            )


if __name__ == "__main__":
    main()
