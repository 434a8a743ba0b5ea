"""SCIM request latency on a company of N provisioned users (SQLite unless ``--database-url``; the app
in-process through Starlette's TestClient; no network):

    .venv/bin/python bench/scim.py [--users 2000] [--repeat 30] [--database-url postgresql://...]

It provisions ``--users`` SCIM Users (each an employee) through ``POST /scim/v2/Users`` and then times, per
request (median and p90 of ``--repeat``, and the median CPU time):

* **baseline**: ``GET /healthz`` (the app stack with no work);
* ``GET /Users?filter=userName eq "..."`` (what Okta and Entra ID send before each create: indexed column);
* ``GET /Users?filter=title eq "..."`` (no column for it: every User is read and matched);
* ``GET /Users?count=100`` (a page of the unfiltered list);
* ``POST /Users`` (a new hire), ``PATCH`` a title, ``PATCH active false`` (a leaver, rotations cancelled).

Figures, not pass/fail.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

ENT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def timed(fn: Callable[[int], object], repeat: int) -> tuple[float, float, float]:
    """Median and p90 wall ms, and median CPU ms of the whole process (the app runs in it; on a shared,
    loaded machine CPU time moves far less than wall time)."""
    times, cpu = [], []
    for i in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn(i)
        times.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.9 * (len(times) - 1))], statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--database-url", help="an empty database (default: a new SQLite file)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="frontline-scim-bench-"))
    os.environ.update(
        FRONTLINE_DATABASE_URL=args.database_url or f"sqlite:///{work / 'f.db'}",
        FRONTLINE_POLICY_PATH=str(work / "frontline.toml"),
        FRONTLINE_SECRET_KEY="bench-secret-key-not-for-production",
        FRONTLINE_THEME_EMBEDDINGS="false",
    )
    shutil.copyfile(ROOT / "frontline.example.toml", work / "frontline.toml")
    from fastapi.testclient import TestClient
    from test_scim import company, user

    from frontline.people.scim import create_token
    from frontline.web.app import create_app
    from models import get_engine, init_db, session_scope

    engine = get_engine(os.environ["FRONTLINE_DATABASE_URL"])
    init_db(engine)
    with session_scope(engine) as session:
        company(session, staff=0)
        _row, secret = create_token(session, "bench")
    client = TestClient(create_app())
    client.headers["Authorization"] = f"Bearer {secret}"
    ct = {"Content-Type": "application/scim+json"}
    start = time.perf_counter()
    ids = []
    for i in range(args.users):
        r = client.post("/scim/v2/Users", json={**user(f"u{i}@example.com", f"U{i}"), "title": f"t{i}"}, headers=ct)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    seeded = time.perf_counter() - start
    print(f"provisioned {args.users} users in {seeded:.1f} s ({seeded / args.users * 1000:.1f} ms each)")
    n = args.users

    rows = [
        ("GET /healthz (baseline)", lambda i: client.get("/healthz")),
        (
            "GET userName eq (indexed)",
            lambda i: client.get("/scim/v2/Users", params={"filter": f'userName eq "u{(i * 7) % n}@example.com"'}),
        ),
        (
            "GET title eq (every user read)",
            lambda i: client.get("/scim/v2/Users", params={"filter": f'title eq "t{(i * 7) % n}"'}),
        ),
        ("GET count=100 (first page)", lambda i: client.get("/scim/v2/Users", params={"count": "100"})),
        (
            "POST /Users (a new hire)",
            lambda i: client.post("/scim/v2/Users", json=user(f"new{i}@example.com", f"N{i}"), headers=ct),
        ),
        (
            "PATCH title",
            lambda i: client.patch(
                f"/scim/v2/Users/{ids[i]}",
                json={"schemas": [PATCH], "Operations": [{"op": "replace", "path": "title", "value": f"x{i}"}]},
                headers=ct,
            ),
        ),
        (
            "PATCH active false (a leaver)",
            lambda i: client.patch(
                f"/scim/v2/Users/{ids[-1 - i]}",
                json={"schemas": [PATCH], "Operations": [{"op": "Replace", "path": "active", "value": "False"}]},
                headers=ct,
            ),
        ),
    ]
    print(f"{'request':34} {'median ms':>10} {'p90 ms':>8} {'CPU ms':>8}")
    for name, fn in rows:
        median, p90, cpu = timed(fn, args.repeat)
        print(f"{name:34} {median:10.1f} {p90:8.1f} {cpu:8.1f}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
