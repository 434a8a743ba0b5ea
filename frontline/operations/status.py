"""The operational status of a Frontline installation: the last run of each job and anything stuck.

Sources:

* the AuditEvent table: every flow records an event with actor ``flow:<flow name>`` when it finishes
  (works without a Prefect server, e.g. for the demo);
* the Prefect API, when one is configured (``PREFECT_API_URL``): per deployment the last finished run
  (state, name, start, duration) and the next scheduled one, the failed/crashed runs of the last day, the
  late runs (past their start time, taken by no worker) and each work pool with the workers polling it (a
  pool paused or polled by no worker runs nothing: flagged);
* stuck work in the Frontline database: mail in ``failed``, mail ``sending`` past its lease (a worker died),
  mail due for over 30 minutes and still ``pending`` (delivery not running), urgent observations past the
  escalation SLA and unacknowledged, people the last plan could not place;
* what else needs a human (:func:`needs_a_human`): a policy file that cannot be used (the jobs, the
  observation form and the API stop) or names a support department the roster lacks, rotations announced
  or under way without a mentor (their mentor became absent or left and nobody could replace them), and
  unacknowledged observations addressed to a department the roster import deactivated (nobody reads them),
  and connectors (calendar feeds) whose last attempt failed;
* the connectors table: each connector's last success and last error (``connectors``).

:func:`collect_status` returns the whole report as plain data (``frontline status`` prints it, as a table
or as JSON). No secret is ever part of it (the database URL is shown without its password).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, func, select

from models import AuditEvent, Department, Employee, MentorPairing, Observation, OutboundMessage, PlanRun, Rotation

PENDING_BACKLOG = timedelta(minutes=30)
LIST_LIMIT = 10
STUCK_KINDS = (
    "mail_failed",
    "mail_stuck_sending",
    "mail_pending_backlog",
    "urgent_unacknowledged",
    "unplaced_in_last_plan",
    "policy_unusable",
    "rotations_without_mentor",
    "observations_for_inactive_departments",
    "connectors_failing",
    "routing_table_unknown_departments",
    "scim_deactivations_held",
    "scim_users_not_employees",
)

Row = dict[str, Any]


def flow_names() -> list[str]:
    """The name of every Prefect flow in the ``flows`` package (the jobs Frontline runs)."""
    import importlib
    import pkgutil

    from prefect import Flow

    import flows

    names: list[str] = []
    for info in pkgutil.iter_modules(flows.__path__):
        module = importlib.import_module(f"flows.{info.name}")
        for value in vars(module).values():
            if isinstance(value, Flow) and value.__module__ == module.__name__ and value.name not in names:
                names.append(value.name)
    return sorted(names)


def _iso(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%SZ") if value else ""


def _ago(value: datetime | None, now: datetime) -> str:
    if value is None:
        return "never"
    seconds = int((now - value).total_seconds())
    if seconds < 120:
        return f"{seconds}s ago"
    if seconds < 7200:
        return f"{seconds // 60}min ago"
    if seconds < 2 * 86400:
        return f"{seconds // 3600}h ago"
    return f"{seconds // 86400}d ago"


# --- the audit trail -----------------------------------------------------------------------------


def last_runs_from_audit(session: Session, jobs: list[str], now: datetime) -> list[Row]:
    """Last AuditEvent per flow (``actor = flow:<name>``), one row per job; jobs never run say so."""
    latest = (
        select(AuditEvent.actor, func.max(AuditEvent.id).label("id"))
        .where(col(AuditEvent.actor).like("flow:%"))
        .group_by(col(AuditEvent.actor))
        .subquery()
    )
    events = {
        e.actor.removeprefix("flow:"): e
        for e in session.exec(select(AuditEvent).join(latest, col(AuditEvent.id) == latest.c.id)).all()
    }
    rows = []
    for job in sorted(set(jobs) | set(events)):
        event = events.get(job)
        summary = ""
        if event is not None:
            summary = ", ".join(
                f"{k}={v}" for k, v in (event.details or {}).items() if isinstance(v, (int, float, str))
            )
        rows.append(
            {
                "job": job,
                "last_run": _iso(event.at) if event else "",
                "ago": _ago(event.at if event else None, now),
                "action": event.action if event else "",
                "summary": summary[:100],
            }
        )
    return rows


# --- stuck work ----------------------------------------------------------------------------------


def _mail_rows(session: Session, condition: ColumnElement[bool]) -> list[Row]:
    rows = session.exec(select(OutboundMessage).where(condition).order_by(col(OutboundMessage.id))).all()
    return [
        {
            "id": m.id,
            "kind": m.kind,
            "recipient": m.recipient,
            "attempts": m.attempts,
            "since": _iso(m.next_attempt_at if m.state != "failed" else m.created_at),
            "error": (m.last_error or "")[:80],
        }
        for m in rows
    ]


def _overdue_urgent(session: Session, now: datetime, sla_hours: float) -> list[Row]:
    overdue = session.exec(
        select(Observation)
        .where(
            col(Observation.urgent).is_(True),
            Observation.ack_state == "new",
            Observation.created_at <= now - timedelta(hours=sla_hours),
        )
        .order_by(col(Observation.created_at))
    ).all()
    return [
        {
            "id": o.id,
            "created": _iso(o.created_at),
            "department_id": o.target_department_id,
            "escalation_level": o.escalation_level,
            "area": o.product_area,
        }
        for o in overdue
    ]


def _unplaced_in_last_plan(session: Session) -> list[Row]:
    plan = session.exec(select(PlanRun).where(col(PlanRun.dry_run).is_(False)).order_by(col(PlanRun.id).desc())).first()
    return [
        {k: v for k, v in entry.items() if isinstance(v, (str, int, float))}
        for entry in (plan.unplaced if plan else [])
    ]


def stuck_items(session: Session, *, now: datetime, sla_hours: float) -> dict[str, list[Row]]:
    """Everything that needs a human (see the module docstring), one list per kind of :data:`STUCK_KINDS`."""
    state, due = col(OutboundMessage.state), col(OutboundMessage.next_attempt_at)
    return {
        "mail_failed": _mail_rows(session, state == "failed"),
        "mail_stuck_sending": _mail_rows(session, (state == "sending") & (due <= now)),
        "mail_pending_backlog": _mail_rows(session, (state == "pending") & (due <= now - PENDING_BACKLOG)),
        "urgent_unacknowledged": _overdue_urgent(session, now, sla_hours),
        "unplaced_in_last_plan": _unplaced_in_last_plan(session),
        **needs_a_human(session, now=now),
    }


# --- what else needs a human (issue 12) -------------------------------------------------------------


def needs_a_human(session: Session, *, now: datetime) -> dict[str, list[Row]]:
    """The checks beyond stuck mail and observations: ``policy_unusable``, ``rotations_without_mentor``,
    ``observations_for_inactive_departments`` (see the module docstring)."""
    from frontline.core import clock

    today = now.astimezone(clock.org_tz()).date()
    return {
        "policy_unusable": policy_problems(session),
        "rotations_without_mentor": rotations_without_mentor(session, today),
        "observations_for_inactive_departments": observations_for_inactive_departments(session),
        "connectors_failing": connectors_failing(session),
        "routing_table_unknown_departments": routing_table_problems(session),
        "scim_deactivations_held": scim_deactivations_held(session),
        "scim_users_not_employees": scim_users_not_employees(session),
    }


def scim_users_not_employees(session: Session) -> list[Row]:
    """SCIM Users the identity provider sent without a work e-mail or a department: no employee yet."""
    from frontline.people.scim import unprovisioned_users

    return [
        {"scim_id": u["scim_id"], "userName": u["userName"], "missing": u["missing"], "since": _iso(u["since"])}
        for u in unprovisioned_users(session)
    ]


def scim_deactivations_held(session: Session) -> list[Row]:
    """SCIM deactivations the leaver safety rule holds for HR (``frontline scim leavers confirm``)."""
    from frontline.people.scim import held_leavers

    return [
        {"employee_id": h["employee_id"], "name": h["name"], "held_since": _iso(h["held_since"])}
        for h in held_leavers(session)
    ]


def routing_table_problems(session: Session) -> list[Row]:
    """Policy routing-table entries naming a department the roster has no active department for."""
    from frontline.core.errors import PolicyError
    from frontline.core.policy import load_policy
    from frontline.observations.routing import table_problems

    try:
        policy = load_policy()
    except PolicyError:
        return []  # reported under policy_unusable
    active = session.exec(select(Department.name).where(col(Department.active).is_(True))).all()
    if not active:
        return []  # no roster yet
    return [{"problem": p} for p in table_problems(policy.observations.area_departments, active)]


def connectors_failing(session: Session) -> list[Row]:
    """Connectors (calendar feeds) whose last attempt failed: their time off is as of their last success."""
    from frontline.operations.connectors import connector_rows

    return [
        {
            "connector": c["connector"],
            "last_error_at": _iso(c["last_error_at"]),
            "last_error": c["last_error"],
            "last_success_at": _iso(c["last_success_at"]) or "never",
        }
        for c in connector_rows(session)
        if c["failing"]
    ]


def policy_problems(session: Session) -> list[Row]:
    """Why the policy file cannot be used (missing, unreadable, invalid: every job, the observation form and
    the API stop), or the support department it names that the roster has no active department for."""
    from frontline.core.errors import PolicyError
    from frontline.core.policy import load_policy

    try:
        policy = load_policy()
    except PolicyError as exc:
        return [{"problem": problem} for problem in exc.problems]
    departments = session.exec(select(Department.name, Department.active)).all()
    if departments and not any(name == policy.support_department and active for name, active in departments):
        return [
            {
                "problem": f"support_department {policy.support_department!r} is not an active department of the "
                "roster: mentor pairing cannot run (fix frontline.toml or departments.csv)"
            }
        ]
    return []


def rotations_without_mentor(session: Session, today: date) -> list[Row]:
    """Rotations announced to their rotator (``invited``) and not over that have no active mentor pairing:
    the mentor became absent or left after the invite went out and the pairing job found nobody else (or
    they never had one). The rotator is alone on the front line until someone pairs them by hand."""
    paired = select(col(MentorPairing.rotation_id)).where(col(MentorPairing.status) == "active")
    rows = session.exec(
        select(Rotation, Employee)
        .join(Employee, col(Employee.id) == col(Rotation.employee_id))
        .where(
            col(Rotation.status) == "invited",
            col(Rotation.announced_state) == "invited",
            col(Rotation.end) >= today,
            col(Rotation.id).not_in(paired),
        )
        .order_by(col(Rotation.start), col(Rotation.id))
    ).all()
    return [
        {
            "rotation": rotation.id,
            "rotator": employee.employee_id,
            "start": rotation.start.isoformat(),
            "end": rotation.end.isoformat(),
            "state": "under way" if rotation.start <= today else "invited",
            "mentor": "lost after the invite" if rotation.announced_mentor_id is not None else "never paired",
        }
        for rotation, employee in rows
    ]


def observations_for_inactive_departments(session: Session) -> list[Row]:
    """New (unacknowledged) observations addressed to a department the roster import deactivated: its head
    lost access and it gets no digest, so nobody will read them unless HR acts."""
    rows = session.exec(
        select(Observation, Department)
        .join(Department, col(Department.id) == col(Observation.target_department_id))
        .where(col(Department.active).is_(False), col(Observation.ack_state) == "new")
        .order_by(col(Observation.id))
    ).all()
    return [
        {
            "id": obs.id,
            "department": department.name,
            "deactivated_on": department.deactivated_on.isoformat() if department.deactivated_on else "",
            "created": _iso(obs.created_at),
            "urgent": obs.urgent,
        }
        for obs, department in rows
    ]


# --- Prefect -------------------------------------------------------------------------------------


LATE_AFTER = timedelta(seconds=60)  # a run still Scheduled this long after its time is late (no worker took it)
STUCK_PENDING = timedelta(minutes=10)  # claimed by a worker that never started it (stopped at that moment)
PREFECT_FLAGS = ("failed_last_24h", "late_runs", "work_pools_without_worker")


def prefect_runs(now: datetime) -> dict[str, list[Row]] | str:
    """From the Prefect API: ``deployments`` (last and next run of each), ``failed_last_24h`` (failed or
    crashed runs), ``late_runs`` (runs past their start time that no worker has taken), ``work_pools`` (each
    pool the deployments use: status, workers polling) and ``work_pools_without_worker`` (pools paused or
    that no worker has polled lately, so nothing runs); or why the API could not be asked."""
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        return "no Prefect API configured (PREFECT_API_URL unset): showing the audit trail only"
    from prefect.client.orchestration import get_client

    try:
        with get_client(sync_client=True) as client:
            flows_by_id = {f.id: f.name for f in client.read_flows()}
            deployments = client.read_deployments()
            pools = _work_pools(client, sorted({d.work_pool_name for d in deployments if d.work_pool_name}), now)
            return {
                "deployments": _deployment_rows(client, flows_by_id, deployments),
                "failed_last_24h": _failed_runs(client, flows_by_id, now),
                "late_runs": _late_runs(client, flows_by_id, now),
                "work_pools": pools,
                "work_pools_without_worker": [p for p in pools if p["problem"]],
            }
    except Exception as exc:  # noqa: BLE001 - the report must still come out
        return f"Prefect API at {PREFECT_API_URL.value()} not reachable: {type(exc).__name__}: {exc}"[:300]


def _work_pools(client: Any, names: list[str], now: datetime) -> list[Row]:
    """Each work pool: its status and the workers that polled it lately (a heartbeat within three of their
    heartbeat intervals). A pool that is paused, missing or that no worker polls runs nothing."""
    rows = []
    for name in names:
        try:
            pool = client.read_work_pool(name)
        except Exception as exc:  # noqa: BLE001 - e.g. a deployment naming a pool nobody created
            rows.append(
                {"pool": name, "status": "missing", "workers_polling": 0, "last_poll": "", "problem": str(exc)[:80]}
            )
            continue
        workers = client.read_workers_for_work_pool(name)
        beats = [w.last_heartbeat_time for w in workers if w.last_heartbeat_time]
        polling = [
            w
            for w in workers
            if w.last_heartbeat_time
            and now - w.last_heartbeat_time <= timedelta(seconds=3 * (w.heartbeat_interval_seconds or 30))
        ]
        problem = ""
        if pool.is_paused:
            problem = "paused: no run starts"
        elif not polling:
            problem = "offline: no worker polling" + (f" since {_iso(max(beats))}" if beats else " (never)")
        rows.append(
            {
                "pool": name,
                "status": getattr(pool.status, "value", pool.status) or "",
                "workers_polling": len(polling),
                "last_poll": _iso(max(beats)) if beats else "",
                "problem": problem,
            }
        )
    return rows


def _late_runs(client: Any, flows_by_id: dict[Any, str], now: datetime) -> list[Row]:
    """Runs that should have started over :data:`LATE_AFTER` ago and were not taken by a worker: state
    ``Late`` (Prefect's own mark) or still ``Scheduled``; and runs ``Pending`` for over :data:`STUCK_PENDING`
    (a worker claimed them and stopped before starting them). Runs waiting for a concurrency slot are not late."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterExpectedStartTime,
        FlowRunFilterState,
        FlowRunFilterStateName,
    )
    from prefect.client.schemas.sorting import FlowRunSort

    def runs(names: list[str], before: datetime) -> list[Any]:
        return client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(name=FlowRunFilterStateName(any_=names)),
                expected_start_time=FlowRunFilterExpectedStartTime(before_=before),
            ),
            sort=FlowRunSort.EXPECTED_START_TIME_ASC,
            limit=LIST_LIMIT,
        )

    late = runs(["Late", "Scheduled"], now - LATE_AFTER)
    late += [r for r in runs(["Pending"], now - STUCK_PENDING) if r.state and now - r.state.timestamp > STUCK_PENDING]
    return [
        {
            "flow_run": r.name,
            "flow": flows_by_id.get(r.flow_id, "?"),
            "state": r.state_name,
            "expected_start": _iso(r.expected_start_time),
            "late_by": _ago(r.expected_start_time, now).removesuffix(" ago"),
        }
        for r in late
    ]


def _deployment_rows(client: Any, flows_by_id: dict[Any, str], deployments: list[Any]) -> list[Row]:
    """Per deployment: the last finished (or running) run and the next scheduled one."""
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    finished = [StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED, StateType.RUNNING]

    def runs_in(deployment_id: Any, states: list[StateType], sort: FlowRunSort) -> list[Any]:
        return client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=states))),
            sort=sort,
            limit=1,
        )

    rows = []
    for d in sorted(deployments, key=lambda d: d.name):
        last = runs_in(d.id, finished, FlowRunSort.START_TIME_DESC)
        upcoming = runs_in(d.id, [StateType.SCHEDULED], FlowRunSort.EXPECTED_START_TIME_ASC)
        run = last[0] if last else None
        rows.append(
            {
                "deployment": f"{flows_by_id.get(d.flow_id, '?')}/{d.name}",
                "last_state": run.state_name if run else "never",
                "last_run": run.name if run else "",
                "started": _iso(run.start_time) if run else "",
                "seconds": round(run.total_run_time.total_seconds(), 1) if run else "",
                "next": _iso(upcoming[0].expected_start_time) if upcoming else "",
            }
        )
    return rows


def _failed_runs(client: Any, flows_by_id: dict[Any, str], now: datetime) -> list[Row]:
    """The failed or crashed flow runs that started in the 24 hours before ``now`` (newest first)."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterStartTime,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    failed = client.read_flow_runs(
        flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.FAILED, StateType.CRASHED])),
            start_time=FlowRunFilterStartTime(after_=now - timedelta(days=1)),
        ),
        sort=FlowRunSort.START_TIME_DESC,
        limit=LIST_LIMIT,
    )
    return [
        {
            "flow_run": r.name,
            "flow": flows_by_id.get(r.flow_id, "?"),
            "state": r.state_name,
            "started": _iso(r.start_time),
            "message": ((r.state.message if r.state else "") or "")[:80],
        }
        for r in failed
    ]


# --- the report ----------------------------------------------------------------------------------


def _escalation_sla_hours() -> float:
    """The policy's escalation SLA, or its default when the policy cannot be read (the report still comes out)."""
    from frontline.core.policy import Observations, PolicyError, load_policy

    try:
        return load_policy().observations.escalation_sla_hours
    except PolicyError:
        return Observations().escalation_sla_hours


def _connectors(session: Session, now: datetime) -> list[Row]:
    from frontline.operations.connectors import connector_rows

    return [
        {
            "connector": c["connector"],
            "last_success": _ago(c["last_success_at"], now),
            "last_error": _ago(c["last_error_at"], now) if c["last_error_at"] else "-",
            "state": "FAILING" if c["failing"] else "ok",
            "detail": c["last_error"] if c["failing"] else c["last_success"],
            "last_error_detail": c["last_error"] or "-",  # shown even when a success came after it
        }
        for c in connector_rows(session)
    ]


def collect_status(session: Session, *, now: datetime, with_prefect: bool = True) -> dict[str, Any]:
    """The whole report as of ``now``: ``now``, ``database`` (no password), ``jobs``, ``stuck`` (see
    :func:`stuck_items`), ``prefect`` (when asked: see :func:`prefect_runs`, or a ``note`` why not)
    and ``ok`` (nothing stuck, nothing failed, no late run, every work pool polled by a worker)."""
    from sqlalchemy.engine import make_url

    from frontline.core.settings import get_settings

    report: dict[str, Any] = {
        "now": _iso(now),
        "database": make_url(get_settings().database_url).render_as_string(hide_password=True),
        "jobs": last_runs_from_audit(session, flow_names(), now),
        "connectors": _connectors(session, now),
        "stuck": stuck_items(session, now=now, sla_hours=_escalation_sla_hours()),
    }
    if with_prefect:
        prefect = prefect_runs(now)
        report["prefect"] = {"note": prefect} if isinstance(prefect, str) else prefect
    prefect_part = report.get("prefect", {})
    report["ok"] = not any(report["stuck"].values()) and not any(prefect_part.get(k) for k in PREFECT_FLAGS)
    return report
