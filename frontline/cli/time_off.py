"""``frontline time-off``: read out-of-office calendar feeds (the policy's ``[time_off]``) into absences."""

from __future__ import annotations

from datetime import date

import typer

from frontline.cli.common import console_error, echo_table, load_policy_or_exit, open_database, run_flow

app = typer.Typer(
    help="Time off from out-of-office calendars (iCalendar feeds in the policy's [time_off]; see README).",
    no_args_is_help=True,
)


@app.command("sync")
def sync_command(
    as_of: str | None = typer.Option(None, "--as-of", help="Day to read from (YYYY-MM-DD; default today)."),
    replan: bool = typer.Option(
        True, "--replan/--no-replan", help="Re-plan when new time off overlaps a live rotation (default)."
    ),
) -> None:
    """Read every calendar feed into absences (a Prefect flow run, like the scheduled sync-time-off).

    Each feed replaces only the absences it gave before (absences.csv's rows stay). A feed that cannot be read (server down, not an iCalendar file, cut off, an unknown employee_id) changes nothing, is named with the reason, and the command exits with 1 after the other feeds are done. Feed URLs are never printed.
    """
    from frontline.core.clock import parse_day

    day: date | None = None
    if as_of is not None:
        try:
            day = parse_day(as_of)
        except ValueError as exc:
            console_error(f"--as-of: {exc}")
            raise typer.Exit(2) from None
    policy = load_policy_or_exit()
    if not policy.time_off.feeds:
        typer.echo("no calendar feeds in the policy's [time_off] (see frontline.example.toml); nothing to do")
        return
    open_database()
    from flows.jobs import JobFailed

    try:
        data, errors = run_flow("sync-time-off", as_of=day, replan=replan), []
    except JobFailed as exc:
        data, errors = exc.data, str(exc).split("; ")
    for line in data["feeds"]:
        typer.echo(line)
    echo_table([{"what": k, "value": v} for k, v in data["summary"].items()], ["what", "value"])
    if errors:
        for part in errors:
            console_error(part)
        raise typer.Exit(1)
