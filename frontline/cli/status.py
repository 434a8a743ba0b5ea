"""``frontline status``: the last run of each job and anything stuck.

Sources:

* the AuditEvent table: every flow records an event with actor ``flow:<flow name>`` when it finishes
  (works without a Prefect server, e.g. for the demo);
* the Prefect API, when one is configured (``PREFECT_API_URL``): per deployment the last finished run
  (state, name, start, duration) and the next scheduled one, and the failed/crashed runs of the last day;
* stuck work in the Frontline database: mail in ``failed``, mail ``sending`` past its lease (a worker died),
  mail due for over 30 minutes and still ``pending`` (delivery not running), urgent observations past the
  escalation SLA and unacknowledged, people the last plan could not place.

``--check`` exits with status 1 when anything is stuck (for cron/monitoring); ``--json`` prints the
same report as JSON. No secret is ever printed (the database URL is shown without its password).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import typer

from frontline.cli.common import echo_table, open_database

PENDING_BACKLOG = timedelta(minutes=30)
LIST_LIMIT = 10


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


def last_runs_from_audit(session, jobs: list[str], now: datetime) -> list[dict[str, Any]]:
    """Last AuditEvent per flow (``actor = flow:<name>``), one row per job; jobs never run say so."""
    from sqlalchemy import func
    from sqlmodel import select

    from models import AuditEvent

    latest = (
        select(AuditEvent.actor, func.max(AuditEvent.id).label("id"))
        .where(AuditEvent.actor.like("flow:%"))
        .group_by(AuditEvent.actor)
        .subquery()
    )
    events = {
        e.actor.removeprefix("flow:"): e
        for e in session.exec(select(AuditEvent).join(latest, AuditEvent.id == latest.c.id)).all()
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


def stuck_items(session, *, now: datetime, sla_hours: float) -> dict[str, list[dict[str, Any]]]:
    """Everything that needs a human: see the module docstring."""
    from sqlmodel import select

    from models import Observation, OutboundMessage, PlanRun

    def mail_rows(condition) -> list[dict[str, Any]]:
        rows = session.exec(select(OutboundMessage).where(condition).order_by(OutboundMessage.id)).all()
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

    stuck: dict[str, list[dict[str, Any]]] = {
        "mail_failed": mail_rows(OutboundMessage.state == "failed"),
        "mail_stuck_sending": mail_rows(
            (OutboundMessage.state == "sending") & (OutboundMessage.next_attempt_at <= now)
        ),
        "mail_pending_backlog": mail_rows(
            (OutboundMessage.state == "pending") & (OutboundMessage.next_attempt_at <= now - PENDING_BACKLOG)
        ),
    }
    overdue = session.exec(
        select(Observation)
        .where(
            Observation.urgent == True,  # noqa: E712 - SQL expression
            Observation.ack_state == "new",
            Observation.created_at <= now - timedelta(hours=sla_hours),
        )
        .order_by(Observation.created_at)
    ).all()
    stuck["urgent_unacknowledged"] = [
        {
            "id": o.id,
            "created": _iso(o.created_at),
            "department_id": o.target_department_id,
            "escalation_level": o.escalation_level,
            "area": o.product_area,
        }
        for o in overdue
    ]
    plan = session.exec(select(PlanRun).where(PlanRun.dry_run == False).order_by(PlanRun.id.desc())).first()  # noqa: E712
    stuck["unplaced_in_last_plan"] = [
        {k: v for k, v in entry.items() if isinstance(v, (str, int, float))}
        for entry in (plan.unplaced if plan else [])
    ]
    return stuck


def prefect_runs(now: datetime) -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | str:
    """(last run per deployment, failed runs of the last 24 h) from the Prefect API, or why not."""
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        return "no Prefect API configured (PREFECT_API_URL unset): showing the audit trail only"
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterStartTime,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    finished = [StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED, StateType.RUNNING]
    try:
        with get_client(sync_client=True) as client:
            deployments = client.read_deployments()
            flows_by_id = {f.id: f.name for f in client.read_flows()}
            rows = []
            for d in sorted(deployments, key=lambda d: d.name):
                by_deployment = DeploymentFilter(id=DeploymentFilterId(any_=[d.id]))
                last = client.read_flow_runs(
                    deployment_filter=by_deployment,
                    flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=finished))),
                    sort=FlowRunSort.START_TIME_DESC,
                    limit=1,
                )
                upcoming = client.read_flow_runs(
                    deployment_filter=by_deployment,
                    flow_run_filter=FlowRunFilter(
                        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))
                    ),
                    sort=FlowRunSort.EXPECTED_START_TIME_ASC,
                    limit=1,
                )
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
            failed = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.FAILED, StateType.CRASHED])),
                    start_time=FlowRunFilterStartTime(after_=now - timedelta(days=1)),
                ),
                sort=FlowRunSort.START_TIME_DESC,
                limit=LIST_LIMIT,
            )
            failures = [
                {
                    "flow_run": r.name,
                    "flow": flows_by_id.get(r.flow_id, "?"),
                    "state": r.state_name,
                    "started": _iso(r.start_time),
                    "message": ((r.state.message if r.state else "") or "")[:80],
                }
                for r in failed
            ]
    except Exception as exc:  # noqa: BLE001 - the report must still come out
        return f"Prefect API at {PREFECT_API_URL.value()} not reachable: {type(exc).__name__}: {exc}"[:300]
    return rows, failures


def collect_status(now: datetime | None = None, *, with_prefect: bool = True) -> dict[str, Any]:
    from sqlalchemy.engine import make_url

    from frontline.core.policy import PolicyError, load_policy
    from frontline.core.settings import get_settings
    from models import session_scope, utcnow

    now = now or utcnow()
    settings = get_settings()
    try:
        sla_hours = load_policy().observations.escalation_sla_hours
    except PolicyError:
        from frontline.core.policy import Observations

        sla_hours = Observations().escalation_sla_hours
    with session_scope() as session:
        report: dict[str, Any] = {
            "now": _iso(now),
            "database": make_url(settings.database_url).render_as_string(hide_password=True),
            "jobs": last_runs_from_audit(session, flow_names(), now),
            "stuck": stuck_items(session, now=now, sla_hours=sla_hours),
        }
    if with_prefect:
        prefect = prefect_runs(now)
        if isinstance(prefect, str):
            report["prefect"] = {"note": prefect}
        else:
            report["prefect"] = {"deployments": prefect[0], "failed_last_24h": prefect[1]}
    report["ok"] = not any(report["stuck"].values()) and not report.get("prefect", {}).get("failed_last_24h")
    return report


TITLES = {
    "mail_failed": "Mail that failed for good (frontline mail retry re-queues it)",
    "mail_stuck_sending": "Mail stuck in 'sending' past its lease (a delivery run died; the next run resends it)",
    "mail_pending_backlog": f"Mail due for over {int(PENDING_BACKLOG.total_seconds() // 60)} min and still pending "
    "(is the deliver-mail deployment running?)",
    "urgent_unacknowledged": "Urgent observations past the escalation SLA, unacknowledged",
    "unplaced_in_last_plan": "People the last plan could not place",
}


def status_command(
    json_output: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    check: bool = typer.Option(False, "--check", help="Exit with status 1 when anything is stuck or failed."),
    prefect: bool = typer.Option(True, "--prefect/--no-prefect", help="Also ask the Prefect API (when configured)."),
) -> None:
    """Show the last run of each job and anything stuck (failed mail, overdue urgent observations, ...)."""
    open_database(upgrade=False)
    report = collect_status(with_prefect=prefect)
    if json_output:
        typer.echo(json.dumps(report, indent=2, default=str))
    else:
        typer.echo(f"Frontline status at {report['now']} (database {report['database']})\n")
        typer.echo("Last run of each job (audit trail):")
        echo_table(report["jobs"], ["job", "last_run", "ago", "action", "summary"])
        prefect_part = report.get("prefect")
        if prefect_part is not None:
            typer.echo("")
            if "note" in prefect_part:
                typer.echo(f"Prefect: {prefect_part['note']}")
            else:
                typer.echo("Prefect deployments:")
                echo_table(prefect_part["deployments"])
                typer.echo("\nFailed or crashed flow runs in the last 24 h:")
                echo_table(prefect_part["failed_last_24h"])
        for key, title in TITLES.items():
            items = report["stuck"][key]
            typer.echo(f"\n{title}: {len(items)}")
            if items:
                echo_table(items[:LIST_LIMIT])
                if len(items) > LIST_LIMIT:
                    typer.echo(f"... and {len(items) - LIST_LIMIT} more")
        typer.echo("\nall clear" if report["ok"] else "\nattention needed")
    if check and not report["ok"]:
        raise typer.Exit(1)
