"""Production set-up, for real: a ``prefect server`` on loopback with its database on PostgreSQL, the
deployments of ``prefect.yaml`` (``prefect deploy --all``), a process worker on ``frontline-pool``, and a
Frontline database on PostgreSQL. Triggers the roster import deployment, lets the import's
``frontline.employee.hired`` event trigger the onboarding deployment, emits one more hire event from the
CLI path, and checks the outcomes in the Frontline database. Stops everything it started.

No ``prefect_test_harness`` here: this is the set-up the README's *Run in production* describes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PG_ADMIN = os.environ.get("FRONTLINE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
SMTP_PASSWORD = "integration-Secret-Pa55"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _db_url(name: str, driver: str = "postgresql") -> str:
    from sqlalchemy.engine import make_url

    return make_url(PG_ADMIN).set(drivername=driver, database=name).render_as_string(hide_password=False)


class Processes:
    """Long-running children, each in its own process group, stopped (TERM, then KILL) at the end."""

    def __init__(self, logdir: Path):
        self.logdir = logdir
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, args: list[str], env: dict[str, str], cwd: Path = ROOT) -> subprocess.Popen:
        log = open(self.logdir / f"{name}.log", "wb")  # noqa: SIM115 - the child process keeps writing to it
        proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append((name, proc))
        return proc

    def log(self, name: str) -> str:
        path = self.logdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop_all(self) -> None:
        for _name, proc in reversed(self.procs):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 15
        for _name, proc in reversed(self.procs):
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of the group (flow-run children)
            except ProcessLookupError:
                pass
            proc.wait(timeout=5)


def _run(args: list[str], env: dict[str, str], timeout: float = 120, stdin: str | None = None) -> str:
    done = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout, input=stdin)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _write_roster(folder: Path, today: date, extra: list[str] | None = None) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "departments.csv").write_text(
        "department,head_name,head_email,max_away_fraction\n"
        "Support,Sam Support,sam@example.com,\n"
        "Engineering,Erin Eng,erin@example.com,0.5\n"
    )
    header = "employee_id,name,email,department,title,hire_date,timezone,country,languages,skills,mentor,mentor_capacity,last_rotation\n"
    recent = (today - timedelta(days=2)).isoformat()
    rows = [
        "S1,Sam Support,sam@example.com,Support,Lead,2019-01-07,Europe/Berlin,DE,en;de,billing,yes,3,",
        "S2,Sara Support,sara@example.com,Support,Specialist,2020-03-02,Europe/Berlin,DE,en,export,yes,3,",
        "E1,Erin Eng,erin@example.com,Engineering,Manager,2018-05-14,Europe/Berlin,DE,en,python,no,0,2026-01-05",
        "E2,Eli Eng,eli@example.com,Engineering,Engineer,2021-09-01,Europe/London,GB,en,go,no,0,2025-10-06",
        f"N1,Nora New,nora@example.com,Engineering,Engineer,{recent},Europe/Berlin,DE,en;fr,python,no,0,",
    ] + (extra or [])
    (folder / "employees.csv").write_text(header + "\n".join(rows) + "\n")
    return {"departments": folder / "departments.csv", "employees": folder / "employees.csv"}


class Api:
    """The few REST calls the test needs (plain HTTP: the test process keeps no Prefect client state)."""

    def __init__(self, url: str):
        import httpx

        self.http = httpx.Client(base_url=url, timeout=30)

    def deployment_id(self, flow: str, deployment: str) -> str:
        r = self.http.get(f"/deployments/name/{flow}/{deployment}")
        r.raise_for_status()
        return r.json()["id"]

    def run_deployment(self, deployment_id: str, parameters: dict) -> str:
        r = self.http.post(f"/deployments/{deployment_id}/create_flow_run", json={"parameters": parameters})
        r.raise_for_status()
        return r.json()["id"]

    def runs_of(self, deployment_id: str) -> list[dict]:
        r = self.http.post("/flow_runs/filter", json={"deployments": {"id": {"any_": [deployment_id]}}, "limit": 50})
        r.raise_for_status()
        return r.json()

    def run(self, run_id: str) -> dict:
        r = self.http.get(f"/flow_runs/{run_id}")
        r.raise_for_status()
        return r.json()

    def logs(self, run_id: str) -> str:
        r = self.http.post("/logs/filter", json={"logs": {"flow_run_id": {"any_": [run_id]}}, "limit": 200})
        r.raise_for_status()
        return "\n".join(entry["message"] for entry in r.json())

    def artifacts(self, run_id: str) -> str:
        r = self.http.post("/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [run_id]}}})
        r.raise_for_status()
        return repr(r.json())


def _wait(what: str, check, timeout: float, diagnostics) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(1)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\n{diagnostics()}")


def _wait_final(api: Api, run_id: str, timeout: float, diagnostics) -> dict:
    def final():
        run = api.run(run_id)
        return run if run["state_type"] in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"} else None

    run = _wait(f"flow run {run_id}", final, timeout, diagnostics)
    assert run["state_type"] == "COMPLETED", (
        f"run {run['name']} ended {run['state_type']}: {run['state']}\n{diagnostics()}"
    )
    return run


@pytest.fixture
def pg_databases():
    """A fresh PostgreSQL database for the Prefect server and one for Frontline; dropped afterwards."""
    import psycopg
    from conftest import postgres_unavailable, require

    problem = postgres_unavailable()
    if problem:
        require(problem, "FRONTLINE_REQUIRE_PG")
    suffix = uuid.uuid4().hex[:10]
    names = {"prefect": f"prefect_it_{suffix}", "frontline": f"frontline_it_{suffix}"}
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        for name in names.values():
            conn.execute(f'create database "{name}"')
    try:
        yield names
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            for name in names.values():
                conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.mark.postgres
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_deployments_worker_and_new_hire_event_on_postgres(tmp_path, pg_databases):
    from sqlmodel import select

    from models import Employee, get_engine, init_db, session_scope

    started = time.monotonic()
    port = _free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    frontline_url = _db_url(pg_databases["frontline"])
    outbox = tmp_path / "outbox"
    from urllib.parse import quote

    from mailserver import TLSServer, make_certificate

    cert, key = make_certificate(tmp_path)
    smtp = TLSServer(cert, key, implicit=False, user="bot@corp", password=SMTP_PASSWORD)
    policy = tmp_path / "frontline.toml"
    policy.write_text((ROOT / "frontline.example.toml").read_text())
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PREFECT_", "FRONTLINE_"))} | {
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_API_URL": api_url,
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": _db_url(pg_databases["prefect"], "postgresql+asyncpg"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        # runs are created by the test and by triggers only (no cron runs during the test)
        "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_LOGGING_TO_API_BATCH_INTERVAL": "0.3",
        "FRONTLINE_HOME": str(ROOT),
        "FRONTLINE_DATABASE_URL": frontline_url,
        "FRONTLINE_OUTBOX_DIR": str(outbox),
        # real SMTP (STARTTLS + AUTH); the password is only in a Prefect Secret block, never in the environment
        "FRONTLINE_SMTP_URL": f"smtp://{quote('bot@corp', safe='')}@127.0.0.1:{smtp.port}?cafile={quote(cert)}",
        "FRONTLINE_SMTP_PASSWORD_BLOCK": "frontline-smtp-password",
        "FRONTLINE_POLICY_PATH": str(policy),
        "FRONTLINE_SECRET_KEY": "integration-test-secret-key",
        "FRONTLINE_BASE_URL": "http://frontline.test",
        "FRONTLINE_TIMEZONE": "Europe/Berlin",
    }
    engine = get_engine(frontline_url)
    today = date.today()
    roster = _write_roster(tmp_path / "roster", today)

    procs = Processes(tmp_path)
    api = Api(api_url)

    def diagnostics() -> str:
        text = "\n".join(f"--- {name}.log (tail) ---\n{procs.log(name)[-4000:]}" for name in ("server", "worker"))
        try:
            events = api.http.post("/events/filter", json={"filter": {"event": {"prefix": ["frontline."]}}}).json()
            runs = api.http.post("/flow_runs/filter", json={}).json()
            text += f"\n--- frontline events ---\n{[(e['event'], e['resource']['prefect.resource.id'], e['occurred']) for e in events.get('events', [])]}"
            text += f"\n--- flow runs ---\n{[(r['name'], r['state_type'], r['parameters']) for r in runs]}"
        except Exception as exc:  # noqa: BLE001 - diagnostics only
            text += f"\n(no API diagnostics: {exc})"
        return text

    smtp.start()
    try:
        procs.start(
            "server", [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)], env
        )
        init_db(engine)  # while the server boots
        import httpx

        def healthy():
            try:
                return httpx.get(f"{api_url}/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        _wait("the Prefect server", healthy, 120, diagnostics)
        print(f"\n  server healthy after {time.monotonic() - started:.1f}s")
        _run([str(BIN / "prefect"), "work-pool", "create", "frontline-pool", "--type", "process"], env)
        _run([str(BIN / "prefect"), "concurrency-limit", "create", "frontline-planning", "1"], env)
        procs.start(
            "worker", [str(BIN / "prefect"), "worker", "start", "--pool", "frontline-pool", "--limit", "2"], env
        )
        _run(
            [
                sys.executable,
                "-c",
                "import sys; from prefect.blocks.system import Secret; "
                "Secret(value=sys.stdin.read()).save('frontline-smtp-password')",
            ],
            env,
            stdin=SMTP_PASSWORD,
        )
        _run([str(BIN / "prefect"), "--no-prompt", "deploy", "--all"], env, timeout=240)
        print(f"  deployed after {time.monotonic() - started:.1f}s")

        # 1. a deployment run: the roster import (the new hire N1 in it emits frontline.employee.hired)
        roster_id = api.deployment_id("import-roster", "import-roster")
        run_id = api.run_deployment(roster_id, {k: str(v) for k, v in roster.items()} | {"absences": None})
        _wait_final(api, run_id, 120, diagnostics)
        with session_scope(engine) as session:
            ids = set(session.exec(select(Employee.employee_id)).all())
        assert ids == {"S1", "S2", "E1", "E2", "N1"}
        print(f"  roster imported after {time.monotonic() - started:.1f}s")

        # 2. the trigger: the event made the onboarding deployment run for N1
        onboarding_id = api.deployment_id("onboard-new-hire", "onboard-new-hire")

        def onboarding_run_for(employee_id: str):
            from frontline.people.events import employee_id_from_resource

            runs = [
                r
                for r in api.runs_of(onboarding_id)
                if employee_id_from_resource(str(r["parameters"].get("employee_id"))) == employee_id
            ]
            return runs[0] if runs else None

        run = _wait(
            "the onboarding run triggered by N1's hire event", lambda: onboarding_run_for("N1"), 60, diagnostics
        )
        run = _wait_final(api, run["id"], 120, diagnostics)
        assert run["name"] == "onboard-N1", "meaningful run name"
        assert_onboarded(engine, "N1", smtp)
        print(f"  N1 onboarded after {time.monotonic() - started:.1f}s")

        # 3. another "add employee" path: the CLI import without a flow run emits the event itself
        hire2 = f"N2,Noah New,noah@example.com,Engineering,Engineer,{(today - timedelta(days=1)).isoformat()},Europe/Paris,FR,en,go,no,0,"
        roster2 = _write_roster(tmp_path / "roster2", today, extra=[hire2])
        _run(
            [
                str(BIN / "frontline"),
                "roster",
                "import",
                "--no-flow",
                "--departments",
                str(roster2["departments"]),
                "--employees",
                str(roster2["employees"]),
            ],
            env,
        )
        run = _wait(
            "the onboarding run triggered by N2's hire event", lambda: onboarding_run_for("N2"), 60, diagnostics
        )
        _wait_final(api, run["id"], 120, diagnostics)
        assert_onboarded(engine, "N2", smtp)

        # 4. observability: status from the audit trail and from Prefect, no secrets anywhere
        status = _run([str(BIN / "frontline"), "status", "--json"], env)
        import json

        report = json.loads(status)
        jobs = {row["job"]: row for row in report["jobs"]}
        assert jobs["import-roster"]["ago"] != "never" and jobs["onboard-new-hire"]["ago"] != "never"
        deployments = {row["deployment"]: row for row in report["prefect"]["deployments"]}
        assert deployments["onboard-new-hire/onboard-new-hire"]["last_state"] == "Completed"
        assert deployments["import-roster/import-roster"]["last_state"] == "Completed"
        assert len(deployments) == len(api.http.post("/deployments/filter", json={}).json())

        # 5. the SMTP password (from the Secret block) is in no run log, artifact, status output or process log
        runs = api.http.post("/flow_runs/filter", json={}).json()
        assert len(runs) >= 5
        seen = ""
        for r in runs:
            seen += api.logs(r["id"]) + api.artifacts(r["id"])
            assert SMTP_PASSWORD not in seen, f"secret leaked in run {r['name']}"
        assert "Finished in state Completed" in seen and "Onboarding N1" in seen, "the logs and artifacts were read"
        text_status = _run([str(BIN / "frontline"), "status"], env)
        for output in (status, text_status, procs.log("worker"), procs.log("server")):
            assert SMTP_PASSWORD not in output
        print(f"production integration test: {time.monotonic() - started:.1f}s")
    finally:
        procs.stop_all()
        smtp.stop()
        engine.dispose()
        from models.db import _engine_for

        _engine_for.cache_clear()


def assert_onboarded(engine, employee_id: str, smtp) -> None:
    """A rotation (new_hire), an active pairing with a support mentor, an invite delivered over SMTP."""
    from sqlmodel import select

    from models import AuditEvent, Employee, MentorPairing, OutboundMessage, Rotation, session_scope

    with session_scope(engine) as session:
        emp = session.exec(select(Employee).where(Employee.employee_id == employee_id)).one()
        rotations = session.exec(select(Rotation).where(Rotation.employee_id == emp.id)).all()
        assert len(rotations) == 1 and rotations[0].kind == "new_hire", f"{employee_id}: {rotations}"
        rotation = rotations[0]
        assert rotation.start >= emp.hire_date and rotation.start.weekday() == 0
        assert rotation.status == "invited", f"{employee_id}'s rotation was announced"
        pairing = session.exec(
            select(MentorPairing).where(MentorPairing.rotation_id == rotation.id, MentorPairing.status == "active")
        ).one()
        mentor = session.get(Employee, pairing.mentor_id)
        assert mentor.employee_id in {"S1", "S2"}
        mail = session.exec(select(OutboundMessage).where(OutboundMessage.recipient.contains(emp.email))).all()
        invites = [m for m in mail if m.kind.startswith("invite")]
        assert invites and all(m.state == "sent" for m in invites), [(m.kind, m.state) for m in mail]
        audit = session.exec(
            select(AuditEvent).where(AuditEvent.action == "onboarding.run", AuditEvent.subject_id == employee_id)
        ).all()
        assert len(audit) == 1 and audit[0].details["mentor"] == mentor.employee_id
    assert any(
        emp.email in str(m["To"]) and "text/calendar" in {part.get_content_type() for part in m.walk()}
        for m in smtp.handler.messages
    ), f"an invite for {employee_id} reached the SMTP server"
    assert smtp.logins and set(smtp.logins) == {"bot@corp"}, "logged in with the password from the Secret block"
