"""The demo per step: seconds per step, whole wall and CPU time, peak memory, and the summary lines.

    .venv/bin/python bench/demo.py                          # 10,000 employees, this checkout
    .venv/bin/python bench/demo.py --employees 2000 --tree /tmp/old --tree .   # two checkouts, same run

Runs ``frontline demo --employees N --seed S`` in a fresh process per checkout (``--tree``, repeatable; the
first is the baseline), each in its own temporary folder, one after the other, and prints per step the
seconds each took (wall and CPU), the CPU milliseconds per email of the invite and delivery steps, the
process's peak resident memory after each step, the whole run's wall and CPU seconds, then
whether the summary lines (the figures each step prints; timings, the schema revision and the random
calendar-feed token removed) are the same in every run.
Figures, not pass/fail; the load average is printed first.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STEP = re.compile(r"^\[(\d+)/(\d+)\] ([^:]+): (.*) \((\d+(?:\.\d+)?) s\)$")


# The demo's process: every step is wrapped to print the process's peak resident memory so far after it
# (the same for any checkout: the demo's steps are the list ``frontline.demo.runner.STEPS``).
CHILD = """
import resource, sys
import frontline.demo.runner as runner
from frontline.cli import main

def peak_kib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime

def measured(name, step):
    def run(ctx):
        started = cpu()
        try:
            return step(ctx)
        finally:
            print('step-peak-kib', peak_kib(), name, file=sys.stderr)
            print('step-cpu', round(cpu() - started, 2), name, file=sys.stderr)
    return run

runner.STEPS[:] = [(name, measured(name, step)) for name, step in runner.STEPS]
sys.argv[0] = 'frontline'
try:
    main()
finally:
    print('peak-kib', peak_kib(), file=sys.stderr)
"""


def run(tree: Path, employees: int, seed: int) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="frontline-bench-demo-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FRONTLINE_", "PREFECT_"))}
    env.update(
        PYTHONPATH=str(tree),
        PREFECT_HOME=str(folder / "prefect-home"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="600",
        FRONTLINE_SECRET_KEY="bench-secret-key-bench-secret-key",
    )
    code = CHILD
    argv = [sys.executable, "-c", code, "demo", "--employees", str(employees), "--seed", str(seed)]
    argv += ["--dir", str(folder / "demo")]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=folder, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"demo in {tree} failed: {proc.stderr[-3000:]}")
    steps: dict[str, float] = {}
    summary: list[str] = []
    for line in proc.stdout.splitlines():
        m = STEP.match(line.strip())
        if m:
            steps[m.group(3)] = float(m.group(5))
            line = re.sub(r"/calendar/[\w-]+\.ics", "/calendar/<random token>.ics", m.group(4))
            line = re.sub(r"schema revision [^;\s]+", "schema revision <head>", line)
            summary.append(f"{m.group(3)}: {line}")
    step_peak = {name: int(kib) / 1024 for kib, name in re.findall(r"^step-peak-kib (\d+) (.+)$", proc.stderr, re.M)}
    step_cpu = {name: float(sec) for sec, name in re.findall(r"^step-cpu ([\d.]+) (.+)$", proc.stderr, re.M)}
    per_message = {}  # CPU ms per email of the mail steps (the counts from their summary lines)
    for name, pattern in (("send invites", r"(\d+) emails queued"), ("deliver mail", r"(\d+) emails delivered")):
        line = next((line for line in summary if line.startswith(name + ":")), "")
        found = re.search(pattern, line)
        if found and int(found.group(1)) and name in step_cpu:
            per_message[name] = 1000 * step_cpu[name] / int(found.group(1))
    return {
        "steps": steps,
        "step_peak_mb": step_peak,
        "step_cpu": step_cpu,
        "per_message_ms": per_message,
        "summary": summary,
        "wall": wall,
        "cpu": after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime,
        "peak_mb": int(re.findall(r"peak-kib (\d+)", proc.stderr)[-1]) / 1024,  # the demo's own process
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--employees", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--tree", type=Path, action="append", help="checkout to run (repeatable); default this one")
    args = parser.parse_args()
    trees = [t.resolve() for t in (args.tree or [ROOT])]
    print(
        f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (1, 5 min); {args.employees} employees, seed {args.seed}"
    )
    results = [run(tree, args.employees, args.seed) for tree in trees]
    names = list(results[0]["steps"])
    width = max(len(n) for n in names)
    print(f"{'step':<{width}} " + " ".join(f"{str(t)[-24:]:>24}" for t in trees))
    for name in names:
        print(f"{name:<{width}} " + " ".join(f"{r['steps'].get(name, float('nan')):>22.1f} s" for r in results))
    print(f"{'CPU seconds per step':<{width}}")
    for name in names:
        print(f"{name:<{width}} " + " ".join(f"{r['step_cpu'].get(name, float('nan')):>22.1f} s" for r in results))
    print(f"{'CPU ms per email':<{width}}")
    for name in ("send invites", "deliver mail"):
        print(
            f"{name:<{width}} " + " ".join(f"{r['per_message_ms'].get(name, float('nan')):>21.2f} ms" for r in results)
        )
    print(f"{'peak memory after step':<{width}}")
    for name in names:
        print(f"{name:<{width}} " + " ".join(f"{r['step_peak_mb'].get(name, float('nan')):>21.0f} MB" for r in results))
    for label, key, unit in (
        ("whole, wall", "wall", "s"),
        ("whole, CPU", "cpu", "s"),
        ("peak memory", "peak_mb", "MB"),
    ):
        print(f"{label:<{width}} " + " ".join(f"{r[key]:>22.1f} {unit:<2}"[:25].rjust(24) for r in results))
    same = all(r["summary"] == results[0]["summary"] for r in results)
    print(f"summary lines identical in every run: {same}")
    for r, tree in zip(results, trees, strict=True) if not same else [(results[0], trees[0])]:
        print(f"--- {tree}" if not same else "--- summary")
        print("\n".join(r["summary"]))


if __name__ == "__main__":
    main()
