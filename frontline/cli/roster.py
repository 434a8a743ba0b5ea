"""``frontline roster``: import the HR roster (departments, employees, absences) from CSV files."""

from __future__ import annotations

from pathlib import Path

import typer

from frontline.cli.common import console_error, echo_table, open_database, run_flow

app = typer.Typer(
    help="The HR roster: import departments, employees and absences from CSV files (see README, Roster import).",
    no_args_is_help=True,
)


def _refuse(problems: list[str]) -> None:
    for problem in problems:
        typer.echo(problem, err=True)
    console_error(f"roster import refused: {len(problems)} problem(s); nothing was written")
    raise typer.Exit(1)


@app.command("import")
def import_command(
    departments: Path = typer.Option(..., "--departments", help="departments.csv (UTF-8, with or without BOM)."),
    employees: Path = typer.Option(..., "--employees", help="employees.csv: the full list of current staff."),
    absences: Path | None = typer.Option(
        None, "--absences", help="absences.csv; replaces the absences of everyone imported. Omit to keep them."
    ),
    flow: bool = typer.Option(
        True, "--flow/--no-flow", help="Run as a Prefect flow run (default) or directly in this process (quicker)."
    ),
) -> None:
    """Import a full roster, all or nothing.

    Columns: departments.csv: department, head_name, head_email, max_away_fraction (optional). employees.csv: employee_id, name, email, department, title, hire_date, timezone, country, languages, skills, mentor, mentor_capacity, last_rotation (languages and skills separated by ";", mentor yes/no, dates YYYY-MM-DD). absences.csv: employee_id, start, end, reason.

    Employees are upserted by employee_id; active employees missing from employees.csv are marked as left (never deleted) and their future rotations are cancelled.

    Any bad row aborts the import: every problem is printed as file:row: column: message, the exit code is 1 and the database is left untouched.
    """
    from frontline.core.errors import RosterError
    from frontline.people.roster import import_roster
    from frontline.people.roster_csv import parse_roster

    # Validate before anything opens the database or starts Prefect.
    try:
        parse_roster(departments, employees, absences)
    except RosterError as exc:
        _refuse(exc.problems)
    open_database()
    try:
        if flow:
            from flows.roster import import_roster_flow

            result = run_flow(
                import_roster_flow,
                departments=str(departments),
                employees=str(employees),
                absences=None if absences is None else str(absences),
                actor="cli",
            )
        else:
            from models import session_scope

            with session_scope() as session:
                result = import_roster(session, departments, employees, absences, actor="cli")
            from frontline.people.events import emit_new_hires

            emit_new_hires(result.new_hire_ids, source="cli")  # (the flow path emits inside the flow)
    except RosterError as exc:
        _refuse(exc.problems)
    typer.echo(f"roster imported: {result.summary()}")
    echo_table([{"what": k, "count": v} for k, v in result.counts().items()], ["what", "count"])


@app.command("check")
def check_command(
    departments: Path = typer.Option(..., "--departments", help="departments.csv (UTF-8, with or without BOM)."),
    employees: Path = typer.Option(..., "--employees", help="employees.csv: the full list of current staff."),
    absences: Path | None = typer.Option(None, "--absences", help="absences.csv (optional)."),
) -> None:
    """Check roster files without importing them.

    Runs every check of `roster import` that needs no database (it cannot see whether an e-mail address still belongs to someone outside the files) and prints every problem as file:row: column: message.
    """
    from frontline.core.errors import RosterError
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
