"""``frontline pair``: pair rotators with mentors (and ``pair set``, ``pair proposals``, ``pair approve``,
``pair reject``); ``frontline mentors``: load per mentor per week; ``frontline surveys``: queue the wrap-up
surveys."""

from __future__ import annotations

from contextlib import nullcontext
from datetime import date

import typer

from frontline.cli.common import echo_table, load_policy_or_exit, open_database, run_flow, run_in_transaction
from frontline.core import clock
from frontline.core.heap import command_heap


def _as_of(value: str | None, option: str = "--as-of") -> date | None:
    if value is None:
        return None
    try:
        return clock.parse_day(value)
    except ValueError as exc:
        from frontline.cli.common import fail

        fail(f"{option}: {exc}")


def _print(out: dict) -> None:
    s = out["summary"]
    verb = "would create" if s["dry_run"] else "created"
    moved = s.get("moved_to_make_room", 0)
    typer.echo(
        f"pairings: {s['kept']} kept, {s['created']} {verb}, {s['replaced']} replaced"
        + (f" ({moved} of them moved to make room for people without a mentor)" if moved else "")
        + f", {s['cancelled']} cancelled, {s['unmatched']} unmatched"
    )
    if s["objective"] is not None:
        gap = "-" if s["gap"] is None else f"{100 * s['gap']:.3f} %"
        bound = "-" if s["bound"] is None else s["bound"]
        typer.echo(f"objective {s['objective']}  bound {bound}  gap {gap}  ({s['method']}, {s['seconds']} s)")
        if moved:
            typer.echo("  (no bound: moving kept pairings changed the problem the first solve's bound was for)")
    if out["created"] and any(c.get("status") == "proposed" for c in out["created"]):
        typer.echo("\nproposed (policy mentoring.review: nobody is told until HR approves; frontline pair proposals):")
        echo_table(out["created"], ["rotation_id", "rotator", "start", "mentor", "checkin", "cost"])
    elif out["created"]:
        typer.echo("\nmatched:")
        echo_table(out["created"], ["rotation_id", "rotator", "start", "mentor", "checkin", "cost"])
    if out["replaced"]:
        typer.echo("\nreplaced (both sides are told by the next invites run):")
        echo_table(out["replaced"], ["rotation_id", "rotator", "old_mentor", "reason", "new_mentor"])
    if out["unmatched"]:
        typer.echo("\nunmatched:")
        echo_table(out["unmatched"], ["rotation_id", "rotator", "start", "reason", "relaxation"])


pair_app = typer.Typer(
    help=(
        "Pair rotators with mentors from the support team (runs the pair-mentors flow). Subcommands: choose a "
        "mentor by hand (set) and review the proposals held by policy mentoring.review (proposals, approve, reject)."
    ),
    invoke_without_command=True,
)


@pair_app.callback()
def pair_command(
    ctx: typer.Context,
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be paired; write nothing."),
    as_of: str | None = typer.Option(None, "--as-of", help="Day to plan from (YYYY-MM-DD; default today)."),
    flow: bool = typer.Option(
        True,
        "--flow/--no-flow",
        help="Run as a job (default: recorded in the audit, or on the Prefect server when PREFECT_API_URL is set) or call the service directly.",
    ),
) -> None:
    """Pair every planned rotation of the next 52 weeks with a mentor from the support team.

    Keeps existing pairings; re-pairs only rotations whose mentor left or is absent; never gives anyone the same mentor twice. Prints the matches, the unmatched with the reason and the smallest relaxation that would help, and the objective, lower bound and gap of the optimiser.
    """
    if ctx.invoked_subcommand is not None:
        return
    day = _as_of(as_of)
    with nullcontext() if flow else command_heap():  # --no-flow: one short process (see command_heap)
        _pair(day, dry_run=dry_run, flow=flow)


def _pair(day: date | None, *, dry_run: bool, flow: bool) -> None:
    """:func:`pair_command`'s work: pair (through the job runner or directly) and print the result."""
    from frontline.cli.common import fail
    from frontline.core.errors import PlanningError

    policy = load_policy_or_exit()
    open_database()
    try:
        if flow:
            from frontline.mentors.service import support_department
            from models import session_scope

            with session_scope() as session:
                support_department(session, policy)  # refuse a misconfigured policy before starting Prefect

            out = run_flow("pair-mentors", as_of=day, dry_run=dry_run)
        else:
            from frontline.mentors.service import pair_mentors
            from models import session_scope

            with session_scope() as session:
                result = pair_mentors(session, policy, as_of=day, actor="cli", dry_run=dry_run)
                if dry_run:
                    session.rollback()
            out = {
                "summary": result.summary(),
                "created": result.created,
                "replaced": result.replaced,
                "unmatched": result.unmatched,
            }
    except PlanningError as exc:  # a pairing refused, or the planning lock held too long by another writer
        fail(str(exc))
    _print(out)


def mentors_command(
    weeks: int = typer.Option(8, "--weeks", min=1, max=60, help="How many weeks to show."),
    start: str | None = typer.Option(None, "--from", help="First week (any day of it; default this week)."),
) -> None:
    """Active pairings per mentor per week (columns: ISO week numbers), with capacity."""
    from frontline.mentors.service import mentor_load
    from models import session_scope

    policy = load_policy_or_exit()
    open_database()
    day = _as_of(start, "--from") or clock.today()
    with session_scope() as session:
        rows = mentor_load(session, policy, day, weeks)
    echo_table(rows)


def surveys_command(
    as_of: str | None = typer.Option(None, "--as-of", help="Day (YYYY-MM-DD; default today)."),
    flow: bool = typer.Option(
        True,
        "--flow/--no-flow",
        help="Run as a job (default: recorded in the audit, or on the Prefect server when PREFECT_API_URL is set) or call the service directly.",
    ),
) -> None:
    """Queue the wrap-up survey for both sides of every pairing in its last week (never twice)."""
    day = _as_of(as_of)
    load_policy_or_exit()
    open_database()
    if flow:
        counts = run_flow("send-surveys", as_of=day)
    else:
        from frontline.mentors.surveys import queue_surveys
        from models import session_scope

        with session_scope() as session:
            counts = queue_surveys(session, day, actor="cli")
    typer.echo(", ".join(f"{k} {v}" for k, v in counts.items()))


# ------------------------------------------------------------------------------ people in the loop


REASON = typer.Option(..., "--reason", help="Why (required; stored in the audit trail).")


@pair_app.command("set")
def set_command(
    rotation: str = typer.Argument(..., help="A rotation id, or an employee id (their upcoming rotation)."),
    mentor: str = typer.Argument(..., help="The mentor's employee id or e-mail address."),
    reason: str = REASON,
    as_of: str | None = typer.Option(None, "--as-of", help="Day the rules are checked for (default today)."),
) -> None:
    """Make MENTOR the mentor of ROTATION, checked against every hard rule of the pairing (a refusal names the rule). The earlier mentor is replaced; the next invites run tells everyone."""
    from frontline.cli.plan import _rotation_id
    from frontline.core.errors import PairingError
    from frontline.mentors.review import set_mentor
    from frontline.people.directory import employee_by_id_or_email

    day = _as_of(as_of)

    def act(session, policy):
        person = employee_by_id_or_email(session, mentor.strip())
        if person is None:
            raise PairingError(f"no employee {mentor!r} (give an employee id or e-mail address)")
        p = set_mentor(session, policy, _rotation_id(session, rotation), person, reason, "cli", as_of=day)
        return f"rotation {p.rotation_id}: mentor is now {person.name} (pairing {p.id}); the next invites run tells everyone"

    run_in_transaction(act)


@pair_app.command("proposals")
def proposals_command() -> None:
    """Pairings held for review (policy mentoring.review = true), by rotation start."""
    from frontline.mentors.review import proposals
    from models import session_scope

    open_database()
    with session_scope() as session:
        rows = [p.as_row() for p in proposals(session)]
    if not rows:
        typer.echo("no proposals waiting for review")
        return
    echo_table(rows, ["pairing_id", "rotation_id", "rotator", "start", "mentor", "mentor_email", "cost"])


@pair_app.command("approve")
def approve_command(
    pairings: list[int] = typer.Argument(None, help="Pairing ids (see frontline pair proposals)."),
    all_: bool = typer.Option(False, "--all", help="Approve every proposal waiting for review."),
    note: str = typer.Option("", "--note", help="Optional note for the audit trail."),
) -> None:
    """Approve proposed pairings: they become active and the next invites run tells both sides."""
    from frontline.core.errors import PairingError
    from frontline.mentors.review import approve_proposal, proposals

    def act(session, _policy):
        ids = [p.pairing.id for p in proposals(session) if p.pairing.id is not None] if all_ else list(pairings or [])
        if not ids:
            raise PairingError("name the pairing ids to approve, or --all")
        for pid in ids:
            approve_proposal(session, pid, "cli", note)
        return f"approved {len(ids)} pairing(s); the next invites run tells both sides"

    run_in_transaction(act)


@pair_app.command("reject")
def reject_command(
    pairing: int = typer.Argument(..., help="Pairing id (see frontline pair proposals)."),
    reason: str = REASON,
) -> None:
    """Reject a proposed pairing: that mentor is never proposed for the rotator again, and the rotation alone is paired again (a new proposal, or the reason nobody fits)."""
    from frontline.mentors.review import reject_proposal

    def act(session, policy):
        result = reject_proposal(session, policy, pairing, reason, "cli")
        if result.created:
            c = result.created[0]
            return f"rejected; new proposal for rotation {c['rotation_id']}: {c['mentor']} (pairing {c['pairing_id']})"
        if result.unmatched:
            u = result.unmatched[0]
            return f"rejected; no other mentor fits: {u['reason']}" + (
                f" ({u['relaxation']})" if u["relaxation"] else ""
            )
        return "rejected"

    run_in_transaction(act)
