"""``frontline observe ...`` (observations from the command line) and ``frontline api-token ...``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from frontline.cli.common import echo_table, fail, load_policy_or_exit, open_database

app = typer.Typer(
    help="Front-line observations: add one, list recent ones, print a personal form link.", no_args_is_help=True
)
api_token_app = typer.Typer(help="Bearer tokens for the JSON API (POST /api/observations).", no_args_is_help=True)

if TYPE_CHECKING:
    from sqlmodel import Session

    from models import Employee


def _employee(session: Session, employee_id: str) -> Employee:
    from sqlmodel import select

    from models import Employee

    employee = session.exec(select(Employee).where(Employee.employee_id == employee_id)).first()
    if employee is None:
        fail(f"no employee with id {employee_id!r} (the HR employee_id, as in the roster)")
    return employee


@app.command("add")
def add_command(
    employee: str = typer.Option(..., "--employee", help="HR employee id of the rotator"),
    text: str = typer.Option(..., "--text", help="What happened"),
    impact: int = typer.Option(..., "--impact", help="Customer impact 1-5"),
    area: str = typer.Option("other", "--area", help="Product area (policy taxonomy)"),
    category: str = typer.Option("other", "--category", help="Category (bug, confusing_ux, ...)"),
    customers: int = typer.Option(1, "--customers", help="How many customers mentioned it today"),
    department: str | None = typer.Option(None, "--department", help="Target department (default: suggested)"),
    suggestion: str | None = typer.Option(None, "--suggestion", help="Optional suggestion"),
    urgent: bool = typer.Option(False, "--urgent", help="Needs management attention now (emails the head)"),
    request_id: str | None = typer.Option(None, "--request-id", help="client_request_id for safe retries"),
) -> None:
    """Store one observation (redacted, audited; urgent ones are escalated at once)."""
    from pydantic import ValidationError

    from frontline.observations.intake import ObservationConflict, RateLimited, submit
    from models import session_scope

    policy = load_policy_or_exit()
    open_database()
    data = {
        "text": text,
        "impact": impact,
        "customer_count": customers,
        "product_area": area,
        "category": category,
        "urgent": urgent,
    }
    if department:
        data["target_department"] = department
    if suggestion:
        data["suggestion"] = suggestion
    if request_id:
        data["client_request_id"] = request_id
    try:
        with session_scope() as session:
            rotator = _employee(session, employee)
            result = submit(session, rotator, data, "cli", policy=policy)
            obs = result.observation
    except ValidationError as exc:
        for err in exc.errors(include_url=False, include_input=False):
            typer.echo(f"error: {'.'.join(map(str, err['loc']))}: {err['msg']}", err=True)
        raise typer.Exit(2) from None
    except (RateLimited, ObservationConflict) as exc:
        fail(str(exc))
    verb = "stored" if result.created else "already stored (same --request-id)"
    extra = f"; redacted {obs.redactions}" if obs.redactions else ""
    typer.echo(
        f"observation #{obs.id} {verb} for {result.department_name}{' (urgent: head emailed)' if obs.urgent else ''}{extra}"
    )


@app.command("list")
def list_command(limit: int = typer.Option(20, min=1, help="How many, newest first")) -> None:
    """Recent observations (redacted text, truncated)."""
    from sqlmodel import col, select

    from models import Department, Employee, Observation, session_scope

    open_database()
    with session_scope() as session:
        rows = session.exec(select(Observation).order_by(col(Observation.id).desc()).limit(limit)).all()
        depts = {d.id: d.name for d in session.exec(select(Department)).all()}
        people = {e.id: e.employee_id for e in session.exec(select(Employee)).all()}
        echo_table(
            [
                {
                    "id": o.id,
                    "created": o.created_at.strftime("%Y-%m-%d %H:%M"),
                    "by": people.get(o.rotator_id, ""),
                    "area": o.product_area,
                    "category": o.category,
                    "to": depts.get(o.target_department_id, ""),
                    "impact": o.impact,
                    "urgent": "yes" if o.urgent else "",
                    "state": o.ack_state,
                    "text": (o.text[:50] + "…") if len(o.text) > 50 else o.text,
                }
                for o in rows
            ]
        )


@app.command("themes")
def themes_command(
    start: str = typer.Option(..., "--from", help="First day (YYYY-MM-DD, organisation time zone)"),
    end: str = typer.Option(..., "--to", help="Last day, included (YYYY-MM-DD)"),
    department: str | None = typer.Option(None, "--department", help="Only themes addressed to this department"),
    fmt: str = typer.Option("table", "--format", help="table | json"),
) -> None:
    """Themes of the observations filed between two days: label and observation ids (the grouping the digest and the console use)."""
    import json
    from datetime import datetime, time, timedelta

    from sqlmodel import select

    from frontline.core import clock
    from frontline.digests.grouping import themes_between
    from models import Department, session_scope

    if fmt not in ("table", "json"):
        fail("--format: table or json")
    try:
        first, last = clock.parse_day(start), clock.parse_day(end)
    except ValueError as exc:
        fail(f"--from/--to: {exc}")
    if last < first:
        fail("--to is before --from")
    tz = clock.org_tz()
    since = datetime.combine(first, time(), tz)
    until = datetime.combine(last + timedelta(days=1), time(), tz)
    open_database()
    with session_scope() as session:
        if (
            department is not None
            and session.exec(select(Department).where(Department.name == department)).first() is None
        ):
            fail(f"no department named {department!r}")
        rows = themes_between(session, since, until, department=department)
    if fmt == "json":
        payload = {
            "from": first.isoformat(),
            "to": last.isoformat(),
            "department": department,
            "themes": [
                {
                    "label": r.label,
                    "size": len(r.observation_ids),
                    "product_area": r.product_area,
                    "category": r.category,
                    "observation_ids": r.observation_ids,
                    "departments": r.departments,
                }
                for r in rows
            ],
        }
        typer.echo(json.dumps(payload, ensure_ascii=False, indent=2))
        return
    echo_table(
        [
            {
                "size": len(r.observation_ids),
                "label": r.label,
                "area": r.product_area,
                "category": r.category,
                "ids": ",".join(map(str, r.observation_ids[:12])) + ("…" if len(r.observation_ids) > 12 else ""),
            }
            for r in rows
        ]
    )


@app.command("link")
def link_command(employee: str = typer.Option(..., "--employee", help="HR employee id")) -> None:
    """Print the personal observation form link of one employee."""
    from frontline.core.links import observe_url
    from models import session_scope

    open_database()
    with session_scope() as session:
        person = _employee(session, employee)
        if person.id is None:
            fail(f"employee {employee!r} is not stored yet")
        typer.echo(observe_url(person.id))


@api_token_app.command("create")
def token_create(
    name: str = typer.Option(..., "--name", help="A name to recognise and revoke the token by"),
    employee: str | None = typer.Option(
        None, "--employee", help="Rotator the token submits as; omit for an integration token"
    ),
) -> None:
    """Create a token and print its secret once (only a hash is stored)."""
    from frontline.observations.api_tokens import create_api_token
    from models import session_scope

    open_database()
    with session_scope() as session:
        person = _employee(session, employee) if employee else None
        try:
            row, secret = create_api_token(session, name, person)
        except ValueError as exc:
            fail(str(exc))
    kind = f"rotator {employee}" if employee else "integration (requests name employee_id)"
    typer.echo(f"token {row.name!r} for {kind}; keep this secret, it is not shown again:")
    typer.echo(secret)


@api_token_app.command("revoke")
def token_revoke(name: str = typer.Option(..., "--name", help="Name of the token to revoke")) -> None:
    """Revoke a token at once."""
    from frontline.observations.api_tokens import revoke_api_token
    from models import session_scope

    open_database()
    with session_scope() as session:
        n = revoke_api_token(session, name)
    if not n:
        fail(f"no active token called {name!r}")
    typer.echo(f"revoked {n} token(s) called {name!r}")


@api_token_app.command("list")
def token_list() -> None:
    """Tokens (names, owners, state; never secrets)."""
    from frontline.observations.api_tokens import list_api_tokens
    from models import session_scope

    open_database()
    with session_scope() as session:
        echo_table(
            [
                {
                    "name": t.name,
                    "employee": employee or "(integration)",
                    "created": t.created_at.strftime("%Y-%m-%d"),
                    "revoked": t.revoked_at.strftime("%Y-%m-%d") if t.revoked_at else "",
                }
                for t, employee in list_api_tokens(session)
            ]
        )
