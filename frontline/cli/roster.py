"""``frontline roster``: import the HR roster (departments, employees, absences) from CSV files."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer

from frontline.cli.common import console_error, echo_table, open_database, run_flow
from frontline.core.errors import LeaversNotConfirmed, RosterError

if TYPE_CHECKING:
    from sqlmodel import Session

    from frontline.people.roster_csv import ParsedRoster

app = typer.Typer(
    help="The HR roster: import departments, employees and absences from CSV files (see README, Roster import).",
    no_args_is_help=True,
)


def _refuse(exc: RosterError) -> NoReturn:
    for problem in exc.problems:
        typer.echo(problem, err=True)
    if isinstance(exc, LeaversNotConfirmed):
        console_error(
            f"roster import refused: {exc.count} leavers need a confirmation; if that is right, run it again "
            f"with --allow-leavers {exc.count} (nothing was written)"
        )
    else:
        console_error(f"roster import refused: {len(exc.problems)} problem(s); nothing was written")
    raise typer.Exit(1)


ALLOW_LEAVERS_HELP = (
    "Confirm that up to N active employees missing from employees.csv are marked as left. Needed when an import "
    "would mark more than the policy allows (roster.max_leaver_fraction of active staff, at least "
    "roster.min_leavers_allowed; default max(5, 10%)): a partial file must never empty the company."
)


@app.command("import")
def import_command(
    departments: Path = typer.Option(..., "--departments", help="departments.csv (UTF-8, with or without BOM)."),
    employees: Path = typer.Option(..., "--employees", help="employees.csv: the full list of current staff."),
    absences: Path | None = typer.Option(
        None, "--absences", help="absences.csv; replaces the absences of everyone imported. Omit to keep them."
    ),
    allow_leavers: int | None = typer.Option(None, "--allow-leavers", min=0, metavar="N", help=ALLOW_LEAVERS_HELP),
    flow: bool = typer.Option(
        True,
        "--flow/--no-flow",
        help="Run as a job (default: recorded in the audit, or on the Prefect server when PREFECT_API_URL is set) or call the service directly.",
    ),
) -> None:
    """Import a full roster, all or nothing.

    Columns: departments.csv: department, head_name, head_email, max_away_fraction (optional). employees.csv: employee_id, name, email, department, title, hire_date, timezone, country, languages, skills, mentor, mentor_capacity, last_rotation (languages and skills separated by ";", mentor yes/no, dates YYYY-MM-DD). absences.csv: employee_id, start, end, reason.

    Employees are upserted by employee_id; active employees missing from employees.csv are marked as left (never deleted) and their future rotations are cancelled. An import that would mark more people as left than the policy allows (default max(5, 10% of active staff)) is refused with the count unless --allow-leavers confirms it. Departments missing from departments.csv are deactivated (kept, but their heads lose the console).

    Any bad row aborts the import: every problem is printed as file:row: column: message, the exit code is 1 and the database is left untouched.
    """
    from frontline.people.roster import import_roster
    from frontline.people.roster_csv import parse_roster

    # Validate before anything opens the database or starts Prefect.
    try:
        parse_roster(departments, employees, absences)
    except RosterError as exc:
        _refuse(exc)
    open_database()
    try:
        if flow:
            result = run_flow(
                "import-roster",
                departments=str(departments),
                employees=str(employees),
                absences=None if absences is None else str(absences),
                actor="cli",
                allow_leavers=allow_leavers,
            )
        else:
            from models import session_scope

            with session_scope() as session:
                result = import_roster(
                    session, departments, employees, absences, actor="cli", allow_leavers=allow_leavers
                )
            from frontline.people.events import emit_new_hires

            emit_new_hires(result.new_hire_ids, source="cli")  # (the flow path emits inside the flow)
    except RosterError as exc:
        _refuse(exc)
    typer.echo(f"roster imported: {result.summary()}")
    echo_table([{"what": k, "count": v} for k, v in result.counts().items()], ["what", "count"])


@app.command("check")
def check_command(
    departments: Path = typer.Option(..., "--departments", help="departments.csv (UTF-8, with or without BOM)."),
    employees: Path = typer.Option(..., "--employees", help="employees.csv: the full list of current staff."),
    absences: Path | None = typer.Option(None, "--absences", help="absences.csv (optional)."),
    allow_leavers: int | None = typer.Option(None, "--allow-leavers", min=0, metavar="N", help=ALLOW_LEAVERS_HELP),
) -> None:
    """Check roster files without importing them.

    Runs every check of `roster import` and prints every problem as file:row: column: message, then what the import would do to the database: how many active employees would be marked as left (and their future rotations cancelled) and which departments deactivated. Exits with 1 when the import would be refused, including when it would mark more people as left than the policy allows without --allow-leavers. Without a database (none yet, or unreachable) only the files are checked, and it says so; it never creates one.
    """
    from frontline.people.roster import preview_roster
    from frontline.people.roster_csv import parse_roster

    try:
        parsed = parse_roster(departments, employees, absences)
    except RosterError as exc:
        for problem in exc.problems:
            typer.echo(problem, err=True)
        console_error(f"{len(exc.problems)} problem(s)")
        raise typer.Exit(1) from None
    counts = f"{len(parsed.departments)} departments, {len(parsed.employees)} employees"
    if parsed.absences is not None:
        counts += f", {len(parsed.absences)} absences"
    typer.echo(f"roster OK: {counts}")
    _check_routing_table(parsed)
    session_factory = _existing_database()
    if session_factory is None:
        return
    try:
        with session_factory() as session:
            preview = preview_roster(session, parsed, allow_leavers=allow_leavers)
    except RosterError as exc:
        _refuse(exc)
    typer.echo(f"against the database: {preview.summary()}")


def _check_routing_table(parsed: ParsedRoster) -> None:
    """Warn about policy routing-table entries naming a department these files do not have."""
    from frontline.core.errors import PolicyError
    from frontline.core.policy import load_policy
    from frontline.observations.routing import table_problems

    try:
        policy = load_policy()
    except PolicyError:
        return
    names = [d.name for d in parsed.departments]
    for problem in table_problems(policy.observations.area_departments, names):
        typer.echo(f"warning: {problem}")


def _existing_database() -> Callable[[], AbstractContextManager[Session]] | None:
    """``models.session_scope`` once the configured database is open and migrated; None (saying why) when
    there is none yet (a SQLite file that does not exist: the check creates nothing) or it cannot be reached."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, OperationalError

    from frontline.cli.common import shown_database_url
    from frontline.core.settings import get_settings
    from models import init_db, session_scope

    try:
        url = make_url(get_settings().database_url)
        if url.get_backend_name() == "sqlite" and not (url.database and Path(url.database).exists()):
            typer.echo(f"no database yet ({shown_database_url()}): nobody would be marked as left")
            return None
        init_db()
    except (OperationalError, ArgumentError) as exc:
        console_error(f"cannot open the database {shown_database_url()!r}: {getattr(exc, 'orig', None) or exc}")
        typer.echo("leavers not counted: the database cannot be opened")
        return None
    return session_scope
