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
    from sqlmodel import or_, select

    from frontline.calendar.feeds import create_feed_token, feed_url
    from frontline.core.audit import record
    from models import Employee, session_scope

    if bool(employee) == team:
        fail("say whose feed: --employee ID_OR_EMAIL or --team (one of them, not both)")
    open_database()
    with session_scope() as session:
        employee_pk = None
        if employee:
            person = session.exec(
                select(Employee).where(or_(Employee.employee_id == employee, Employee.email == employee))
            ).first()
            if person is None:
                fail(f"no employee with id or email {employee!r}")
            employee_pk = person.id
        row, token = create_feed_token(session, employee_id=employee_pk, label=label)
        record(
            session,
            actor="cli",
            action="calendar.feed.create",
            subject_type="calendar_feed",
            subject_id=row.id,
            employee_id=employee_pk,
            team=team,
        )
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
    from frontline.core.audit import record
    from models import CalendarFeedToken, session_scope, utcnow

    open_database()
    with session_scope() as session:
        row = session.get(CalendarFeedToken, feed_id)
        if row is None:
            fail(f"no feed #{feed_id}")
        if row.revoked_at is not None:
            typer.echo(f"feed #{feed_id} was already revoked on {row.revoked_at:%Y-%m-%d}")
            return
        row.revoked_at = utcnow()
        session.add(row)
        record(session, actor="cli", action="calendar.feed.revoke", subject_type="calendar_feed", subject_id=feed_id)
    typer.echo(f"feed #{feed_id} revoked")


@feed.command("list")
def list_command() -> None:
    """Every feed with its owner and state (never the secret URL, which is not stored)."""
    from sqlmodel import select

    from models import CalendarFeedToken, Employee, session_scope

    open_database()
    with session_scope() as session:
        rows = session.exec(select(CalendarFeedToken).order_by(CalendarFeedToken.id)).all()
        out = []
        for r in rows:
            who = session.get(Employee, r.employee_id) if r.employee_id else None
            out.append(
                {
                    "id": r.id,
                    "for": who.email if who else "(team)",
                    "label": r.label,
                    "created": f"{r.created_at:%Y-%m-%d}",
                    "state": f"revoked {r.revoked_at:%Y-%m-%d}" if r.revoked_at else "active",
                }
            )
    echo_table(out, ["id", "for", "label", "created", "state"])
