"""``frontline plan``: plan rotations, export the plan, and HR overrides (all audited, reason required)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer

from frontline.cli.common import echo_table, fail, load_policy_or_exit, open_database, run_flow, run_in_transaction
from frontline.core.errors import PlanningError

app = typer.Typer(
    help=(
        "Plan support rotations for everyone (optimal within the policy's hard rules), export the plan, "
        "and override it: move, swap, defer, add, exempt, lock, unlock. Overrides need --reason and are audited; "
        "a refused move, defer or add names the nearest weeks that fit and the rotations that would make it fit."
    ),
    invoke_without_command=True,
)

TARGET_HELP = "A rotation id, or an employee id (their upcoming rotation)."


def _date(value: str, option: str) -> date:
    from frontline.core.clock import parse_day

    try:
        return parse_day(value)
    except ValueError as exc:
        fail(f"{option}: {exc}")


def _optional_date(value: str | None, option: str) -> date | None:
    return None if value is None else _date(value, option)


def _print_summary(out: dict) -> None:
    s = out["summary"]
    verb = "would plan" if s["dry_run"] else "planned"
    typer.echo(
        f"horizon: {s['weeks']} weeks from Monday {s['horizon_start']}{' (dry run: nothing written)' if s['dry_run'] else ''}"
    )
    typer.echo(f"{verb}: {s['planned']} rotation(s), {s['new_hires']} new hire(s), {s['late']} late")
    typer.echo(
        f"changes: {s['created']} new, {s['moved']} moved, {s['kept']} kept, {s['removed']} removed; "
        f"{s['fixed']} locked/announced rotation(s) untouched"
    )
    skipped = ", ".join(f"{k} {v}" for k, v in sorted((s.get("skipped") or {}).items()))
    if skipped:
        typer.echo(f"not planned: {skipped}")
    lb = "n/a" if s["lower_bound"] is None else f"{s['lower_bound']:.1f}"
    gap = "n/a" if s["gap"] is None else f"{100 * s['gap']:.3f}%"
    typer.echo(f"objective {s['objective']:.1f}, lower bound {lb}, gap {gap}, solved in {s['solve_seconds']:.2f} s")
    if s.get("holiday_rotations"):
        typer.echo(f"{s['holiday_rotations']} rotation(s) include public holidays (shown in the export)")
    _print_changes(out.get("changes") or [], s["dry_run"])
    unplaced = out["unplaced"]
    typer.echo(f"unplaced: {len(unplaced)}")
    if unplaced:
        echo_table(unplaced, ["employee_id", "department", "code", "reason"])


CHANGES_SHOWN = 200
ACTION_ORDER = {"moved": 0, "cancelled": 1, "deleted": 2, "created": 3}


def _print_changes(changes: list[dict], dry_run: bool) -> None:
    """Every change by name: who, what, from, to, why (moves and removals first; at most CHANGES_SHOWN lines)."""
    if not changes:
        typer.echo("nothing to change" if dry_run else "nothing changed")
        return
    typer.echo("changes that would be made:" if dry_run else "changes made:")
    rows = sorted(changes, key=lambda c: (ACTION_ORDER.get(c["action"], 9), c.get("new_start") or "", c["employee_id"]))
    echo_table(
        [
            {
                "who": f"{c['employee_id']} {c.get('name', '')}".strip(),
                "change": c["action"],
                "from": c.get("old_start"),
                "to": c.get("new_start"),
                "why": c["why"],
            }
            for c in rows[:CHANGES_SHOWN]
        ],
        ["who", "change", "from", "to", "why"],
    )
    if len(rows) > CHANGES_SHOWN:
        typer.echo(f"... and {len(rows) - CHANGES_SHOWN} more (all of them: the flow artifact rotation-plan-changes)")


@app.callback()
def plan_command(
    ctx: typer.Context,
    start: str | None = typer.Option(
        None, "--from", help="First day of the horizon (YYYY-MM-DD; moved to the next Monday). Default: today."
    ),
    weeks: int = typer.Option(52, "--weeks", min=1, max=260, help="Horizon length in weeks."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the plan and what would change; write no rotations."),
    flow: bool = typer.Option(True, "--flow/--no-flow", help="Run as a Prefect flow run (default) or directly."),
) -> None:
    """Plan rotations for the horizon (runs the plan-rotations flow) and print the summary."""
    if ctx.invoked_subcommand is not None:
        return
    day = _optional_date(start, "--from")
    policy = load_policy_or_exit()
    open_database()
    from frontline.mentors.service import support_department
    from models import session_scope

    try:
        with session_scope() as session:
            support_department(session, policy)  # refuse a misconfigured policy before starting Prefect
        if not flow:
            from frontline.rotations.service import plan_rotations as plan

            with session_scope() as session:
                result = plan(session, policy, start=day, weeks=weeks, dry_run=dry_run, actor="cli")
                summary = {"summary": result.summary(), "unplaced": result.unplaced, "changes": result.changes}
            _print_summary(summary)
            return
    except PlanningError as exc:
        fail(str(exc))
    _print_summary(run_flow("plan-rotations", start=day, weeks=weeks, dry_run=dry_run))


@app.command("export")
def export_command(
    fmt: str = typer.Option("json", "--format", help="json (a list of objects) or csv."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout."),
    include_cancelled: bool = typer.Option(False, help="Also list cancelled rotations."),
) -> None:
    """One record per rotation: employee_id, email, department, start, end, kind, status, locked, ..."""
    if fmt not in {"json", "csv"}:
        fail(f"--format: {fmt!r} is not json or csv")
    open_database()
    from frontline.rotations.export import export_rows, export_text
    from models import session_scope

    with session_scope() as session:
        text = export_text(export_rows(session, include_cancelled=include_cancelled), fmt)
    if output is None:
        typer.echo(text, nl=False)
    else:
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            fail(f"--output: cannot write {output}: {exc.strerror or exc}")
        typer.echo(f"wrote {output}", err=True)


def _rotation_id(session, target: str) -> int:
    from frontline.rotations.overrides import upcoming_rotation

    if target.isdigit():
        return int(target)
    rotation_id = upcoming_rotation(session, target).id
    if rotation_id is None:  # never: the rotation was read from the database
        raise PlanningError(f"the rotation of {target} is not stored yet")
    return rotation_id


REASON = typer.Option(..., "--reason", help="Why (required; stored in the audit trail).")


@app.command("move")
def move_command(
    target: str = typer.Argument(..., help=TARGET_HELP),
    new_start: str = typer.Argument(..., help="New start (a Monday)."),
    reason: str = REASON,
) -> None:
    """Move a rotation to a new Monday and lock it there."""
    from frontline.rotations import overrides

    day = _date(new_start, "NEW_START")

    def act(session, policy):
        rot = overrides.move(session, policy, _rotation_id(session, target), day, reason)
        return f"rotation {rot.id} now {rot.start}..{rot.end} (locked)"

    run_in_transaction(act)


@app.command("swap")
def swap_command(
    a: str = typer.Argument(..., help=TARGET_HELP), b: str = typer.Argument(..., help=TARGET_HELP), reason: str = REASON
) -> None:
    """Exchange the start weeks of two rotations (both become locked)."""
    from frontline.rotations import overrides

    def act(session, policy):
        ra, rb = overrides.swap(session, policy, _rotation_id(session, a), _rotation_id(session, b), reason)
        return f"rotation {ra.id} now starts {ra.start}; rotation {rb.id} now starts {rb.start} (both locked)"

    run_in_transaction(act)


@app.command("defer")
def defer_command(
    target: str = typer.Argument(..., help=TARGET_HELP),
    weeks: int | None = typer.Option(None, "--weeks", min=1, help="Start this many weeks later."),
    until: str | None = typer.Option(None, "--until", help="Start on the first Monday on or after this date."),
    reason: str = REASON,
) -> None:
    """Start a rotation later (locks it)."""
    from frontline.rotations import overrides

    day = _optional_date(until, "--until")

    def act(session, policy):
        rot = overrides.defer(session, policy, _rotation_id(session, target), weeks=weeks, until=day, reason=reason)
        return f"rotation {rot.id} deferred to {rot.start}..{rot.end} (locked)"

    run_in_transaction(act)


@app.command("add")
def add_command(
    employee_id: str = typer.Argument(..., help="Employee id of someone without a planned rotation."),
    week: str = typer.Argument(..., help="Start (a Monday, YYYY-MM-DD)."),
    reason: str = REASON,
) -> None:
    """Give someone the plan left unplaced a rotation starting WEEK (locked, so the next plan keeps it).

    A refusal names the nearest weeks that fit and the rotations that would make room."""
    from frontline.rotations import overrides

    day = _date(week, "WEEK")

    def act(session, policy):
        rot = overrides.add(session, policy, employee_id, day, reason)
        return f"rotation {rot.id} added for {employee_id}: {rot.start}..{rot.end} ({rot.kind}, locked)"

    run_in_transaction(act)


@app.command("exempt")
def exempt_command(
    employee_id: str = typer.Argument(..., help="Employee id."),
    until: str = typer.Option(..., "--until", help="Exempt through this date (inclusive)."),
    reason: str = REASON,
) -> None:
    """Exempt an employee from rotating until a date; their rotations inside it are withdrawn."""
    from frontline.rotations import overrides

    day = _date(until, "--until")

    def act(session, policy):
        e = overrides.exempt(session, employee_id, day, reason)
        return f"{e.employee_id} exempt until {e.exempt_until}; re-run `frontline plan` to fill the gap"

    run_in_transaction(act)


@app.command("lock")
def lock_command(target: str = typer.Argument(..., help=TARGET_HELP), reason: str = REASON) -> None:
    """Lock a rotation: the planner never moves it."""
    from frontline.rotations import overrides

    run_in_transaction(
        lambda session, policy: f"rotation {overrides.lock(session, _rotation_id(session, target), reason).id} locked"
    )


@app.command("unlock")
def unlock_command(target: str = typer.Argument(..., help=TARGET_HELP), reason: str = REASON) -> None:
    """Unlock a rotation (also an announced one): the next plan may move it; a move is announced as an update."""
    from frontline.rotations import overrides

    run_in_transaction(
        lambda session, policy: (
            f"rotation {overrides.unlock(session, _rotation_id(session, target), reason).id} unlocked"
        )
    )
