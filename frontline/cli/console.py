"""``frontline users ...`` (who may use the HR console) and ``frontline console link`` (bootstrap sign-in)."""

from __future__ import annotations

import secrets

import typer

from frontline.cli.common import echo_table, fail, open_database

users_app = typer.Typer(
    help="Who may use the HR web console (HR admins; heads and rotators need no entry).", no_args_is_help=True
)
app = typer.Typer(help="The HR web console (served by `frontline serve` under /console).", no_args_is_help=True)


@users_app.command("add-hr")
def add_hr_command(email: str = typer.Argument(..., help="Work email of the HR admin.")) -> None:
    """Give EMAIL the HR admin role in the console (sees and changes everything)."""
    from frontline.access.accounts import add_hr
    from models import session_scope

    open_database()
    try:
        with session_scope() as session:
            user = add_hr(session, email, actor="cli")
            typer.echo(f"{user.email} is an HR admin of the console")
    except ValueError as exc:
        fail(str(exc))


@users_app.command("remove-hr")
def remove_hr_command(email: str = typer.Argument(..., help="Work email of the HR admin.")) -> None:
    """Take the HR admin role away from EMAIL (effective on their next page view)."""
    from frontline.access.accounts import remove_hr
    from models import session_scope

    open_database()
    with session_scope() as session:
        if not remove_hr(session, email, actor="cli"):
            fail(f"{email} is not an HR admin")
    typer.echo(f"{email} is no longer an HR admin")


@users_app.command("list")
def list_command() -> None:
    """List the HR admins of the console."""
    from frontline.access.accounts import list_hr
    from models import session_scope

    open_database()
    with session_scope() as session:
        rows = list_hr(session)
    echo_table(rows)


@app.command("link")
def link_command(email: str = typer.Argument(..., help="Email of an HR admin, department head or rotator.")) -> None:
    """Print a one-time sign-in link for EMAIL (valid 15 minutes) without sending mail, for bootstrap/testing."""
    from frontline.access.principal import load_principal
    from frontline.core.links import signin_url
    from models import session_scope

    open_database()
    with session_scope() as session:
        principal = load_principal(session, email)
        if principal is None:
            fail(
                f"{email} has no console role: add it with `frontline users add-hr {email}` "
                "(or it must be a department head or an active employee)"
            )
    typer.echo(signin_url(principal.email, secrets.token_urlsafe(16)))
