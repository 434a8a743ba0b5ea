"""``frontline requests``: HR's queue of change requests from rotators and department heads."""

from __future__ import annotations

import typer

from frontline.cli.common import echo_table, fail, open_database, run_in_transaction

app = typer.Typer(
    help=(
        "Change requests from rotators (another week, or they cannot do the rotation) and department heads "
        "(move one of their people): list them, approve (the rotation moves, checked against every hard rule; "
        "the next invites run sends the update) or decline. Every outcome is mailed to the requester and audited."
    ),
    no_args_is_help=True,
)

COLUMNS = ["id", "status", "kind", "employee", "department", "rotation", "preferred", "requester", "reason", "decision"]


@app.command("list")
def list_command(
    all_: bool = typer.Option(False, "--all", help="Also the approved and declined ones (newest first)."),
) -> None:
    """Pending requests, oldest first (with --all: every request, newest first)."""
    from frontline.rotations.requests import list_requests
    from models import session_scope

    open_database()
    with session_scope() as session:
        rows = [r.as_row() for r in list_requests(session, None if all_ else "pending")]
    if not rows:
        typer.echo("no pending requests" if not all_ else "no requests")
        return
    echo_table(rows, COLUMNS)


@app.command("approve")
def approve_command(
    request_id: int = typer.Argument(..., help="Request id (see frontline requests list)."),
    week: str | None = typer.Option(
        None, "--week", help="Move to this week (any day of it); default: the first preferred week that fits."
    ),
    note: str = typer.Option("", "--note", help="Optional note for the requester."),
) -> None:
    """Approve a request: the rotation moves to the week (checked against every hard rule), or a person who cannot do it is released from it. The requester is mailed; the next invites run sends the rotator the update."""
    from frontline.core.clock import parse_day
    from frontline.rotations.requests import approve

    try:
        day = parse_day(week) if week else None
    except ValueError as exc:
        fail(f"--week: {exc}")

    def act(session, policy):
        req = approve(session, policy, request_id, "cli", week=day, note=note)
        return f"request {req.id} approved: {req.outcome}"

    run_in_transaction(act)


@app.command("decline")
def decline_command(
    request_id: int = typer.Argument(..., help="Request id (see frontline requests list)."),
    reason: str = typer.Option(..., "--reason", help="Why (the requester reads it; kept in the audit trail)."),
) -> None:
    """Decline a request; the requester is mailed the reason."""
    from frontline.rotations.requests import decline

    def act(session, _policy):
        req = decline(session, request_id, "cli", reason)
        return f"request {req.id} declined"

    run_in_transaction(act)
