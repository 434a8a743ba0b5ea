"""Fixed cost of every command that runs a job, against ``python -c pass`` and against the command's own work.

    .venv/bin/python bench/cli.py                       # embedded defaults only
    .venv/bin/python bench/cli.py --server --old-path   # also with a Prefect server, and the old path
    .venv/bin/python bench/cli.py --tree /tmp/old       # the code of another checkout (e.g. before a change)

Set-up (not timed): a temporary folder with its own database, outbox, policy (``frontline.example.toml``)
and ``PREFECT_HOME``; ``frontline init`` and the example roster (``examples/``). Then, per command, the
median over ``--repeat`` fresh processes of the real command with the product's own defaults (``roster
import``, ``plan``, ``pair``, ``surveys``, ``mail send``, ``digest send``; each is idempotent, so every
repetition does the same work): its wall time and its CPU time (user + system of the process, which
other processes' load does not inflate on a shared machine). Baselines measured in the same run:

* ``python -c pass`` (the interpreter alone) and ``frontline --help`` (the CLI's own imports);
* the command's own work: the same service calls made in an already warm process (no CLI, no job
  runner), so *fixed cost = command - own work* (both CPU);
* with ``--old-path``: the same commands with ``FRONTLINE_JOB_RUNNER=prefect`` (a real Prefect flow run in
  the command's process, starting Prefect's temporary server when no server is configured: what every
  command did before issue 14).

With ``--server`` a ``prefect server start`` on a free loopback port (its own ``PREFECT_HOME``) is started,
awaited (at most 300 s) and stopped at the end; the commands then run with ``PREFECT_API_URL`` set.
Prints figures, not pass/fail; the load average is printed first.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
EXAMPLES = ROOT / "examples"
CLI = [sys.executable, "-c", "import sys; from frontline.cli import main; sys.argv[0] = 'frontline'; main()"]

COMMANDS: dict[str, list[str]] = {
    "roster import": [
        "roster",
        "import",
        "--departments",
        str(EXAMPLES / "departments.csv"),
        "--employees",
        str(EXAMPLES / "employees.csv"),
        "--absences",
        str(EXAMPLES / "absences.csv"),
    ],
    "plan": ["plan"],
    "pair": ["pair"],
    "surveys": ["surveys"],
    "mail send": ["mail", "send"],
    "digest send": ["digest", "send"],
}

# The same work as each command, in a warm process: the service calls the job makes.
OWN_WORK = r"""
import sys, time, json
from frontline.core import clock
from frontline.core.policy import load_policy
from frontline.cli.common import open_database
from models import session_scope, get_engine
open_database()
policy = load_policy()
EX = {examples!r}

def roster():
    from frontline.people.roster import import_roster
    with session_scope() as s:
        import_roster(s, EX + "/departments.csv", EX + "/employees.csv", EX + "/absences.csv", actor="bench")

def plan():
    from frontline.rotations.service import plan_rotations
    with session_scope() as s:
        plan_rotations(s, policy, start=None, weeks=52, dry_run=False, actor="bench")

def pair():
    from frontline.mentors.service import pair_mentors
    with session_scope() as s:
        pair_mentors(s, policy, as_of=clock.today(), actor="bench")

def surveys():
    from frontline.mentors.surveys import queue_surveys
    with session_scope() as s:
        queue_surveys(s, clock.today(), actor="bench")

def mail():
    from frontline.mail.delivery import deliver_batch
    from frontline.mail.transport import transport_from_settings
    t = transport_from_settings()
    try:
        deliver_batch(get_engine(), t, batch_size=200)
    finally:
        t.close()

def digest():
    from frontline.digests.loading import all_department_ids, compute_themes
    from frontline.digests.queue import queue_digests
    from frontline.digests.weeks import last_completed_week
    week = last_completed_week()
    with session_scope() as s:
        ids = all_department_ids(s)
        themes = compute_themes(s, week, persist=True)
    with session_scope() as s:
        queue_digests(s, week, department_ids=ids, themes=themes)

work = {{"roster import": roster, "plan": plan, "pair": pair, "surveys": surveys, "mail send": mail,
        "digest send": digest}}
out = {{}}
for name, fn in work.items():
    fn()  # warm: imports and caches, as a long-running process has them
    times = []
    for _ in range({repeat}):
        t0 = time.process_time(); fn(); times.append(time.process_time() - t0)
    times.sort()
    out[name] = times[len(times) // 2]
print(json.dumps(out))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def timed(argv: list[str], env: dict[str, str], repeat: int) -> tuple[float, float]:
    """Median wall time and median CPU time (user + system of the child) over ``repeat`` runs."""
    walls, cpus = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=env["BENCH_DIR"], check=False)
        walls.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(argv[3:])} failed ({proc.returncode}): {(proc.stderr or proc.stdout)[-1500:]}")
    return statistics.median(walls), statistics.median(cpus)


def base_env(folder: Path, tree: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FRONTLINE_", "PREFECT_"))}
    env.update(
        BENCH_DIR=str(folder),
        PYTHONPATH=str(tree),
        FRONTLINE_DATABASE_URL=f"sqlite:///{folder / 'frontline.db'}",
        FRONTLINE_OUTBOX_DIR=str(folder / "outbox"),
        FRONTLINE_POLICY_PATH=str(folder / "frontline.toml"),
        FRONTLINE_SECRET_KEY="bench-secret-key-bench-secret-key",
        PREFECT_HOME=str(folder / "prefect-home"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_LOGGING_LEVEL="WARNING",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="600",  # the old path on a loaded machine
    )
    return env


def start_server(folder: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    server_env = dict(env, PREFECT_HOME=str(folder / "prefect-server-home"))
    proc = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=server_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    return proc, url
        except OSError:
            pass
        time.sleep(1)
    proc.terminate()
    raise SystemExit("the Prefect server did not become healthy within 300 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--server", action="store_true", help="also measure with a running Prefect server")
    parser.add_argument("--old-path", action="store_true", help="also measure FRONTLINE_JOB_RUNNER=prefect")
    parser.add_argument("--only", default="", help="comma-separated commands (default: all)")
    parser.add_argument("--tree", type=Path, default=ROOT, help="run the code of this checkout (default: this one)")
    args = parser.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(COMMANDS)

    folder = Path(tempfile.mkdtemp(prefix="frontline-bench-cli-"))
    server: subprocess.Popen[bytes] | None = None
    try:
        env = base_env(folder, args.tree.resolve())
        shutil.copyfile(ROOT / "frontline.example.toml", folder / "frontline.toml")
        for setup in (["init"], COMMANDS["roster import"]):
            done = subprocess.run([*CLI, *setup], env=env, cwd=folder, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise SystemExit(f"set-up {' '.join(setup[:2])} failed: {done.stderr[-2000:]}")
        print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (1, 5 min); code: {args.tree}")
        print(f"medians of {args.repeat} runs; wall s, CPU s (user + system); fixed = CPU - own work")

        _, python_pass = timed([sys.executable, "-c", "pass"], env, args.repeat)
        _, help_cpu = timed([*CLI, "--help"], env, args.repeat)
        own = subprocess.run(
            [sys.executable, "-c", OWN_WORK.format(examples=str(EXAMPLES), repeat=args.repeat)],
            env=env,
            cwd=folder,
            check=True,
            capture_output=True,
            text=True,
        )
        work: dict[str, float] = json.loads(own.stdout.strip().splitlines()[-1])
        print(f"CPU s: python -c pass {python_pass:.2f}; frontline --help {help_cpu:.2f}")

        modes: list[tuple[str, dict[str, str]]] = [("embedded defaults", env)]
        if args.old_path:
            modes.append(("old path (JOB_RUNNER=prefect)", dict(env, FRONTLINE_JOB_RUNNER="prefect")))
        if args.server:
            server, url = start_server(folder, env)
            modes.append(("Prefect server", dict(env, PREFECT_API_URL=url)))
            if args.old_path:
                modes.append(("server, old path", dict(env, PREFECT_API_URL=url, FRONTLINE_JOB_RUNNER="prefect")))

        header = f"{'command':<14} {'own work':>8}" + "".join(f" | {m[:33]:<33}" for m, _ in modes)
        print(header)
        print("-" * len(header))
        for name in names:
            cells = [timed([*CLI, *COMMANDS[name]], mode_env, args.repeat) for _, mode_env in modes]
            print(
                f"{name:<14} {work[name]:>7.3f}s"
                + "".join(
                    f" | {w:>5.2f} cpu {c:>5.2f} fixed {c - work[name]:>5.2f} {c / python_pass:>3.0f}x"
                    for w, c in cells
                )
            )
        print("each cell: wall s, CPU s, fixed CPU s, CPU / python -c pass")
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
