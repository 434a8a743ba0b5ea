"""``frontline export`` and ``frontline import-state``: back up, restore and move the whole database
(for example from SQLite to PostgreSQL). Format: see ``frontline/operations/backup.py`` and the README."""

from __future__ import annotations

from pathlib import Path

import typer

from frontline.cli.common import fail, open_database


def export_command(
    output: Path = typer.Option(..., "--output", "-o", help="File to write (JSON lines; written atomically)."),
) -> None:
    """Export every table of the configured database to one versioned JSON-lines file."""
    from frontline.operations.backup import BackupError, export_state
    from models import get_engine

    open_database(upgrade=False)
    try:
        result = export_state(get_engine(), output)
    except BackupError as exc:
        fail(str(exc))
    typer.echo(
        f"exported {result.total} rows from {len(result.counts)} tables at schema revision "
        f"{result.schema_revision} to {output}"
    )
    for name, count in result.counts.items():
        typer.echo(f"  {name}: {count}")


def import_state_command(
    source: Path = typer.Argument(
        ..., exists=True, dir_okay=False, readable=True, help="A file written by `frontline export`."
    ),
    force: bool = typer.Option(False, "--force", help="Replace the contents of a database that already holds rows."),
) -> None:
    """Load an export into the configured database (created/migrated first), keeping ids; all or nothing.

    Refuses a database that already holds rows unless --force. To move from SQLite to PostgreSQL: export with FRONTLINE_DATABASE_URL pointing at SQLite, then import with it pointing at PostgreSQL.
    """
    from frontline.operations.backup import BackupError, import_state
    from models import get_engine

    open_database(upgrade=True)
    try:
        result = import_state(get_engine(), source, force=force)
    except BackupError as exc:
        fail(str(exc))
    typer.echo(
        f"imported {result.total} rows into {len(result.counts)} tables (schema revision {result.schema_revision})"
    )
