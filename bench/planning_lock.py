"""What the planning lock costs on SQLite: ``frontline plan`` then ``frontline pair`` on a demo company, with
another writer (a probe committing one small row every 20 ms, as mail delivery or the console do) running
beside them; beside the same commands of another checkout (the baseline, e.g. main) in the same run.

    .venv/bin/python bench/planning_lock.py --baseline /work/wt/x-base --sizes 10000

Printed per checkout and command: wall and CPU seconds of the command (its process, user + system), and
what the probe waited: its longest single write (the longest the write lock was held against it) and the
total time its writes waited beyond 5 ms. On PostgreSQL the lock is an advisory lock that no other job
takes, so there the other writers do not wait for it at all (only planning writers queue).
Figures, not pass/fail.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.company import FLOW, ROOT, TODAY, build, restore


class Probe(threading.Thread):
    """Another writer: one short transaction every 20 ms; records how long each took."""

    def __init__(self, db: Path):
        super().__init__(daemon=True)
        self.db, self.stop, self.waits = db, threading.Event(), []

    def run(self) -> None:
        con = sqlite3.connect(self.db, timeout=60, isolation_level=None)
        con.execute("PRAGMA busy_timeout=60000")
        con.execute("create table if not exists bench_probe (id integer primary key, at real)")
        while not self.stop.is_set():
            t0 = time.perf_counter()
            con.execute("BEGIN")
            con.execute("insert into bench_probe (at) values (?)", (t0,))
            con.execute("COMMIT")
            self.waits.append(time.perf_counter() - t0)
            time.sleep(0.02)
        con.close()


def command(checkout: Path, company, *args: str) -> tuple[float, float, float, float]:
    """(wall s, CPU s, probe's longest write s, probe's total wait beyond 5 ms) of ``frontline <args>``."""
    env = dict(company.env)
    env["PYTHONPATH"] = str(checkout)  # the checkout's modules before the editable install's
    probe = Probe(company.db)
    probe.start()
    time.sleep(0.2)
    cmd = [sys.executable, "-c", "from frontline.cli import main; main()", *args, *FLOW]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=checkout, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = proc.stdout.read() if proc.stdout else b""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    probe.stop.set()
    probe.join()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(out.decode()[-3000:])
    waits = probe.waits
    return wall, usage.ru_utime + usage.ru_stime, max(waits), sum(w for w in waits if w > 0.005)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--baseline", type=Path, required=True, help="the other checkout (e.g. main's)")
    ap.add_argument("--sizes", default="10000")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    print(f"load average at start: {os.getloadavg()}")
    for n in (int(s) for s in args.sizes.split(",")):
        company = build(n, "base")
        print(f"\n{n} employees (demo company, SQLite), as of {TODAY}")
        print(
            f"{'checkout':<10} {'command':<16} {'wall s':>7} {'CPU s':>7} {'other writer: longest write s':>30} {'total wait s':>13}"
        )
        for r in range(args.repeat):
            for label, checkout in (("baseline", args.baseline), ("this", ROOT)):
                restore(company, "imported")
                for cmd in (("plan", "--from", TODAY.isoformat()), ("pair", "--as-of", TODAY.isoformat())):
                    wall, cpu, longest, total = command(checkout, company, *cmd)
                    print(
                        f"{label:<10} {cmd[0] + f' #{r + 1}':<16} {wall:7.2f} {cpu:7.2f} {longest:30.2f} {total:13.2f}"
                    )
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
