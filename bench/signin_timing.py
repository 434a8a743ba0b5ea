"""Sign-in timing: does the time to answer ``POST /console/signin`` tell whether an address has an account?

Serves the app with a real uvicorn on loopback (in this process, a temporary SQLite database or
``--database-url``), one HR admin, and posts the sign-in form N times for the admin's address and N
times for an address nobody has, interleaved, each on a new connection. The rate limits are lifted for
the run (otherwise the known address would hit its limit of 5 and take the short path). Prints the
median and 90th percentile per kind and their difference; the baseline is the unknown address in the
same run. Run it on another checkout (PYTHONPATH) to compare.

usage: python bench/signin_timing.py [--requests 200] [--database-url postgresql://...]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=200, help="per kind")
    ap.add_argument("--database-url", default=None)
    ap.add_argument(
        "--gap",
        type=float,
        default=0.3,
        help="seconds between requests (the after-answer work of the previous one ends)",
    )
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="frontline-bench-signin-"))
    os.environ.update(
        {
            "FRONTLINE_DATABASE_URL": args.database_url or f"sqlite:///{tmp / 'frontline.db'}",
            "FRONTLINE_OUTBOX_DIR": str(tmp / "outbox"),
            "FRONTLINE_SECRET_KEY": "bench-secret-key",
            "FRONTLINE_POLICY_PATH": str(Path(__file__).resolve().parent.parent / "frontline.example.toml"),
        }
    )
    import httpx
    import uvicorn

    from frontline.access import signin
    from frontline.access.accounts import add_hr
    from frontline.web.app import create_app
    from models import init_db, session_scope

    for name in ("SIGNIN_REQUESTS_PER_ADDRESS", "SIGNIN_REQUESTS_PER_IP", "SIGNIN_REQUESTS_PER_15_MIN"):
        if hasattr(signin, name):  # lift the limits (this checkout's names)
            setattr(signin, name, 10**9)
    init_db()
    with session_scope() as session:
        add_hr(session, "hr@example.com", actor="bench")
    port = 8765
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, headers={"Connection": "close"}) as http:
        token = re.search(r'name="csrf_token" value="([^"]+)"', http.get("/console/signin").text).group(1)
        times: dict[str, list[float]] = {"known": [], "unknown": []}
        cpu = time.process_time()
        started = time.perf_counter()
        for i in range(args.requests * 2 + 20):
            kind = "known" if i % 2 == 0 else "unknown"
            email = "hr@example.com" if kind == "known" else f"nobody{i}@example.com"
            t0 = time.perf_counter()
            r = http.post("/console/signin", data={"email": email, "csrf_token": token})
            elapsed = time.perf_counter() - t0
            assert r.status_code == 200, r.status_code
            if i >= 20:  # the first ones warm up caches
                times[kind].append(elapsed * 1000)
            time.sleep(args.gap)  # with a short gap, the previous request's after-answer work overlaps this one
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu
    server.should_exit = True
    thread.join(10)
    print(
        f"load: {os.getloadavg()[0]:.2f}  requests: {args.requests} per kind, gap {args.gap} s  "
        f"wall {wall:.1f} s, CPU {cpu:.1f} s"
    )
    for kind, values in times.items():
        values.sort()
        p90 = values[int(len(values) * 0.9)]
        print(f"{kind:8s} median {statistics.median(values):6.2f} ms   p90 {p90:6.2f} ms")
    diff = statistics.median(times["known"]) - statistics.median(times["unknown"])
    print(f"known - unknown (median): {diff:+.2f} ms")


if __name__ == "__main__":
    main()
