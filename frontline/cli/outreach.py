"""``frontline invites send``, ``frontline reminders send`` and ``frontline escalations run``: the mail jobs that
the scheduler runs (flows ``send-invites``, ``send-reminders``, ``escalate-overdue``), by hand. Each queues
its mail in the outbox (``frontline mail send`` delivers it) and prints what it queued, to whom; with
``--dry-run`` the job makes the same decisions, prints what would be sent to whom and writes nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

import typer

from frontline.cli.common import echo_table, fail, load_policy_or_exit, open_database, run_flow
from frontline.core import clock

invites_app = typer.Typer(help="Calendar invites, updates and cancellations (flow send-invites).", no_args_is_help=True)
reminders_app = typer.Typer(
    help="Reminders before a rotation, day-one welcomes, weekly nudges (flow send-reminders).", no_args_is_help=True
)
escalations_app = typer.Typer(
    help="Second escalation of urgent observations nobody acknowledged in time (flow escalate-overdue).",
    no_args_is_help=True,
)

AS_OF = typer.Option(None, "--as-of", help="Day to run as (YYYY-MM-DD; default today).")
DRY_RUN = typer.Option(False, "--dry-run", help="Show what would be sent to whom; queue nothing.")


def _day(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return clock.parse_day(value)
    except ValueError as exc:
        fail(f"--as-of: {exc}")


def _print(result: dict[str, Any]) -> None:
    """The counts, then one line per message (kind, to, subject): queued, or that would be."""
    dry = result.get("dry_run", False)
    counts = [f"{k} {v}" for k, v in result.items() if isinstance(v, int) and not isinstance(v, bool)]
    if counts:
        typer.echo(", ".join(counts) + (" (dry run: nothing queued)" if dry else ""))
    messages = result.get("messages") or []
    typer.echo(f"{'would send' if dry else 'queued'} {len(messages)} message(s){':' if messages else ''}")
    if messages:
        echo_table(messages, ["kind", "to", "subject"])
    if messages and not dry:
        typer.echo("delivered by the next deliver-mail run, or now with `frontline mail send`")


@invites_app.command("send")
def invites_send(
    as_of: str | None = AS_OF,
    weeks: int = typer.Option(8, "--weeks", min=1, max=52, help="Announce rotations starting within this many weeks."),
    dry_run: bool = DRY_RUN,
) -> None:
    """Queue calendar invites, updates and cancellations for rotations starting within --weeks."""
    day = _day(as_of)
    load_policy_or_exit()
    open_database()

    result = run_flow("send-invites", as_of=day, announce_weeks=weeks, dry_run=dry_run)
    _print(result)


@reminders_app.command("send")
def reminders_send(as_of: str | None = AS_OF, dry_run: bool = DRY_RUN) -> None:
    """Queue the reminders due (policy reminders.days_before), day-one welcomes and weekly nudges."""
    day = _day(as_of)
    load_policy_or_exit()
    open_database()

    result = run_flow("send-reminders", as_of=day, dry_run=dry_run)
    _print(result)


@escalations_app.command("run")
def escalations_run(as_of: str | None = AS_OF, dry_run: bool = DRY_RUN) -> None:
    """Escalate urgent observations nobody acknowledged within observations.escalation_sla_hours, once more."""
    day = _day(as_of)
    load_policy_or_exit()
    open_database()

    moment = None if day is None else datetime.combine(day, time(23, 59), tzinfo=clock.org_tz()).astimezone(UTC)
    result = run_flow("escalate-overdue", as_of=moment, dry_run=dry_run)
    ids = result["escalated"]
    verb = "would escalate" if dry_run else "escalated"
    typer.echo(f"{verb} {len(ids)} observation(s){': ' + ', '.join(map(str, ids)) if ids else ''}")
    _print(result)
