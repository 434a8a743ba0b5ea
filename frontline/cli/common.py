"""Helpers shared by the CLI modules: errors, the database, the policy, running flows."""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import typer


def console_error(message: str) -> None:
    typer.echo(f"error: {message}", err=True)


def fail(message: str, code: int = 1) -> NoReturn:
    console_error(message)
    raise typer.Exit(code)


def shown_database_url() -> str:
    """The configured database URL with any password replaced by ***, for messages."""
    import re

    from frontline.core.settings import get_settings

    return re.sub(r"(://[^/@:]*):[^/@]*@", r"\1:***@", get_settings().database_url)


def open_database(upgrade: bool = True) -> str:
    """Create/upgrade the configured database; exits with a clear message when it cannot be reached."""
    from sqlalchemy.exc import ArgumentError, OperationalError

    from models import init_db

    try:
        return init_db()
    except OperationalError as exc:
        fail(f"cannot open the database {shown_database_url()!r}: {exc.orig}")
    except ArgumentError as exc:
        fail(f"FRONTLINE_DATABASE_URL: {shown_database_url()!r} is not a usable database URL ({exc})")


def load_policy_or_exit():
    from frontline.core.policy import PolicyError, load_policy

    try:
        return load_policy()
    except PolicyError as exc:
        for problem in exc.problems:
            console_error(problem)
        raise typer.Exit(2) from None


def run_flow(flow_name: str, **parameters: Any) -> Any:
    """Run the job ``flow_name`` (e.g. ``plan-rotations``) from a command: directly in this process,
    recorded in Frontline's audit or on the configured Prefect server (see :mod:`flows.runner`)."""
    from flows.runner import PrefectUnreachable, run_job
    from frontline.core.errors import PlanningBusy

    try:
        return run_job(flow_name, **parameters)
    except PlanningBusy as exc:  # another writer of the plan held the planning lock too long: who, since when
        fail(str(exc))
    except PrefectUnreachable as exc:
        fail(
            f"cannot reach the Prefect API at {exc.url} (PREFECT_API_URL); start that server, "
            "or unset PREFECT_API_URL to run the job in this process; nothing was done"
        )


def echo_table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> None:
    if not rows:
        typer.echo("(none)")
        return
    columns = columns or list(rows[0])

    def cell(row: dict[str, Any], column: str) -> str:
        value = row.get(column, "")
        return "-" if value is None else str(value)

    cells = [[cell(r, c) for c in columns] for r in rows]
    widths = [max(len(c), *(len(line[k]) for line in cells)) for k, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(widths[k]) for k, c in enumerate(columns)).rstrip(), "  ".join("-" * w for w in widths)]
    lines.extend("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in cells)
    typer.echo("\n".join(lines))  # one write: 100k employees' pairings echoed line by line took 0.6 s
    sys.stdout.flush()


def run_in_transaction(action: Any) -> None:
    """Run ``action(session, policy)`` in one transaction and print the line it returns; a refusal
    (:class:`~frontline.core.errors.PlanningError`, also for pairings and requests) is one clear error line
    and nothing is written. The overrides, ``pair set/approve/reject`` and ``requests approve/decline``."""
    from frontline.core.errors import PlanningError
    from models import session_scope

    policy = load_policy_or_exit()
    open_database()
    try:
        with session_scope() as session:
            message = action(session, policy)
    except PlanningError as exc:
        fail(str(exc))
    typer.echo(message)
