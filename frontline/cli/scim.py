"""``frontline scim``: bearer tokens for identity providers' SCIM clients, and the deactivations held for HR."""

from __future__ import annotations

import typer

from frontline.cli.common import echo_table, fail, open_database

app = typer.Typer(
    help="SCIM 2.0 provisioning (Okta, Entra ID) at <FRONTLINE_BASE_URL>/scim/v2 (see README).", no_args_is_help=True
)
token_app = typer.Typer(help="Bearer tokens of the identity providers' SCIM clients.", no_args_is_help=True)
leavers_app = typer.Typer(
    help="Deactivations held by the leaver safety rule: list (default) or confirm.", invoke_without_command=True
)
app.add_typer(token_app, name="token")
app.add_typer(leavers_app, name="leavers")


@token_app.command("create")
def token_create(
    name: str = typer.Option(..., "--name", help="A name to recognise and revoke it by, e.g. okta"),
) -> None:
    """Create a token and print its secret once (only a hash is stored; paste it into the provider)."""
    from frontline.people.scim import create_token
    from models import session_scope

    open_database()
    with session_scope() as session:
        try:
            row, secret = create_token(session, name)
        except ValueError as exc:
            fail(str(exc))
    typer.echo(f"SCIM token {row.name!r}; keep this secret, it is not shown again:")
    typer.echo(secret)


@token_app.command("revoke")
def token_revoke(name: str = typer.Option(..., "--name", help="Name of the token to revoke")) -> None:
    """Revoke a token at once (the provider's next request gets 401)."""
    from frontline.people.scim import revoke_token
    from models import session_scope

    open_database()
    with session_scope() as session:
        n = revoke_token(session, name)
    if not n:
        fail(f"no active SCIM token called {name!r}")
    typer.echo(f"revoked {n} SCIM token(s) called {name!r}")


@token_app.command("list")
def token_list() -> None:
    """Tokens: names and dates, never secrets."""
    from frontline.people.scim import list_tokens
    from models import session_scope

    open_database()
    with session_scope() as session:
        echo_table(
            [
                {
                    "name": t.name,
                    "created": t.created_at.strftime("%Y-%m-%d"),
                    "revoked": t.revoked_at.strftime("%Y-%m-%d") if t.revoked_at else "",
                }
                for t in list_tokens(session)
            ]
        )


@leavers_app.callback()
def leavers_list(ctx: typer.Context) -> None:
    """Deactivations waiting for HR's confirmation (the employee stays active until confirmed)."""
    if ctx.invoked_subcommand is not None:
        return
    from frontline.people.scim import held_leavers
    from models import session_scope

    open_database()
    with session_scope() as session:
        held = held_leavers(session)
    if not held:
        typer.echo("no deactivation is held")
        return
    echo_table(
        [
            {
                "employee_id": h["employee_id"],
                "name": h["name"],
                "email": h["email"],
                "held since": h["held_since"].strftime("%Y-%m-%d %H:%M"),
            }
            for h in held
        ]
    )


@leavers_app.command("confirm")
def leavers_confirm(
    employee_ids: list[str] = typer.Argument(None, help="Employee ids to confirm (default: with --all)"),
    all_: bool = typer.Option(False, "--all", help="Confirm every held deactivation"),
) -> None:
    """Apply held deactivations: the people leave as any leaver does (future rotations cancelled)."""
    from frontline.people.scim import confirm_leavers
    from models import session_scope

    if not employee_ids and not all_:
        fail("name the employee ids to confirm, or --all")
    open_database()
    with session_scope() as session:
        try:
            done = confirm_leavers(session, None if all_ else list(employee_ids), actor="cli")
        except ValueError as exc:
            fail(str(exc))
    typer.echo(f"{len(done)} employee(s) left: {', '.join(done)}" if done else "no deactivation was held")
