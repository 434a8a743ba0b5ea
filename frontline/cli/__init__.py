"""The ``frontline`` command line. Each topic lives in its own module and is registered below.

Imports stay light at module level (Prefect is imported only by commands that run flows) so that
``frontline --help`` answers at once.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import typer
from typer.core import TyperGroup

from frontline.cli.common import console_error, fail, open_database, shown_database_url


class _Frontline(TyperGroup):
    """Before any command runs (but not for --help), refuse invalid FRONTLINE_* settings, one clear line each."""

    def invoke(self, ctx):
        from frontline.core.settings import SettingsError, get_settings

        if "--help" not in [*getattr(ctx, "_protected_args", []), *ctx.args]:
            try:
                get_settings()
            except SettingsError as exc:
                for problem in exc.problems:
                    console_error(problem)
                raise typer.Exit(2) from None
        try:
            return super().invoke(ctx)
        except SettingsError as exc:  # a setting read later, e.g. where the secret key lives
            for problem in exc.problems:
                console_error(problem)
            raise typer.Exit(2) from None


app = typer.Typer(
    cls=_Frontline,
    name="frontline",
    help=(
        "Frontline puts everyone in the company on the customer-support front line: it plans support "
        "rotations, pairs rotators with mentors, sends calendar invites, collects front-line "
        "observations and emails department digests.\n\n"
        "Settings come from FRONTLINE_* environment variables (see README); the policy from frontline.toml."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command("init")
def init_command(
    policy_example: bool = typer.Option(
        True, help="Copy frontline.example.toml to the policy path when no policy file exists yet."
    ),
) -> None:
    """Create the database or upgrade it to the newest schema (safe to run again)."""
    from frontline.core.settings import get_settings

    settings = get_settings()
    revision = open_database(upgrade=True)
    typer.echo(f"database ready at schema revision {revision}: {shown_database_url()}")
    example = Path(__file__).resolve().parents[2] / "frontline.example.toml"
    if policy_example and not settings.policy_path.exists() and example.exists():
        try:
            shutil.copyfile(example, settings.policy_path)
        except OSError as exc:
            fail(
                f"cannot write the example policy to {settings.policy_path} (FRONTLINE_POLICY_PATH): {exc.strerror or exc}"
            )
        typer.echo(f"wrote the example policy to {settings.policy_path}; edit it to match your company")


# --- topics: one module each, shown in panels in the order a user meets them ----------------------
from frontline.cli import backup as _backup  # noqa: E402
from frontline.cli import calendar as _calendar  # noqa: E402
from frontline.cli import chat as _chat  # noqa: E402
from frontline.cli import console as _console  # noqa: E402
from frontline.cli import demo as _demo  # noqa: E402
from frontline.cli import digest as _digest  # noqa: E402
from frontline.cli import mail as _mail  # noqa: E402
from frontline.cli import observe as _observe  # noqa: E402
from frontline.cli import outreach as _outreach  # noqa: E402
from frontline.cli import pair as _pair  # noqa: E402
from frontline.cli import plan as _plan  # noqa: E402
from frontline.cli import requests as _requests  # noqa: E402
from frontline.cli import roster as _roster  # noqa: E402
from frontline.cli import scim as _scim  # noqa: E402
from frontline.cli import serve as _serve  # noqa: E402
from frontline.cli import status as _status  # noqa: E402
from frontline.cli import time_off as _time_off  # noqa: E402

SETUP, PLANNING, MAIL, VOICE, OPERATE = (
    "Set up",
    "Rotations and mentors",
    "Mail and calendar",
    "Observations and digests",
    "Operate",
)
app.registered_commands[0].rich_help_panel = SETUP  # init
app.command("demo", rich_help_panel=SETUP)(_demo.demo_command)
app.add_typer(_roster.app, name="roster", rich_help_panel=SETUP)
app.add_typer(_time_off.app, name="time-off", rich_help_panel=SETUP)
app.add_typer(_scim.app, name="scim", rich_help_panel=SETUP)
app.add_typer(_plan.app, name="plan", rich_help_panel=PLANNING)
app.add_typer(_pair.pair_app, name="pair", rich_help_panel=PLANNING)
app.command("mentors", rich_help_panel=PLANNING)(_pair.mentors_command)
app.add_typer(_requests.app, name="requests", rich_help_panel=PLANNING)
app.command("surveys", rich_help_panel=PLANNING)(_pair.surveys_command)
app.add_typer(_mail.app, name="mail", rich_help_panel=MAIL)
app.add_typer(_outreach.invites_app, name="invites", rich_help_panel=MAIL)
app.add_typer(_outreach.reminders_app, name="reminders", rich_help_panel=MAIL)
app.add_typer(_outreach.escalations_app, name="escalations", rich_help_panel=MAIL)
app.add_typer(_calendar.app, name="calendar", rich_help_panel=MAIL)
app.add_typer(_chat.app, name="chat", rich_help_panel=MAIL)
app.add_typer(_observe.app, name="observe", rich_help_panel=VOICE)
app.add_typer(_observe.api_token_app, name="api-token", rich_help_panel=VOICE)
app.add_typer(_digest.app, name="digest", rich_help_panel=VOICE)
app.command("serve", rich_help_panel=OPERATE)(_serve.serve_command)
app.add_typer(_console.app, name="console", rich_help_panel=OPERATE)
app.add_typer(_console.users_app, name="users", rich_help_panel=OPERATE)
app.command("status", rich_help_panel=OPERATE)(_status.status_command)
app.command("export", rich_help_panel=OPERATE)(_backup.export_command)
app.command("import-state", rich_help_panel=OPERATE)(_backup.import_state_command)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover
        console_error("interrupted")
        sys.exit(130)
