"""``frontline mail``: look at the outbox and act on it (HR / ops)."""

from __future__ import annotations

import typer

from frontline.cli.common import echo_table, fail, open_database

app = typer.Typer(help="The mail outbox: delivery status, retrying failed messages, sending now.", no_args_is_help=True)


@app.command("status")
def status_command() -> None:
    """Counts per state and kind, the oldest pending message, and failed messages with their last error."""
    from frontline.mail.delivery import status
    from models import session_scope

    open_database()
    with session_scope() as session:
        info = status(session)
        typer.echo("messages by state and kind:")
        echo_table(info["counts"], ["state", "kind", "count"])
        oldest = info["oldest_pending"]
        if oldest is not None:
            typer.echo(
                f"oldest pending: #{oldest.id} {oldest.kind} to {oldest.recipient}, queued {oldest.created_at:%Y-%m-%d %H:%M} UTC, "
                f"attempts {oldest.attempts}, next attempt {oldest.next_attempt_at:%Y-%m-%d %H:%M} UTC"
            )
        else:
            typer.echo("oldest pending: (none)")
        if info["stale_sending"]:
            typer.echo(
                f"{info['stale_sending']} message(s) stuck in 'sending' past their lease; the next run re-sends them"
            )
        typer.echo("failed:")
        echo_table(
            [
                {
                    "id": m.id,
                    "kind": m.kind,
                    "to": m.recipient,
                    "attempts": m.attempts,
                    "last_error": (m.last_error or "")[:120],
                }
                for m in info["failed"]
            ],
            ["id", "kind", "to", "attempts", "last_error"],
        )


@app.command("retry")
def retry_command(
    ids: list[int] | None = typer.Option(None, "--id", help="Outbox message id to retry (repeatable)."),
    all_failed: bool = typer.Option(False, "--all-failed", help="Retry every failed message."),
) -> None:
    """Put failed messages back in the queue (due now, fresh attempt budget). Run `frontline mail send` next."""
    from frontline.core.audit import record
    from frontline.mail.delivery import retry
    from models import session_scope

    if not ids and not all_failed:
        fail("say which messages: --id N (repeatable) or --all-failed")
    open_database()
    with session_scope() as session:
        n = retry(session, ids=ids, all_failed=all_failed)
        if ids and n == 0:
            fail(f"none of the ids {', '.join(map(str, ids))} is a failed message (see `frontline mail status`)")
        record(
            session,
            actor="cli",
            action="mail.retry",
            subject_type="outbound_message",
            ids=ids or [],
            all_failed=all_failed,
            count=n,
        )
    typer.echo(f"{n} message(s) queued again")


@app.command("send")
def send_command(
    batch_size: int = typer.Option(200, min=1, help="Messages per batch (one SMTP connection each)."),
    max_batches: int | None = typer.Option(None, min=1, help="Stop after this many batches."),
) -> None:
    """Deliver due messages now (runs the deliver_mail flow)."""
    from frontline.cli.common import run_flow

    open_database()
    counts = run_flow("deliver-mail", batch_size=batch_size, max_batches=max_batches)
    typer.echo(f"sent {counts['sent']}, retry later {counts['retry']}, failed {counts['failed']}")
