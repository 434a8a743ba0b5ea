"""Load test of observation intake: the real app under uvicorn on loopback, N concurrent clients.

    .venv/bin/python bench/intake.py [--duration 10] [--clients 32] [--sqlite-workers 1] [--pg-workers 1]
        [--backends sqlite,postgres]

For each backend (SQLite file in WAL mode; PostgreSQL at FRONTLINE_TEST_PG_URL, in a throw-away
schema) it seeds a company, starts ``uvicorn frontline.web.app:create_app`` in a subprocess and:

1. **baseline**: ``GET /healthz`` at the same concurrency for the same time (what the server stack
   does with no work);
2. **intake**: every client posts observations to ``POST /api/observations`` (integration token,
   rotators round-robin, a unique ``client_request_id`` each, some with fake PII) for ``--duration`` s;
3. **retries**: re-posts a sample of already-acknowledged requests (must be replays, 200);
4. **count check**: the set of ``client_request_id`` stored equals the set the server acknowledged
   with 201 (no lost and no duplicated submissions).

It prints requests/s, p50/p99 latency of each phase and the intake/baseline ratio. Figures, not
pass/fail (the exit code is non-zero only if the count check fails).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PG_URL = os.environ.get("FRONTLINE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
TEXTS = [
    "Checkout shows the wrong VAT for Austrian customers",
    "Customer {email} never got the password reset mail",
    "Export to CSV times out for accounts with more than 10k rows",
    "Card {card} was charged twice after a timeout",
    "The mobile app logs people out every morning",
    "Delivery promised in 2 days took 9; customer called from {phone}",
    "Pricing page and invoice disagree on the yearly discount",
    "Onboarding checklist skips the bank details step",
]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed(url: str, tmp: Path, rotators: int) -> tuple[str, list[str]]:
    """Migrate, write a policy without a practical rate limit, create departments, rotators, a token."""
    from datetime import date

    from frontline.core.settings import get_settings
    from frontline.observations.api_tokens import create_api_token
    from models import Department, Employee, get_engine, init_db, session_scope

    policy = tmp / "frontline.toml"
    text = (ROOT / "frontline.example.toml").read_text()
    policy.write_text(text.replace("submissions_per_hour = 60", "submissions_per_hour = 1000000"))
    os.environ.update(
        {
            "FRONTLINE_DATABASE_URL": url,
            "FRONTLINE_POLICY_PATH": str(policy),
            "FRONTLINE_OUTBOX_DIR": str(tmp / "outbox"),
        }
    )
    os.environ.setdefault("FRONTLINE_SECRET_KEY", "bench-secret-key")
    get_settings.cache_clear()
    engine = get_engine(url)
    init_db(engine)
    with session_scope(engine) as session:
        depts = []
        for name in ("Support", "Engineering", "Finance", "Product", "Operations"):
            d = Department(
                name=name,
                head_name=f"{name} Head",
                head_email=f"head.{name.lower()}@example.com",
                digest_recipients=[f"{name.lower()}-leads@example.com"],
            )
            session.add(d)
            depts.append(d)
        session.flush()
        ids = []
        for i in range(rotators):
            eid = f"B{i:05d}"
            session.add(
                Employee(
                    employee_id=eid,
                    name=f"Bench Person {i}",
                    email=f"{eid.lower()}@example.com",
                    department_id=depts[i % len(depts)].id,
                    hire_date=date(2021, 1, 1),
                    timezone="UTC",
                    country="DE",
                )
            )
            ids.append(eid)
        session.flush()
        _row, secret = create_api_token(session, "bench")
    engine.dispose()
    return secret, ids


def start_server(port: int, workers: int) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "frontline.web.app:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    for opt, mod in (("--loop", "uvloop"), ("--http", "httptools")):
        try:
            __import__(mod)
            cmd += [opt, mod]
        except ImportError:
            pass
    proc = subprocess.Popen(cmd, cwd=ROOT, env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"uvicorn exited:\n{proc.stdout.read().decode()}")
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("uvicorn did not start within 60 s")


def server_cpu_seconds(pid: int) -> float:
    """User+system CPU seconds of the server process and its worker processes (Linux /proc)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{p}/task").iterdir():
                children = (task / "children").read_text().split()
                todo.extend(int(c) for c in children)
        except (OSError, ValueError, IndexError):
            continue
    return total


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


class RawClient:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams. The load generator shares the
    machine's cores with the server, so it must cost little per request (httpx costs about as much
    CPU per request as the server's whole hot path; it is used for the correctness phases)."""

    def __init__(self, host: str, port: int, headers: dict[str, str]):
        self.host, self.port = host, port
        self.extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.reader = self.writer = None

    async def request(self, method: str, path: str, payload) -> tuple[int, bytes]:
        import json

        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        body = json.dumps(payload).encode() if payload is not None else b""
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n{self.extra}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        data = await self.reader.readexactly(length) if length else b""
        return status, data

    async def close(self):
        if self.writer is not None:
            self.writer.close()


async def run_phase(base: str, clients: int, duration: float, make_request, headers=None) -> dict:
    host, port = base.removeprefix("http://").split(":")
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    acked: list[str] = []
    errors = 0
    stop = time.perf_counter() + duration

    async def worker(n: int):
        nonlocal errors
        client = RawClient(host, int(port), headers or {})
        seq = 0
        try:
            while time.perf_counter() < stop:
                seq += 1
                method, path, payload, crid = make_request(n, seq)
                t0 = time.perf_counter()
                try:
                    status, _body = await client.request(method, path, payload)
                except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                    errors += 1
                    await client.close()
                    client = RawClient(host, int(port), headers or {})
                    continue
                latencies.append(time.perf_counter() - t0)
                statuses[status] = statuses.get(status, 0) + 1
                if crid and status == 201:
                    acked.append(crid)
        finally:
            await client.close()

    t_start, cpu_start = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker(i) for i in range(clients)))
    elapsed, cpu = time.perf_counter() - t_start, time.process_time() - cpu_start
    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": pct(latencies, 0.5) * 1000,
        "client_cpu_ms": cpu * 1000 / max(1, len(latencies)),
        "client_cpu_share": cpu / elapsed,
        "p99_ms": pct(latencies, 0.99) * 1000,
        "statuses": statuses,
        "errors": errors,
        "acked": acked,
    }


def bench_backend(backend: str, args) -> bool:
    from models.db import _engine_for

    tmp = Path(tempfile.mkdtemp(prefix=f"frontline-bench-{backend}-"))
    schema = None
    if backend == "sqlite":
        url = f"sqlite:///{tmp / 'bench.db'}"
    else:
        import psycopg
        from sqlalchemy.engine import make_url

        from models.db import normalise_url

        schema = f"bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'create schema "{schema}"')
        url = (
            make_url(normalise_url(PG_URL))
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
    proc = None
    try:
        secret, rotators = seed(url, tmp, args.rotators)
        _engine_for.cache_clear()
        port = free_port()
        workers = args.sqlite_workers if backend == "sqlite" else args.pg_workers
        proc = start_server(port, workers)
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {secret}"}
        run = uuid.uuid4().hex[:6]
        areas = ["billing", "checkout", "export", "onboarding", "mobile app", "shipping", "account"]

        def post(n: int, seq: int):
            crid = f"bench-{run}-{n}-{seq}"
            text = random.choice(TEXTS).format(
                email=f"c{seq}@example.com", card="4111 1111 1111 1111", phone="+44 20 7946 0958"
            )
            body = {
                "employee_id": rotators[(n * 7919 + seq) % len(rotators)],
                "text": text,
                "impact": 1 + seq % 5,
                "customer_count": seq % 4,
                "product_area": areas[seq % len(areas)],
                "category": "bug",
                "client_request_id": crid,
            }
            return "POST", "/api/observations", body, crid

        async def main():
            # warm-up (connections, first-request imports) not measured
            await run_phase(base, args.clients, 1.0, lambda n, s: ("GET", "/healthz", None, None))
            baseline = await run_phase(base, args.clients, args.duration, lambda n, s: ("GET", "/healthz", None, None))
            async with httpx.AsyncClient(base_url=base, headers=headers) as http:
                warm = post(0, 0)[2]
                warm["client_request_id"] = f"warmup-{run}"
                await http.post("/api/observations", json=warm)  # warm the hot path (not counted)
            cpu0, load0 = server_cpu_seconds(proc.pid), os.getloadavg()[0]
            spy = None
            if args.profile:  # sample the server during the intake phase (py-spy, a dev-only tool)
                spy = subprocess.Popen(
                    [
                        str(Path(sys.executable).parent / "py-spy"),
                        "record",
                        "-p",
                        str(proc.pid),
                        "--subprocesses",
                        "--nonblocking",
                        "-d",
                        str(int(args.duration)),
                        "-r",
                        "250",
                        "-f",
                        "raw",
                        "-o",
                        f"{args.profile}.{backend}.txt",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.STDOUT,
                )
            intake = await run_phase(base, args.clients, args.duration, post, headers)
            if spy is not None:
                spy.wait(30)
            intake["server_cpu_ms"] = (server_cpu_seconds(proc.pid) - cpu0) * 1000 / max(1, intake["requests"])
            intake["load"] = (load0, os.getloadavg()[0])
            sample = random.sample(intake["acked"], min(200, len(intake["acked"])))
            replay_statuses: dict[int, int] = {}
            async with httpx.AsyncClient(base_url=base, headers=headers) as http:
                for crid in sample:
                    n, seq = map(int, crid.rsplit("-", 2)[1:])
                    body = post(n, seq)[2]
                    body["client_request_id"] = crid
                    r = await http.post("/api/observations", json=body)
                    replay_statuses[r.status_code] = replay_statuses.get(r.status_code, 0) + 1
            return baseline, intake, replay_statuses

        baseline, intake, replays = asyncio.run(main())
        from sqlmodel import select

        from models import Observation, get_engine, session_scope

        with session_scope(get_engine(url)) as session:
            stored = session.exec(
                select(Observation.client_request_id).where(Observation.client_request_id.like(f"bench-{run}-%"))
            ).all()
        acked = intake["acked"]
        lost = set(acked) - set(stored)
        extra = set(stored) - set(acked)
        dupes = len(stored) - len(set(stored))
        ok = not lost and not extra and not dupes and set(replays) <= {200}
        print(f"\n== {backend} ({workers} uvicorn worker(s), {args.clients} clients, {args.duration:.0f} s) ==")
        print(
            f"baseline GET /healthz : {baseline['rps']:8.0f} req/s  p50 {baseline['p50_ms']:6.1f} ms  "
            f"p99 {baseline['p99_ms']:6.1f} ms  statuses {baseline['statuses']}"
        )
        print(
            f"POST /api/observations: {intake['rps']:8.0f} req/s  p50 {intake['p50_ms']:6.1f} ms  "
            f"p99 {intake['p99_ms']:6.1f} ms  statuses {intake['statuses']}  client errors {intake['errors']}"
        )
        print(f"intake / baseline     : {intake['rps'] / baseline['rps']:.2f} of the no-work request rate")
        print(
            f"server CPU per intake request: {intake['server_cpu_ms']:.2f} ms (=> about "
            f"{1000 / intake['server_cpu_ms']:.0f} req/s per free core); machine load average during intake "
            f"{intake['load'][0]:.1f} -> {intake['load'][1]:.1f} on {os.cpu_count()} cores"
        )
        print(
            f"load generator CPU per request: baseline {baseline['client_cpu_ms']:.2f} ms, intake "
            f"{intake['client_cpu_ms']:.2f} ms ({intake['client_cpu_share']:.0%} of a core during intake); server CPU "
            f"during intake {intake['server_cpu_ms'] * intake['rps'] / 1000:.0%} of a core"
        )
        print(f"retries of {sum(replays.values())} acknowledged requests (httpx): statuses {replays}")
        print(
            f"count check: acknowledged {len(acked)}, stored {len(stored)}, lost {len(lost)}, "
            f"not acknowledged but stored {len(extra)}, duplicated {dupes} -> {'OK' if ok else 'FAILED'}"
        )
        return ok
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        from models.db import get_engine

        get_engine(url).dispose()  # close this process's connections before dropping the schema
        _engine_for.cache_clear()
        if schema:
            import psycopg

            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f'drop schema "{schema}" cascade')
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measured phase")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients")
    parser.add_argument(
        "--sqlite-workers",
        type=int,
        default=1,
        help="uvicorn workers on SQLite (one writer process avoids cross-process lock waits)",
    )
    parser.add_argument(
        "--pg-workers",
        type=int,
        default=1,
        help="uvicorn workers on PostgreSQL (one group-commit writer per process; 1 is best on 2 cores)",
    )
    parser.add_argument("--rotators", type=int, default=200)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument(
        "--profile",
        metavar="PREFIX",
        help="record the server with py-spy during intake into PREFIX.<backend>.txt (collapsed stacks)",
    )
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPU(s); python {sys.version.split()[0]}; load generator in this process")
    results = [bench_backend(b.strip(), args) for b in args.backends.split(",") if b.strip()]
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
