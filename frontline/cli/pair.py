"""``frontline pair``: pair rotators with mentors; ``frontline mentors``: load per mentor per week;
``frontline surveys``: queue the wrap-up surveys."""

from __future__ import annotations

from datetime import date

import typer

from frontline.cli.common import echo_table, load_policy_or_exit, open_database, run_flow
from frontline.core import clock


def _as_of(value: str | None, option: str = "--as-of") -> date | None:
    if value is None:
        return None
    try:
        return clock.parse_day(value)
    except ValueError as exc:
        from frontline.cli.common import fail

        fail(f"{option}: {exc}")


def _print(out: dict) -> None:
    s = out["summary"]
    verb = "would create" if s["dry_run"] else "created"
    typer.echo(
        f"pairings: {s['kept']} kept, {s['created']} {verb}, {s['replaced']} replaced, "
        f"{s['cancelled']} cancelled, {s['unmatched']} unmatched"
    )
    if s["objective"] is not None:
        gap = "-" if s["gap"] is None else f"{100 * s['gap']:.3f} %"
        typer.echo(f"objective {s['objective']}  bound {s['bound']}  gap {gap}  ({s['method']}, {s['seconds']} s)")
    if out["created"]:
        typer.echo("\nmatched:")
        echo_table(out["created"], ["rotation_id", "rotator", "start", "mentor", "checkin", "cost"])
    if out["replaced"]:
        typer.echo("\nreplaced (both sides are told by the next invites run):")
        echo_table(out["replaced"], ["rotation_id", "rotator", "old_mentor", "reason", "new_mentor"])
    if out["unmatched"]:
        typer.echo("\nunmatched:")
        echo_table(out["unmatched"], ["rotation_id", "rotator", "start", "reason", "relaxation"])


def pair_command(
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be paired; write nothing."),
    as_of: str | None = typer.Option(None, "--as-of", help="Day to plan from (YYYY-MM-DD; default today)."),
    flow: bool = typer.Option(
        True,
        "--flow/--no-flow",
        help="Run as a job (default: recorded in the audit, or on the Prefect server when PREFECT_API_URL is set) or call the service directly.",
    ),
) -> None:
    """Pair every planned rotation of the next 52 weeks with a mentor from the support team.

    Keeps existing pairings; re-pairs only rotations whose mentor left or is absent; never gives anyone the same mentor twice. Prints the matches, the unmatched with the reason and the smallest relaxation that would help, and the objective, lower bound and gap of the optimiser.
    """
    from frontline.cli.common import fail
    from frontline.core.errors import PairingError

    day = _as_of(as_of)
    policy = load_policy_or_exit()
    open_database()
    try:
        if flow:
            from frontline.mentors.service import support_department
            from models import session_scope

            with session_scope() as session:
                support_department(session, policy)  # refuse a misconfigured policy before starting Prefect

            out = run_flow("pair-mentors", as_of=day, dry_run=dry_run)
        else:
            from frontline.mentors.service import pair_mentors
            from models import session_scope

            with session_scope() as session:
                result = pair_mentors(session, policy, as_of=day, actor="cli", dry_run=dry_run)
                if dry_run:
                    session.rollback()
            out = {
                "summary": result.summary(),
                "created": result.created,
                "replaced": result.replaced,
                "unmatched": result.unmatched,
            }
    except PairingError as exc:
        fail(str(exc))
    _print(out)


def mentors_command(
    weeks: int = typer.Option(8, "--weeks", min=1, max=60, help="How many weeks to show."),
    start: str | None = typer.Option(None, "--from", help="First week (any day of it; default this week)."),
) -> None:
    """Active pairings per mentor per week (columns: ISO week numbers), with capacity."""
    from frontline.mentors.service import mentor_load
    from models import session_scope

    policy = load_policy_or_exit()
    open_database()
    day = _as_of(start, "--from") or clock.today()
    with session_scope() as session:
        rows = mentor_load(session, policy, day, weeks)
    echo_table(rows)


def surveys_command(
    as_of: str | None = typer.Option(None, "--as-of", help="Day (YYYY-MM-DD; default today)."),
    flow: bool = typer.Option(
        True,
        "--flow/--no-flow",
        help="Run as a job (default: recorded in the audit, or on the Prefect server when PREFECT_API_URL is set) or call the service directly.",
    ),
) -> None:
    """Queue the wrap-up survey for both sides of every pairing in its last week (never twice)."""
    day = _as_of(as_of)
    load_policy_or_exit()
    open_database()
    if flow:
        counts = run_flow("send-surveys", as_of=day)
    else:
        from frontline.mentors.surveys import queue_surveys
        from models import session_scope

        with session_scope() as session:
            counts = queue_surveys(session, day, actor="cli")
    typer.echo(", ".join(f"{k} {v}" for k, v in counts.items()))
