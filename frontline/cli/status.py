"""``frontline status``: the last run of each job and anything stuck (the report comes from
:func:`frontline.operations.status.collect_status`; this module prints it).

``--check`` exits with status 1 when anything is stuck or needs a human (a policy file that cannot be
used, a rotation without its mentor, a late or crashed flow run, a work pool no worker polls, ...; for
cron/monitoring); ``--json`` prints the
same report as JSON. No secret is ever printed (the database URL is shown without its password).
"""

from __future__ import annotations

import json
from typing import Any

import typer

from frontline.cli.common import echo_table, open_database


def titles() -> dict[str, str]:
    """A heading per kind of stuck work, in the order they are printed."""
    from frontline.operations.status import PENDING_BACKLOG

    return {
        "mail_failed": "Mail that failed for good (frontline mail retry re-queues it)",
        "mail_stuck_sending": "Mail stuck in 'sending' past its lease (a delivery run died; the next run resends it)",
        "mail_pending_backlog": f"Mail due for over {int(PENDING_BACKLOG.total_seconds() // 60)} min and still "
        "pending (is the deliver-mail deployment running?)",
        "urgent_unacknowledged": "Urgent observations past the escalation SLA, unacknowledged",
        "unplaced_in_last_plan": "People the last plan could not place",
        "policy_unusable": "Policy file problems (the jobs, the observation form and the API stop until fixed)",
        "rotations_without_mentor": "Rotations announced or under way without a mentor (`frontline pair` finds "
        "one when it can; else add mentors or pair by hand)",
        "observations_for_inactive_departments": "Unacknowledged observations addressed to a deactivated department "
        "(nobody reads them: acknowledge or re-address them)",
        "connectors_failing": "Connectors whose last attempt failed (their data is as of their last success)",
        "scim_deactivations_held": "SCIM deactivations held for HR by the leaver safety rule "
        "(frontline scim leavers confirm)",
        "scim_users_not_employees": "SCIM users that are no employee yet: map a work e-mail and the enterprise "
        "department at the identity provider",
        "routing_table_unknown_departments": "Routing table entries naming a department the roster lacks "
        "(observations of that area fall back to the support department)",
    }


def prefect_titles() -> dict[str, str]:
    """A heading per kind of Prefect trouble ``--check`` flags."""
    from frontline.operations.status import LATE_AFTER

    return {
        "failed_last_24h": "Failed or crashed flow runs in the last 24 h",
        "late_runs": f"Late flow runs (over {int(LATE_AFTER.total_seconds())} s past their start, taken by no worker)",
        "work_pools_without_worker": "Work pools paused or polled by no worker (start `prefect worker start --pool ...`)",
    }


def status_command(
    json_output: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    check: bool = typer.Option(
        False, "--check", help="Exit with status 1 when anything is stuck, failed or needs a human (see the list)."
    ),
    prefect: bool = typer.Option(True, "--prefect/--no-prefect", help="Also ask the Prefect API (when configured)."),
) -> None:
    """Show the last run of each job and anything stuck (failed mail, overdue urgent observations, ...)."""
    from frontline.core import clock
    from frontline.operations.status import collect_status
    from models import session_scope

    open_database(upgrade=False)
    with session_scope() as session:
        report = collect_status(session, now=clock.utcnow(), with_prefect=prefect)
    if json_output:
        typer.echo(json.dumps(report, indent=2, default=str))
    else:
        echo_report(report)
    if check and not report["ok"]:
        raise typer.Exit(1)


def echo_report(report: dict[str, Any]) -> None:
    """The report as text: the jobs, Prefect's view, then each kind of stuck work (at most 10 rows each)."""
    from frontline.operations.status import LIST_LIMIT

    typer.echo(f"Frontline status at {report['now']} (database {report['database']})\n")
    typer.echo("Last run of each job (audit trail):")
    echo_table(report["jobs"], ["job", "last_run", "ago", "action", "summary"])
    if report.get("connectors"):
        typer.echo("\nConnectors (last success, last error):")
        echo_table(
            report["connectors"], ["connector", "state", "last_success", "last_error", "detail", "last_error_detail"]
        )
    prefect_part = report.get("prefect")
    if prefect_part is not None:
        typer.echo("")
        if "note" in prefect_part:
            typer.echo(f"Prefect: {prefect_part['note']}")
        else:
            typer.echo("Prefect deployments:")
            echo_table(prefect_part["deployments"])
            typer.echo("\nWork pools (a pool no worker polls runs nothing):")
            echo_table(prefect_part["work_pools"])
            for key, title in prefect_titles().items():
                items = prefect_part[key]
                typer.echo(f"\n{title}: {len(items)}")
                if items:
                    echo_table(items)
    for key, title in titles().items():
        items = report["stuck"][key]
        typer.echo(f"\n{title}: {len(items)}")
        if items:
            echo_table(items[:LIST_LIMIT])
            if len(items) > LIST_LIMIT:
                typer.echo(f"... and {len(items) - LIST_LIMIT} more")
    typer.echo("\nall clear" if report["ok"] else "\nattention needed")
