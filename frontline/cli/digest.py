"""``frontline digest``: weekly department digests."""

from __future__ import annotations

from pathlib import Path

import typer

from frontline.cli.common import echo_table, fail, open_database, run_flow

app = typer.Typer(help="Weekly department digests of front-line observations.", no_args_is_help=True)


@app.command("send")
def send_command(
    week: str | None = typer.Option(None, help="ISO week such as 2027-W05 (default: the last completed week)."),
    department: str | None = typer.Option(None, help="Only this department (name)."),
    preview: Path | None = typer.Option(
        None, help="Write <department>-<week>.html and .txt files to this folder instead of queuing mail."
    ),
) -> None:
    """Queue each department's digest for the week (once per recipient and week, ever), or preview it."""
    from frontline.core.errors import DigestError
    from frontline.digests.loading import department_ids_named
    from frontline.digests.queue import preview_digests
    from frontline.digests.weeks import last_completed_week, parse_week
    from models import session_scope

    week = week or last_completed_week()
    try:
        parse_week(week)
    except DigestError as exc:
        fail(f"--week: {exc}")
    open_database()
    try:
        with session_scope() as session:
            ids = department_ids_named(session, department)
            if preview is not None:
                outcomes = preview_digests(session, week, preview, department_ids=ids)
                echo_table([o.row() for o in outcomes], ["department", "observations", "themes", "status"])
                written = sum(1 for o in outcomes if o.files)
                typer.echo(f"wrote {written} preview(s) for {week} to {preview}")
                return
    except DigestError as exc:
        fail(str(exc))
    rows = run_flow("send-digests", week=week, department=department)
    echo_table(rows, ["department", "observations", "themes", "status"])
    queued = sum(int(r["status"].split()[1]) for r in rows if r["status"].startswith("queued"))
    typer.echo(f"{queued} digest message(s) queued for {week}; `frontline mail send` delivers them")
