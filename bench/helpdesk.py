"""Helpdesk intake under load: the real app under uvicorn on loopback, signed Zendesk ticket events.

    .venv/bin/python bench/helpdesk.py [--events 600] [--clients 8] [--rotators 50] [--backends sqlite,postgres]

For each backend it seeds rotators on rotation this week (and agents who are not), starts the app
(``bench/intake.py``'s server: uvloop, httptools, one worker) and, with ``--clients`` threads:

1. **baseline**: as many ``GET /healthz`` requests as there will be events;
2. **events**: ``--events`` distinct ticket events (the recorded Zendesk payload with a new ticket id and
   assignee each; one in five assigned to an agent who is not an employee), each signed as Zendesk signs;
3. **retries**: every event delivered again (each must be answered ``duplicate``);
4. **check**: events stored = events sent, drafts = tickets of rotators, the rotators' contact counts add up
   to those tickets. Exit code 1 if the check fails. Figures, not pass/fail.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import os
import re
import shutil
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from intake import PG_URL, free_port, pct, start_server

SECRET = "bench-zendesk-secret-0123456789"
RECORDED = (ROOT / "tests" / "data" / "helpdesk" / "zendesk_ticket_solved.json").read_text()


def seed(url: str, tmp: Path, rotators: int) -> None:
    from frontline.core.settings import get_settings
    from models import Department, Employee, Rotation, get_engine, init_db, session_scope

    policy = tmp / "frontline.toml"
    policy.write_text(
        (ROOT / "frontline.example.toml").read_text()
        + f'\n[helpdesk.sources.zendesk]\nkind = "zendesk"\nsecret = "{SECRET}"\ntag_areas = {{ export = "export" }}\n'
    )
    os.environ.update(
        {"FRONTLINE_DATABASE_URL": url, "FRONTLINE_POLICY_PATH": str(policy), "FRONTLINE_OUTBOX_DIR": str(tmp / "o")}
    )
    os.environ.setdefault("FRONTLINE_SECRET_KEY", "bench-secret-key")
    get_settings.cache_clear()
    engine = get_engine(url)
    init_db(engine)
    today = date.today()
    monday = today - timedelta(days=today.weekday())
    with session_scope(engine) as session:
        dept = Department(name="Support", head_name="Head", head_email="head@example.com")
        session.add(dept)
        session.flush()
        for i in range(rotators):
            e = Employee(
                employee_id=f"H{i:04d}",
                name=f"Rotator {i}",
                email=f"h{i:04d}@example.com",
                department_id=dept.id,
                hire_date=date(2021, 1, 1),
                timezone="UTC",
                country="DE",
            )
            session.add(e)
            session.flush()
            session.add(
                Rotation(
                    employee_id=e.id,
                    start=monday - timedelta(days=7),
                    end=monday + timedelta(days=13),
                    kind="cycle",
                    status="invited",
                    due=monday,
                )
            )
    engine.dispose()


def event(i: int, rotators: int, at: datetime) -> tuple[bytes, bool]:
    """Event ``i``: a new ticket; every fifth one assigned to an agent who is not an employee."""
    ours = i % 5 != 0
    email = f"h{i % rotators:04d}@example.com" if ours else f"agent{i}@outsourcer.example"
    body = RECORDED.replace('"48213"', f'"{100000 + i}"').replace("Rita.Rotator@example.com", email)
    return re.sub(r"2026-12-03T\d\d:\d\d:\d\dZ", at.strftime("%Y-%m-%dT%H:%M:%SZ"), body).encode(), ours


def signed(body: bytes) -> dict[str, str]:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    sig = base64.b64encode(hmac.new(SECRET.encode(), stamp.encode() + body, hashlib.sha256).digest()).decode()
    return {
        "Content-Type": "application/json",
        "X-Zendesk-Webhook-Signature": sig,
        "X-Zendesk-Webhook-Signature-Timestamp": stamp,
    }


def phase(base: str, clients: int, jobs: list, post: bool) -> tuple[float, list[float], list[tuple[int, str]]]:
    local = __import__("threading").local()

    def one(body: bytes | None) -> tuple[float, int, str]:
        if not hasattr(local, "http"):
            local.http = httpx.Client(base_url=base, timeout=60)
        t0 = time.perf_counter()
        try:
            if body is None:
                r = local.http.get("/healthz")
            else:
                r = local.http.post("/api/helpdesk/zendesk", content=body, headers=signed(body))
        except httpx.TransportError as exc:
            local.http = httpx.Client(base_url=base, timeout=60)
            return time.perf_counter() - t0, 599, repr(exc)
        is_json = r.headers.get("content-type", "").startswith("application/json")
        result = (r.json().get("result", "") if is_json else r.text[:200]) if post else ""
        return time.perf_counter() - t0, r.status_code, result

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        out = list(pool.map(one, jobs))
    wall = time.perf_counter() - start
    return wall, [o[0] for o in out], [(o[1], o[2]) for o in out]


def run(backend: str, args: argparse.Namespace) -> bool:
    from sqlalchemy.engine import make_url
    from sqlmodel import func, select

    from models import ContactCount, HelpdeskEvent, ObservationDraft, get_engine, session_scope
    from models.db import _engine_for, normalise_url

    tmp = Path(tempfile.mkdtemp(prefix="bench-helpdesk-"))
    schema = None
    if backend == "sqlite":
        url = f"sqlite:///{tmp / 'bench.db'}"
    else:
        import psycopg

        schema = f"b_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'create schema "{schema}"')
        url = (
            make_url(normalise_url(PG_URL))
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
    seed(url, tmp, args.rotators)
    _engine_for.cache_clear()
    port = free_port()
    proc = start_server(port, 1)
    base = f"http://127.0.0.1:{port}"
    try:
        at = datetime.now(UTC) - timedelta(hours=1)
        events = [event(i, args.rotators, at) for i in range(args.events)]
        wall0, lat0, base_answers = phase(base, args.clients, [None] * args.events, post=False)
        wall1, lat1, answers = phase(base, args.clients, [b for b, _ in events], post=True)
        wall2, lat2, retries = phase(base, args.clients, [b for b, _ in events], post=True)
    finally:
        proc.terminate()
        out = proc.communicate(timeout=10)[0].decode(errors="replace")
    errors = [a for a in answers + retries if a[0] >= 500]
    errors += [a for a in base_answers if a[0] != 200]
    if errors:
        print(f"{len(errors)} server errors, e.g. {errors[0]}; server log tail:\n{out[-3000:]}")
    ours = sum(1 for _, o in events if o)
    engine = get_engine(url)
    with session_scope(engine) as s:
        stored = s.exec(select(func.count()).select_from(HelpdeskEvent)).one()
        drafts = s.exec(select(func.count()).select_from(ObservationDraft)).one()
        contacts = s.exec(select(func.coalesce(func.sum(ContactCount.contacts), 0))).one()
    engine.dispose()
    _engine_for.cache_clear()
    if schema:
        import psycopg

        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'drop schema "{schema}" cascade')
    shutil.rmtree(tmp, ignore_errors=True)
    ok = (
        stored == args.events
        and drafts == ours
        and contacts == ours
        and sorted(a[1] for a in answers) == sorted(["recorded"] * ours + ["ignored"] * (args.events - ours))
        and all(r == (200, "duplicate") for r in retries)
    )
    print(f"\n{backend}: {args.events} events, {args.clients} clients, {args.rotators} rotators")
    for name, wall, lat in (("GET /healthz", wall0, lat0), ("events", wall1, lat1), ("retries", wall2, lat2)):
        print(
            f"  {name:13s} {len(lat) / wall:7.0f} req/s   p50 {pct(lat, 0.5) * 1000:6.1f} ms   "
            f"p99 {pct(lat, 0.99) * 1000:6.1f} ms"
        )
    print(
        f"  stored {stored} events, {drafts} drafts, {contacts} contacts (expected {ours}): {'ok' if ok else 'WRONG'}"
    )
    print(f"  load average {os.getloadavg()[0]:.1f}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=600)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rotators", type=int, default=50)
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    results = [run(b, args) for b in args.backends.split(",")]
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
