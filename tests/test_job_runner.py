"""Commands run their job without Prefect (issue 14): recorded in Frontline's audit without a server, on
the Prefect server (flow run, task runs, artifacts) when one is configured; never starting a temporary one."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import Session

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FRONTLINE_", "PREFECT_"))}
    env.update(
        FRONTLINE_DATABASE_URL=f"sqlite:///{tmp_path / 'frontline.db'}",
        FRONTLINE_OUTBOX_DIR=str(tmp_path / "outbox"),
        FRONTLINE_POLICY_PATH=str(tmp_path / "frontline.toml"),
        FRONTLINE_SECRET_KEY="test-secret-key-not-for-production",
        PREFECT_HOME=str(tmp_path / "prefect-home"),  # no profile there: nothing configured
        **extra,
    )
    return env


# Runs the CLI, then reports whether Prefect was ever imported in that process.
PROBE = (
    "import sys, json\n"
    "from frontline.cli import app\n"
    "try:\n"
    "    app(sys.argv[1:])\n"
    "except SystemExit as exc:\n"
    "    code = exc.code or 0\n"
    "print(json.dumps({'prefect_imported': 'prefect' in sys.modules, 'code': code}))\n"
)


def _frontline(tmp_path: Path, *args: str, **env: str) -> tuple[dict, subprocess.CompletedProcess[str]]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        env=_env(tmp_path, **env),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.stdout.strip(), proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc


def _roster_args() -> list[str]:
    return [
        "roster",
        "import",
        "--departments",
        str(EXAMPLES / "departments.csv"),
        "--employees",
        str(EXAMPLES / "employees.csv"),
        "--absences",
        str(EXAMPLES / "absences.csv"),
    ]


def _job_runs(tmp_path: Path) -> list:
    from sqlalchemy import create_engine

    from models import AuditEvent

    engine = create_engine(f"sqlite:///{tmp_path / 'frontline.db'}")
    try:
        with Session(engine) as s:
            return list(
                s.exec(select(AuditEvent).where(AuditEvent.action == "job.run").order_by(AuditEvent.id)).scalars()
            )
    finally:
        engine.dispose()


def test_without_a_server_the_job_runs_without_prefect_and_is_recorded_in_the_audit(tmp_path):
    shutil.copyfile(ROOT / "frontline.example.toml", tmp_path / "frontline.toml")
    out, proc = _frontline(tmp_path, *_roster_args())
    assert out == {"prefect_imported": False, "code": 0}, proc.stderr
    assert "roster imported: departments 4 new" in proc.stdout
    out, proc = _frontline(tmp_path, "plan")
    assert out == {"prefect_imported": False, "code": 0}, proc.stderr

    roster_run, plan_run = _job_runs(tmp_path)
    assert roster_run.actor == "flow:import-roster" and roster_run.details["state"] == "Completed"
    assert roster_run.details["steps"][0]["name"] == "apply-roster"
    (artifact,) = roster_run.details["artifacts"]
    assert artifact["key"] == "roster-import" and {"what": "employees_created", "count": 8} in artifact["table"]
    assert plan_run.actor == "flow:plan-rotations" and plan_run.subject_id.startswith("plan-rotations-")
    assert plan_run.details["parameters"] == {"start": None, "weeks": 52, "dry_run": False}
    keys = [a["key"] for a in plan_run.details["artifacts"]]
    assert keys == ["rotation-plan", "rotation-plan-changes", "rotation-plan-week-load"]


def test_a_failed_job_is_recorded_as_failed_and_the_command_fails(tmp_path):
    shutil.copyfile(ROOT / "frontline.example.toml", tmp_path / "frontline.toml")
    _frontline(tmp_path, *_roster_args())
    # A leaver's address taken over by a new id: refused by the database check, nothing written.
    employees = tmp_path / "employees.csv"
    employees.write_text(
        (EXAMPLES / "employees.csv").read_text(encoding="utf-8").replace("\nE008,", "\nE009,"), encoding="utf-8"
    )
    args = _roster_args()
    args[args.index("--employees") + 1] = str(employees)
    out, proc = _frontline(tmp_path, *args)
    assert out["code"] == 1 and not out["prefect_imported"]
    assert "belongs to employee 'E008'" in proc.stderr
    failed = _job_runs(tmp_path)[-1]
    assert failed.details["state"] == "Failed" and "E008" in failed.details["error"]
    assert failed.details["artifacts"][0]["markdown"].startswith("# Roster import refused")


def test_an_unreachable_server_stops_the_command_before_it_does_anything(tmp_path):
    shutil.copyfile(ROOT / "frontline.example.toml", tmp_path / "frontline.toml")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    out, proc = _frontline(tmp_path, *_roster_args(), PREFECT_API_URL=f"http://127.0.0.1:{port}/api")
    assert out["code"] == 1 and not out["prefect_imported"]
    assert f"cannot reach the Prefect API at http://127.0.0.1:{port}/api" in proc.stderr
    assert "nothing was done" in proc.stderr
    import sqlite3

    with sqlite3.connect(tmp_path / "frontline.db") as db:  # the schema was made; no roster row written
        assert db.execute("SELECT count(*) FROM employee").fetchone() == (0,)


def test_the_profile_names_the_server(tmp_path, monkeypatch):
    """``PREFECT_API_URL`` in the active profile counts as configured, as Prefect itself reads it."""
    import flows.runner as runner

    home = tmp_path / "ph"
    home.mkdir()
    (home / "profiles.toml").write_text(
        'active = "work"\n[profiles.work]\nPREFECT_API_URL = "http://prefect.test:4200/api"\n', encoding="utf-8"
    )
    monkeypatch.setenv("PREFECT_HOME", str(home))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.delenv("PREFECT_PROFILE", raising=False)
    monkeypatch.delitem(sys.modules, "prefect.settings", raising=False)
    assert runner.configured_api_url() == "http://prefect.test:4200/api"
    monkeypatch.setenv("PREFECT_PROFILE", "ephemeral")
    assert runner.configured_api_url() is None


@pytest.mark.prefect
def test_with_a_server_the_run_its_steps_and_artifacts_are_recorded_there(prefect_harness, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    shutil.copyfile(ROOT / "frontline.example.toml", tmp_path / "frontline.toml")
    out, proc = _frontline(tmp_path, *_roster_args(), PREFECT_API_URL=url)
    assert out == {"prefect_imported": False, "code": 0}, proc.stderr
    assert _job_runs(tmp_path) == []  # the server keeps the record

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=["frontline-cli"])))
        run = next(r for r in runs if r.name.startswith("import-roster-") and r.parameters.get("absences"))
        assert run.state is not None and run.state.is_completed()
        assert run.parameters["employees"] == str(EXAMPLES / "employees.csv")
        assert client.read_flow(run.flow_id).name == "import-roster"
        (task_run,) = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id={"any_": [run.id]})  # type: ignore[arg-type]
        )
        assert task_run.name == "apply-roster-0" and task_run.state is not None and task_run.state.is_completed()
        artifacts = client.read_artifacts(
            flow_run_filter=FlowRunFilter(id={"any_": [run.id]})  # type: ignore[arg-type]
        )
    (artifact,) = artifacts
    assert artifact.key == "roster-import" and artifact.type == "table"
    assert {"what": "employees_created", "count": 8} in json.loads(str(artifact.data))

    # The new hires' events reached the server (over HTTP, as the onboarding trigger needs them).
    from frontline.core.prefect_api import PrefectApi
    from frontline.people.events import HIRED

    api = PrefectApi(url)
    deadline = time.monotonic() + 60
    seen: set[str] = set()
    while time.monotonic() < deadline and not seen:
        answer = api.post("/events/filter", {"filter": {"event": {"name": [HIRED]}}, "limit": 50})
        seen = {e["payload"]["employee_id"] for e in answer["events"] if e["payload"].get("source") == "roster-import"}
        time.sleep(0.5)
    api.close()
    assert seen and seen <= {f"E00{i}" for i in range(1, 9)}
