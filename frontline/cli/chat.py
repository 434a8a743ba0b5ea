"""``frontline chat``: send the queued chat notifications now (the deliver-chat job does it every 2 minutes)."""

from __future__ import annotations

import typer

from frontline.cli.common import console_error, echo_table, load_policy_or_exit, open_database, run_flow

app = typer.Typer(
    help="Chat notifications through Apprise (the policy's chat section; see README).", no_args_is_help=True
)


@app.command("send")
def send_command() -> None:
    """Send the chat notifications that are due (a Prefect flow run, like the scheduled deliver-chat).

    Channels come from the policy's chat section (HR's channel and one per department); their URLs are never printed. A channel that refuses is named with its error, the message is retried later, and the command exits with 1.
    """
    policy = load_policy_or_exit()
    if policy.chat.hr is None and not policy.chat.departments:
        typer.echo("no chat channels in the policy's chat section (see frontline.example.toml); nothing to do")
        return
    open_database()
    out = run_flow("deliver-chat")
    echo_table([{"what": k, "count": out[k]} for k in ("sent", "failed", "dropped")], ["what", "count"])
    for target, error in sorted(out["errors"].items()):
        console_error(f"chat {target}: {error}")
    if out["failed"]:
        raise typer.Exit(1)
