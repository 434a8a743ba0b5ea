"""``frontline calendar feed create|revoke|list``: secret calendar subscription URLs."""

from __future__ import annotations

import typer

from frontline.cli.common import echo_table, fail, open_database

app = typer.Typer(
    help="Calendar subscription feeds (a person's rotations and check-ins, or the team's).", no_args_is_help=True
)
feed = typer.Typer(help="Create, list and revoke secret feed URLs.", no_args_is_help=True)
app.add_typer(feed, name="feed")


@feed.command("create")
def create_command(
    employee: str | None = typer.Option(None, "--employee", help="Employee id (HR system id) or email of the person."),
    team: bool = typer.Option(False, "--team", help="The team feed with every rotation (for HR)."),
    label: str = typer.Option("", help="A note to recognise the feed later."),
) -> None:
    """Create a feed and print its secret URL. The URL is shown ONCE; only its hash is stored."""
    from frontline.calendar.feeds import create_feed, feed_url, find_employee
    from models import session_scope

    if bool(employee) == team:
        fail("say whose feed: --employee ID_OR_EMAIL or --team (one of them, not both)")
    open_database()
    with session_scope() as session:
        employee_pk = None
        if employee:
            person = find_employee(session, employee)
            if person is None:
                fail(f"no employee with id or email {employee!r}")
            employee_pk = person.id
        row, token = create_feed(session, employee_id=employee_pk, label=label, actor="cli")
        feed_id = row.id
    url = feed_url(token)
    typer.echo(f"feed #{feed_id} created. Subscribe with this URL (shown only now; keep it secret):")
    typer.echo(url)
    typer.echo(
        url.replace("https://", "webcal://", 1).replace("http://", "webcal://", 1) + "  (Apple Calendar / Outlook)"
    )


@feed.command("revoke")
def revoke_command(feed_id: int = typer.Argument(..., help="Feed id (from `frontline calendar feed list`).")) -> None:
    """Revoke a feed: its URL answers 404 from now on."""
    from frontline.calendar.feeds import revoke_feed
    from models import session_scope

    open_database()
    with session_scope() as session:
        row, revoked_now = revoke_feed(session, feed_id, actor="cli")
    if row is None:
        fail(f"no feed #{feed_id}")
    if not revoked_now:
        typer.echo(f"feed #{feed_id} was already revoked on {row.revoked_at:%Y-%m-%d}")
        return
    typer.echo(f"feed #{feed_id} revoked")


@feed.command("list")
def list_command() -> None:
    """Every feed with its owner and state (never the secret URL, which is not stored)."""
    from frontline.calendar.feeds import list_feeds
    from models import session_scope

    open_database()
    with session_scope() as session:
        out = list_feeds(session)
    echo_table(out, ["id", "for", "label", "created", "state"])


@app.command("replies")
def replies_command(
    as_of: str | None = typer.Option(
        None, "--as-of", help="The day a decline is judged on (YYYY-MM-DD; default today)."
    ),
) -> None:
    """Read the RSVP replies in the organiser mailbox (a flow run, like the scheduled read-rsvp-replies).

    Accepts and tentatives are recorded on the rotation; a decline opens a change request for HR (once per rotation while one waits). A mail that is not a reply to a current rotation invite of its rotator is skipped with the reason, and nothing is written for it. A mailbox that cannot be used (server down, wrong password, no such folder) changes nothing and the command exits with 1. The password is never printed.
    """
    from frontline.cli.common import console_error, run_flow
    from frontline.core.clock import parse_day
    from frontline.core.settings import get_settings

    day = None
    if as_of is not None:
        try:
            day = parse_day(as_of)
        except ValueError as exc:
            fail(f"--as-of: {exc}")
    if get_settings().imap_url is None:
        typer.echo("FRONTLINE_IMAP_URL is not set: no organiser mailbox to read (README: RSVP replies); nothing to do")
        return
    open_database()
    from flows.jobs import JobFailed

    try:
        data = run_flow("read-rsvp-replies", as_of=day)
    except JobFailed as exc:
        console_error(f"RSVP replies: {exc}")
        raise typer.Exit(1) from None
    for line in data["lines"]:
        typer.echo(line)
    for line in data["skips"]:
        typer.echo(f"skipped {line}")
    echo_table([{"what": k, "count": v} for k, v in data["counts"].items()], ["what", "count"])
