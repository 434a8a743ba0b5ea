"""Run a job from a command without paying for Prefect: one way in (:func:`run_job`), three ways to run.

* **No Prefect server configured** (the embedded defaults): the job's body (:mod:`flows.jobs`) runs in
  this process with its plain steps, and the run is recorded in Frontline's own audit: one AuditEvent
  ``job.run`` (actor ``flow:<flow name>``, so ``frontline status`` shows it as the job's last run) with the
  run name, parameters, state, duration, each step's name, state and duration, and the artifacts the
  run left (key, description, and the table rows (first 200) or the markdown). Prefect is not
  imported and no temporary Prefect server is started. Not recorded, because there is no server to
  keep them: Prefect's flow-run and task-run records, log lines and events; steps are not retried (a
  failed step fails the run, which is recorded as ``Failed`` with the error, and the command exits
  with the error).
* **A Prefect server configured** (``PREFECT_API_URL`` in the environment or in the active Prefect
  profile): the job runs in this process the same way, and is recorded on that server through its
  REST API: the flow run (named as Prefect names it, with its parameters and the tag ``frontline-cli``)
  going Pending, Running, then Completed or Failed; one task run per step with its own states; and
  every artifact, linked to the flow run. The server's UI and ``frontline status`` show it like any
  other run. Not recorded: log lines and the engine's per-state events.
* ``FRONTLINE_JOB_RUNNER=prefect``: the old path, a real Prefect flow run in this process (Prefect's
  temporary server when none is configured), with Prefect's retries. Slow to start (Prefect's imports
  and, without a server, its temporary server process): for comparison and for debugging.

Scheduled deployments, the new-hire event and anything a Prefect worker runs are real Prefect flow runs
whatever this module does: ``prefect.yaml`` points at the flows in ``flows/*.py``, which wrap the same
bodies. When Prefect is already loaded in this process (a test harness), its settings decide whether a
server is configured.
"""

from __future__ import annotations

import importlib
import inspect
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from flows.common import CURRENT_RUN, format_run_name
from frontline.core.prefect_api import PrefectApi, configured_api_url

ARTIFACT_ROWS_IN_AUDIT = 200
CLI_TAG = "frontline-cli"


@dataclass(frozen=True)
class JobSpec:
    """A job: its body in :mod:`flows.jobs`, its Prefect flow, and its steps (keyword -> task name)."""

    flow_name: str
    body: str  # "flows.jobs:plan_rotations"
    flow: str  # "flows.plan:plan_rotations"
    steps: Mapping[str, str]
    run_name_parameters: tuple[str, ...] = ()


JOBS: dict[str, JobSpec] = {
    spec.flow_name: spec
    for spec in (
        JobSpec(
            "plan-rotations",
            "flows.jobs:plan_rotations",
            "flows.plan:plan_rotations",
            {"solve": "plan-solve"},
            ("start",),
        ),
        JobSpec(
            "pair-mentors", "flows.jobs:pair_mentors", "flows.pair:pair_mentors", {"pair": "pair-horizon"}, ("as_of",)
        ),
        JobSpec(
            "send-surveys", "flows.jobs:send_surveys", "flows.pair:send_surveys", {"batch": "survey-batch"}, ("as_of",)
        ),
        JobSpec(
            "import-roster", "flows.jobs:import_roster", "flows.roster:import_roster_flow", {"apply": "apply-roster"}
        ),
        JobSpec("deliver-mail", "flows.jobs:deliver_mail", "flows.mail:deliver_mail", {"batch": "deliver-mail-batch"}),
        JobSpec(
            "send-digests",
            "flows.jobs:send_digests",
            "flows.digests:send_digests",
            {"themes_step": "digest-themes", "batch": "digest-batch"},
            ("week", "department"),
        ),
        JobSpec(
            "send-invites",
            "flows.jobs:send_invites",
            "flows.invites:send_invites",
            {"batch": "invite-batch"},
            ("as_of",),
        ),
        JobSpec(
            "send-reminders",
            "flows.jobs:send_reminders",
            "flows.invites:send_reminders",
            {"batch": "reminder-batch"},
            ("as_of",),
        ),
        JobSpec("deliver-chat", "flows.jobs:deliver_chat", "flows.chat:deliver_chat", {"send": "send-chat"}),
        JobSpec(
            "sync-time-off",
            "flows.jobs:sync_time_off",
            "flows.time_off:sync_time_off",
            {"fetch": "fetch-time-off-feed", "apply": "apply-time-off-feed"},
        ),
        JobSpec(
            "read-rsvp-replies",
            "flows.jobs:read_rsvp_replies",
            "flows.replies:read_rsvp_replies",
            {"read": "read-rsvp-mailbox"},
        ),
        JobSpec(
            "escalate-overdue",
            "flows.jobs:escalate_overdue",
            "flows.escalations:escalate_overdue",
            {"batch": "escalate-overdue-observations"},
        ),
    )
}


class PrefectUnreachable(RuntimeError):
    """The configured Prefect API did not answer before the run started: nothing was done."""

    def __init__(self, url: str, reason: str):
        super().__init__(f"cannot reach the Prefect API at {url}: {reason}")
        self.url = url


def _load(path: str) -> Any:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


# --- where the run goes -----------------------------------------------------------------------------


def runner_mode() -> str:
    """``prefect`` (FRONTLINE_JOB_RUNNER=prefect), ``server`` (a Prefect API is configured) or ``local``."""
    from frontline.core.settings import get_settings

    if get_settings().job_runner == "prefect":
        return "prefect"
    return "server" if configured_api_url() else "local"


# --- a run without Prefect --------------------------------------------------------------------------


@dataclass
class Step:
    name: str
    started: datetime
    seconds: float = 0.0
    state: str = "Running"
    error: str | None = None
    id: str | None = None  # the task run on the server, when there is one


@dataclass
class LocalRun:
    """One run of a job outside Prefect: what it did, for the audit or the server."""

    spec: JobSpec
    name: str
    parameters: dict[str, Any]
    started: datetime
    state: str = "Running"
    error: str | None = None
    seconds: float = 0.0
    steps: list[Step] = field(default_factory=list)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    server: PrefectApiRecorder | None = None

    def artifact(self, key: str, description: str, *, markdown: str | None, table: list[dict] | None) -> None:
        item = {"key": key, "description": description, "markdown": markdown, "table": table}
        self.artifacts.append(item)
        if self.server is not None:
            self.server.artifact(self, item)

    def step(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def run_step(*args: Any, **kwargs: Any) -> Any:
            from models import utcnow

            step = Step(name=name, started=utcnow())
            self.steps.append(step)
            if self.server is not None:
                self.server.step_started(self, step, len([s for s in self.steps if s.name == name]) - 1)
            t0 = time.perf_counter()
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                step.state, step.error = "Failed", _error_text(exc)
                raise
            else:
                step.state = "Completed"
                return result
            finally:
                step.seconds = round(time.perf_counter() - t0, 3)
                if self.server is not None:
                    self.server.step_finished(step)

        return run_step


def _error_text(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:2000]


def jsonable(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def run_job(flow_name: str, **parameters: Any) -> Any:
    """Run the job ``flow_name`` (a Prefect flow name, e.g. ``plan-rotations``) with ``parameters`` and
    return what its flow returns; see the module docstring for where the run is recorded. Raises what the
    job raises (after recording the failed run) and :class:`PrefectUnreachable` before doing anything when
    a configured server does not answer."""
    spec = JOBS[flow_name]
    mode = runner_mode()
    if mode == "prefect":
        return _run_with_prefect(spec, parameters)
    from models import utcnow

    body = _load(spec.body)
    signature = inspect.signature(body)
    run = LocalRun(
        spec=spec,
        name=format_run_name(spec.flow_name, spec.run_name_parameters, parameters),
        parameters=jsonable(parameters),
        started=utcnow(),
    )
    if mode == "server":
        url = configured_api_url()
        assert url is not None
        run.server = PrefectApiRecorder(url)
        run.server.start(run)  # raises PrefectUnreachable before the job starts
    steps = {kw: run.step(task, signature.parameters[kw].default) for kw, task in spec.steps.items()}
    token = CURRENT_RUN.set(run)
    t0 = time.perf_counter()
    try:
        result = body(**parameters, **steps)
    except BaseException as exc:
        run.state, run.error = "Failed", _error_text(exc)
        raise
    else:
        run.state = "Completed"
        return result
    finally:
        CURRENT_RUN.reset(token)
        run.seconds = round(time.perf_counter() - t0, 3)
        if run.server is not None:
            run.server.finish(run)
        else:
            _record_in_audit(run)


def _record_in_audit(run: LocalRun) -> None:
    from frontline.core.audit import record
    from models import session_scope

    artifacts = []
    for a in run.artifacts:
        item: dict[str, Any] = {"key": a["key"], "description": a["description"]}
        if a["markdown"] is not None:
            item["markdown"] = a["markdown"]
        else:
            table = a["table"] or []
            item["rows"] = len(table)
            item["table"] = jsonable(table[:ARTIFACT_ROWS_IN_AUDIT])
        artifacts.append(item)
    details: dict[str, Any] = {
        "run": run.name,
        "state": run.state,
        "seconds": run.seconds,
        "runner": "direct (no Prefect server configured)",
        "parameters": run.parameters,
        "steps": [{"name": s.name, "state": s.state, "seconds": s.seconds} for s in run.steps],
        "artifacts": artifacts,
    }
    if run.error:
        details["error"] = run.error
    with session_scope() as session:
        record(
            session,
            actor=f"flow:{run.spec.flow_name}",
            action="job.run",
            subject_type="job run",
            subject_id=run.name,
            **details,
        )


def _run_with_prefect(spec: JobSpec, parameters: dict[str, Any]) -> Any:
    """The old path: a real Prefect flow run in this process (temporary server when none is configured)."""
    # The temporary server needs ~15-25 s to start on a small machine, more than Prefect's default
    # 20 s timeout. Explicit settings in the environment always win.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from flows.jobs import JobFailed

    flow = _load(spec.flow)
    try:
        state = flow(**parameters, return_state=True)
    except RuntimeError as exc:
        # Prefect's client says this before the flow run starts (nothing has been done yet).
        if not str(exc).startswith("Failed to reach API"):
            raise
        from prefect.settings import PREFECT_API_URL

        raise PrefectUnreachable(str(PREFECT_API_URL.value()), "Failed to reach API") from None
    if not state.is_failed():
        return state.result()
    data = state.result(raise_on_failure=False)  # what the job returned with its Failed state, or raised
    if isinstance(data, BaseException):
        raise data
    raise JobFailed(state.message or "the flow run failed", data)


# --- recording on a Prefect server through its REST API ---------------------------------------------


class PrefectApiRecorder:
    """Records a run on a Prefect server (flow run, task runs, states, artifacts) through its REST API
    (:class:`~frontline.core.prefect_api.PrefectApi`), without Prefect's client."""

    def __init__(self, url: str):
        self.api = PrefectApi(url)
        self.url = self.api.url
        self.flow_run_id: str | None = None
        self.flow_id: str | None = None

    def _post(self, path: str, payload: Any) -> Any:
        return self.api.post(path, payload)

    @staticmethod
    def _state(kind: str, message: str | None = None) -> dict[str, Any]:
        return {"type": kind, "name": kind.capitalize(), "message": message}

    def _set_state(self, path: str, kind: str, message: str | None = None) -> None:
        self._post(path, {"state": self._state(kind, message), "force": True})

    def start(self, run: LocalRun) -> None:
        """The flow run, Pending then Running; any failure here stops the command before the job starts."""
        try:
            self.flow_id = self._post("/flows/", {"name": run.spec.flow_name})["id"]
            flow_run = self._post(
                "/flow_runs/",
                {
                    "flow_id": self.flow_id,
                    "name": run.name,
                    "parameters": run.parameters,
                    "tags": [CLI_TAG],
                    "state": self._state("PENDING"),
                },
            )
            self.flow_run_id = flow_run["id"]
            self._set_state(f"/flow_runs/{self.flow_run_id}/set_state", "RUNNING")
        except OSError as exc:
            self.api.close()
            raise PrefectUnreachable(self.url, str(exc) or type(exc).__name__) from None

    def step_started(self, run: LocalRun, step: Step, index: int) -> None:
        task_run = self._post(
            "/task_runs/",
            {
                "name": f"{step.name}-{index}",
                "flow_run_id": self.flow_run_id,
                "task_key": f"frontline-cli.{step.name}",
                "dynamic_key": str(index),
                "state": self._state("PENDING"),
            },
        )
        step.id = task_run["id"]
        self._set_state(f"/task_runs/{step.id}/set_state", "RUNNING")

    def step_finished(self, step: Step) -> None:
        if step.id is not None:
            self._set_state(f"/task_runs/{step.id}/set_state", step.state.upper(), step.error)

    def artifact(self, run: LocalRun, item: dict[str, Any]) -> None:
        import json

        markdown = item["markdown"]
        self._post(
            "/artifacts/",
            {
                "key": item["key"],
                "type": "markdown" if markdown is not None else "table",
                "description": item["description"],
                "data": markdown if markdown is not None else json.dumps(jsonable(item["table"])),
                "flow_run_id": self.flow_run_id,
            },
        )

    def finish(self, run: LocalRun) -> None:
        try:
            self._set_state(f"/flow_runs/{self.flow_run_id}/set_state", run.state.upper(), run.error)
        finally:
            self.api.close()
