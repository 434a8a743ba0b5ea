"""Digest throughput: render and queue digests for many departments.

Builds a temporary SQLite database with D departments (default 1,000), two rotators each and O
observations (default 50) addressed to every department by rotators of other departments, texts from
the generated paraphrase set of ``bench/synthetic_observations.py``. Then, as the ``send_digests`` flow does (without
Prefect): themes once for the week, then ``queue_digests`` per batch of 50 departments (render HTML
with CSS inlined + text twin, compose, write to the outbox).

Prints seconds and MB of mail, and in the same run two baselines that skip work: rendering the same
digests without CSS inlining, and a plain-text-only message (no HTML part), neither written to the DB.

usage: python bench/digest.py [--departments 1000] [--observations 50]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

WEEK = "2027-W05"
MONDAY = datetime(2027, 2, 1, tzinfo=UTC)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--departments", type=int, default=1000)
    ap.add_argument("--observations", type=int, default=50, help="per department")
    ap.add_argument("--embeddings", action="store_true", help="group themes with the sentence model too")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="frontline-bench-digest-"))
    os.environ.update(
        {
            "FRONTLINE_DATABASE_URL": f"sqlite:///{tmp / 'bench.db'}",
            "FRONTLINE_OUTBOX_DIR": str(tmp / "outbox"),
            "FRONTLINE_SECRET_KEY": "bench-secret",
            "FRONTLINE_BASE_URL": "https://frontline.example.com",
            # Rendering and queueing at scale; the sentence model's cost is per new observation, paid once
            # (bench/themes.py reports it). --embeddings measures the full grouping (slow on a loaded CPU).
            "FRONTLINE_THEME_EMBEDDINGS": "true" if args.embeddings else "false",
        }
    )
    from sqlalchemy import func
    from sqlmodel import select
    from synthetic_observations import generate

    from frontline.digests.content import build_digest
    from frontline.digests.loading import compute_themes, load_week
    from frontline.digests.queue import queue_digests
    from frontline.digests.render import SIZE_BUDGET, render_digest
    from frontline.mail.outbox import compose
    from models import Department, Employee, Observation, OutboundMessage, get_engine, init_db, session_scope

    engine = get_engine()
    init_db(engine)
    rng = random.Random(3)
    n_obs = args.departments * args.observations
    items, _truth = generate(n_obs, seed=11)
    t0 = time.perf_counter()
    with session_scope(engine) as s:
        depts = [
            Department(name=f"Department {i:04d}", head_name=f"Head {i}", head_email=f"head{i}@example.com")
            for i in range(args.departments)
        ]
        s.add_all(depts)
        s.flush()
        people = []
        for d in depts:
            for k in range(2):
                people.append(
                    Employee(
                        employee_id=f"e{d.id}-{k}",
                        name=f"Rotator {d.id}-{k}",
                        email=f"r{d.id}-{k}@example.com",
                        department_id=d.id,
                        hire_date=date(2020, 1, 1),
                        timezone="UTC",
                        country="DE",
                    )
                )
        s.add_all(people)
        s.flush()
        obs = []
        for i, item in enumerate(items):
            target = depts[i // args.observations]
            rotator = people[rng.randrange(len(people))]
            obs.append(
                Observation(
                    rotator_id=rotator.id,
                    target_department_id=target.id,
                    text=item.text,
                    product_area=item.product_area,
                    category=item.category,
                    impact=rng.randint(1, 5),
                    urgent=rng.random() < 0.02,
                    created_at=MONDAY + timedelta(seconds=rng.randrange(7 * 86400)),
                )
            )
        s.add_all(obs)
    print(f"setup: {args.departments} departments, {n_obs} observations in {time.perf_counter() - t0:.1f} s")

    t0 = time.perf_counter()
    with session_scope(engine) as s:
        themes = compute_themes(s, WEEK)
    t_themes = time.perf_counter() - t0
    ids = list(range(1, args.departments + 1))
    t0 = time.perf_counter()
    queued = 0
    for i in range(0, len(ids), 50):
        with session_scope(engine) as s:
            queued += sum(o.queued for o in queue_digests(s, WEEK, department_ids=ids[i : i + 50], themes=themes))
    t_queue = time.perf_counter() - t0
    with session_scope(engine) as s:
        total_bytes = s.exec(select(func.sum(func.length(OutboundMessage.mime)))).one()
        largest = s.exec(select(func.max(func.length(OutboundMessage.mime)))).one()

    # Baselines on the same content (digests built once, outside the timing)
    with session_scope(engine) as s:
        data = load_week(s, WEEK, themes=themes)
    contents = [build_digest(data, d) for d in data.departments.values()]
    t0 = time.perf_counter()
    raw_bytes = 0
    for c in contents:
        r = render_digest(c, f"head{c.department_id}@example.com", inline=False)
        raw_bytes += len(compose(to="x@example.com", subject=r.subject, text=r.text, html=r.html).as_bytes())
    t_noinline = time.perf_counter() - t0
    t0 = time.perf_counter()
    text_bytes = 0
    for c in contents:
        r = render_digest(c, f"head{c.department_id}@example.com", inline=False)
        text_bytes += len(compose(to="x@example.com", subject=r.subject, text=r.text).as_bytes())
    t_text = time.perf_counter() - t0
    # (the text-only baseline still renders the HTML template inside render_digest; subtract nothing, be conservative)

    mb = 1024 * 1024
    print(f"themes for the week: {t_themes:.1f} s ({len(set(themes.values()))} themes)")
    print(f"{'path':58} {'seconds':>8} {'MB mail':>8} {'ms/dept':>8}")
    print(
        f"{'frontline: load + render + inline CSS + compose + enqueue':58} {t_queue:8.1f} {total_bytes / mb:8.1f} "
        f"{1000 * t_queue / args.departments:8.1f}"
    )
    print(
        f"{'baseline: render + compose, no CSS inlining, no DB':58} {t_noinline:8.1f} {raw_bytes / mb:8.1f} "
        f"{1000 * t_noinline / args.departments:8.1f}"
    )
    print(
        f"{'baseline: plain-text-only message, no DB':58} {t_text:8.1f} {text_bytes / mb:8.1f} "
        f"{1000 * t_text / args.departments:8.1f}"
    )
    print(
        f"queued {queued} digests; largest message {largest / 1024:.1f} KB (HTML part capped at "
        f"{SIZE_BUDGET // 1000} KB); full path = {t_queue / t_noinline:.2f}x the no-inlining render time, "
        f"{total_bytes / raw_bytes:.2f}x its bytes"
    )
    engine.dispose()
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
