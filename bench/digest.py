"""Digests at scale (issue 14): the scheduled job and ``digest send --preview`` for many departments.

For each size (``--sizes``, default 250,500,1000 departments) a temporary SQLite database gets D
departments, two rotators each and O observations (default 50) addressed to every department by
rotators of any department, texts from the generated paraphrase set of ``bench/synthetic_observations.py``.
Then, with the product's defaults (``FRONTLINE_THEME_EMBEDDINGS`` as ``--embeddings`` says, see below):

* ``digest send --preview DIR`` as a whole command (a fresh ``frontline`` process: start-up, themes,
  load, build, render, write the files), wall seconds;
* the scheduled job as ``frontline digest send`` runs it (job ``send-digests`` in this process, without Prefect:
  themes once for the week, then batches of 50 departments: load, build, render with CSS inlined,
  compose, enqueue), seconds per phase, wall and CPU (measured by wrapping the module functions, so the
  same bench measures any checkout), and a hash of the outbox it wrote (the Date headers and the links'
  signature times frozen, multipart boundaries aside): with several ``--tree``, whether the checkouts
  queued byte-identical mail.

Each checkout given with ``--tree`` (repeatable; default this one) runs in its own process on its own
database built the same way (same seeds), so ``--tree /tmp/before --tree .`` prints the code before
and after a change side by side, measured in the same run. ``ms/dept`` and its ratio to the smallest
size show whether the cost per department stays flat (linear) as departments grow.

The sentence model (``--embeddings``) is off by default here: its cost is per new observation, paid once
when an observation is first grouped and then stored (bench/themes.py reports it); at 50,000 new texts
it would dominate everything else by hours on a loaded CPU.

``--profile FILE`` (one size, one tree) writes a cProfile of the scheduled job and the preview to FILE.

usage: python bench/digest.py [--sizes 250,500,1000] [--observations 50] [--tree PATH ...] [--profile FILE]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WEEK = "2027-W05"
MONDAY = datetime(2027, 2, 1, tzinfo=UTC)
FROZEN = MONDAY + timedelta(days=7, hours=6)  # the Date headers and link timestamps of the job's messages
BOUNDARY = re.compile(rb"={15}\d{19}==(?:\.\d+)?")  # a multipart boundary (random)
PHASES = ("themes", "load", "build", "render", "compose", "enqueue")


def _env(tmp: Path, embeddings: bool) -> dict[str, str]:
    return {
        "FRONTLINE_DATABASE_URL": f"sqlite:///{tmp / 'bench.db'}",
        "FRONTLINE_OUTBOX_DIR": str(tmp / "outbox"),
        "FRONTLINE_SECRET_KEY": "bench-secret",
        "FRONTLINE_BASE_URL": "https://frontline.example.com",
        "FRONTLINE_THEME_EMBEDDINGS": "true" if embeddings else "false",
    }


def setup(departments: int, per_department: int) -> int:
    from synthetic_observations import generate

    from models import Department, Employee, Observation, get_engine, init_db, session_scope

    engine = get_engine()
    init_db(engine)
    rng = random.Random(3)
    n_obs = departments * per_department
    items, _truth = generate(n_obs, seed=11)
    with session_scope(engine) as s:
        depts = [
            Department(name=f"Department {i:04d}", head_name=f"Head {i}", head_email=f"head{i}@example.com")
            for i in range(departments)
        ]
        s.add_all(depts)
        s.flush()
        people = [
            Employee(
                employee_id=f"e{d.id}-{k}",
                name=f"Rotator {d.id}-{k}",
                email=f"r{d.id}-{k}@example.com",
                department_id=d.id,
                hire_date=date(2020, 1, 1),
                timezone="UTC",
                country="DE",
            )
            for d in depts
            for k in range(2)
        ]
        s.add_all(people)
        s.flush()
        s.add_all(
            Observation(
                rotator_id=people[rng.randrange(len(people))].id,
                target_department_id=depts[i // per_department].id,
                text=item.text,
                product_area=item.product_area,
                category=item.category,
                impact=rng.randint(1, 5),
                urgent=rng.random() < 0.02,
                created_at=MONDAY + timedelta(seconds=rng.randrange(7 * 86400)),
            )
            for i, item in enumerate(items)
        )
    engine.dispose()
    return n_obs


def _timed(module: object, name: str, spent: dict[str, float], phase: str) -> None:
    """Wrap ``module.name`` so its wall time adds to ``spent[phase]`` and its CPU time to
    ``spent[phase + "_cpu"]`` (outermost call only)."""
    inner = getattr(module, name)
    depth = [0]

    def wrapper(*args, **kwargs):
        depth[0] += 1
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            return inner(*args, **kwargs)
        finally:
            depth[0] -= 1
            if depth[0] == 0:
                spent[phase] += time.perf_counter() - t0
                spent[phase + "_cpu"] += time.process_time() - c0

    setattr(module, name, wrapper)


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def worker(args: argparse.Namespace) -> None:
    """One size on one checkout (this process imports the checkout's code): prints one JSON line."""
    import flows  # noqa: F401 - the checkout's packages first (synthetic_observations puts this one on the path)
    import frontline  # noqa: F401
    import models  # noqa: F401

    tmp = Path(tempfile.mkdtemp(prefix="frontline-bench-digest-"))
    env = _env(tmp, args.embeddings)
    os.environ.update(env)
    t0 = time.perf_counter()
    n_obs = setup(args.departments, args.observations)
    result: dict[str, object] = {"setup": time.perf_counter() - t0, "observations": n_obs}

    # digest send --preview: the whole command in a fresh process, as a person runs it
    script = tmp / "frontline_cli.py"
    script.write_text("from frontline.cli import main\n\nmain()\n", encoding="utf-8")
    profile = ["-m", "cProfile", "-o", f"{args.profile}.preview"] if args.profile else []
    cmd = [sys.executable, *profile, str(script), "digest", "send", "--week", WEEK, "--preview", str(tmp / "preview")]
    t0, c0 = time.perf_counter(), _children_cpu()
    proc = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True, check=False)
    result["preview"] = time.perf_counter() - t0
    result["preview_cpu"] = _children_cpu() - c0
    if proc.returncode != 0:
        raise SystemExit(f"preview failed: {proc.stderr[-3000:]}")
    result["preview_files"] = len(list((tmp / "preview").glob("*.html")))

    # the scheduled job: flows.jobs.send_digests (the flow's body) with its phases timed; the clock of the
    # Date headers and of the links' signatures is frozen so that the outbox of every checkout can be
    # compared byte for byte (``outbox``: a hash of its keys and messages, multipart boundaries aside)
    from itsdangerous import TimestampSigner

    import frontline.digests.loading as loading
    import frontline.digests.queue as queue
    import frontline.mail.outbox as outbox
    from flows.runner import run_job

    outbox.utcnow = lambda: FROZEN  # type: ignore[attr-defined]
    TimestampSigner.get_timestamp = lambda self: int(FROZEN.timestamp())  # type: ignore[method-assign]
    spent = dict.fromkeys([*PHASES, *(f"{p}_cpu" for p in PHASES)], 0.0)
    _timed(loading, "compute_themes", spent, "themes")
    _timed(queue, "load_week", spent, "load")
    _timed(queue, "build_digest", spent, "build")
    _timed(queue, "render_digest", spent, "render")
    _timed(outbox, "compose", spent, "compose")
    for name in ("enqueue", "enqueue_many"):
        if hasattr(outbox, name):
            _timed(outbox, name, spent, "enqueue")
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    t0, c0 = time.perf_counter(), time.process_time()
    rows = run_job("send-digests", week=WEEK)
    result["job"] = time.perf_counter() - t0
    result["job_cpu"] = time.process_time() - c0
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(f"{args.profile}.job")
    result.update(spent)
    result["queued"] = sum(int(r["status"].split()[1]) for r in rows if r["status"].startswith("queued"))

    from sqlalchemy import func
    from sqlmodel import select

    from models import Observation, OutboundMessage, get_engine, session_scope

    with session_scope() as s:
        result["mail_mb"] = (s.exec(select(func.sum(func.length(OutboundMessage.mime)))).one() or 0) / 2**20
        result["themes_n"] = len(s.exec(select(func.distinct(Observation.theme))).all())
        outbox_hash = hashlib.sha256()
        rows = s.exec(select(OutboundMessage.idempotency_key, OutboundMessage.mime).order_by(OutboundMessage.id))
        for key, mime in rows:
            outbox_hash.update(key.encode() + b"\0" + BOUNDARY.sub(b"BOUNDARY", mime) + b"\0")
        result["outbox"] = outbox_hash.hexdigest()[:16]
    get_engine().dispose()
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(result))


def run(tree: Path, departments: int, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, str(HERE / "digest.py"), "--worker", "--departments", str(departments)]
    cmd += ["--observations", str(args.observations)] + (["--embeddings"] if args.embeddings else [])
    if args.profile:
        cmd += ["--profile", args.profile]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tree), str(HERE)])}
    proc = subprocess.run(cmd, env=env, cwd=tree, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"bench in {tree} at {departments} departments failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="250,500,1000", help="departments, comma-separated")
    ap.add_argument("--departments", type=int, default=1000, help=argparse.SUPPRESS)
    ap.add_argument("--observations", type=int, default=50, help="per department")
    ap.add_argument("--tree", type=Path, action="append", help="checkout to measure (repeatable); default this one")
    ap.add_argument("--embeddings", action="store_true", help="group themes with the sentence model too (slow)")
    ap.add_argument("--profile", help="write cProfile stats to FILE.job and FILE.preview (one size, one tree)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    trees = [t.resolve() for t in (args.tree or [ROOT])]
    load = os.getloadavg()[0]
    print(
        f"{args.observations} observations per department; themes {'with' if args.embeddings else 'without'} "
        f"the sentence model; load average {load:.1f} at the start"
    )
    cols = ["themes", "load", "build", "render", "compose", "enqueue", "job", "preview", "job_cpu", "preview_cpu"]
    print(f"{'checkout':24} {'depts':>6} " + " ".join(f"{c[:11]:>8}" for c in cols) + f" {'cpu ms/d':>8} {'ratio':>6}")
    first: dict[Path, float] = {}
    for size in sizes:
        outboxes = set()
        for tree in trees:
            r = run(tree, size, args)
            outboxes.add(r["outbox"])
            per = 1000 * (float(r["job_cpu"]) + float(r["preview_cpu"])) / size
            first.setdefault(tree, per)
            cells = " ".join(f"{float(r[c]):8.2f}" for c in cols)
            print(f"{str(tree)[-24:]:24} {size:6d} {cells} {per:8.2f} {per / first[tree]:6.2f}", flush=True)
            print(
                f"{'':31} setup {float(r['setup']):.1f} s, {r['queued']} queued ({float(r['mail_mb']):.1f} MB), "
                f"{r['preview_files']} previews, {r['themes_n']} themes, outbox {r['outbox']}; CPU s: "
                + ", ".join(f"{p} {float(r[p + '_cpu']):.2f}" for p in PHASES),
                flush=True,
            )
        if len(trees) > 1:
            print(f"{'':31} outboxes {'byte-identical' if len(outboxes) == 1 else 'DIFFER'} across checkouts")
    print(
        "seconds: themes/load/build/render/compose/enqueue are the scheduled job's phases, job = the whole "
        "job as `frontline digest send` runs it, preview = the whole `frontline digest send --preview` process "
        "(wall seconds; *_cpu and the phases' CPU s: CPU seconds of the same, steadier on a shared machine); "
        "outbox: hash of the job's outbox (Date and link times frozen, boundaries aside); cpu ms/d = (job_cpu + "
        "preview_cpu) per department, ratio = cpu ms/d against the smallest size (1.0 = linear)"
    )


if __name__ == "__main__":
    main()
