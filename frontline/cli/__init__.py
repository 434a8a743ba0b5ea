"""The ``frontline`` command line. Each topic lives in its own module and is registered below.

Imports stay light at module level (Prefect is imported only by commands that run flows) so that
``frontline --help`` answers at once.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import typer

from frontline.cli.common import console_error, open_database

app = typer.Typer(
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
    from frontline.settings import get_settings

    settings = get_settings()
    revision = open_database(upgrade=True)
    typer.echo(f"database ready at schema revision {revision}: {settings.database_url}")
    example = Path(__file__).resolve().parents[2] / "frontline.example.toml"
    if policy_example and not settings.policy_path.exists() and example.exists():
        shutil.copyfile(example, settings.policy_path)
        typer.echo(f"wrote the example policy to {settings.policy_path}; edit it to match your company")


# --- topics: one module each -------------------------------------------------------------------
# (each topic module adds one line here: from frontline.cli import X; app.add_typer(X.app, name="x"))
from frontline.cli import console as _console; app.add_typer(_console.app, name="console"); app.add_typer(_console.users_app, name="users")  # noqa: E402,E702,E501
from frontline.cli import mail as _mail; app.add_typer(_mail.app, name="mail")  # noqa: E402,E702
from frontline.cli import calendar as _calendar; app.add_typer(_calendar.app, name="calendar")  # noqa: E402,E702
from frontline.cli import roster as _roster; app.add_typer(_roster.app, name="roster")  # noqa: E402,E702
from frontline.cli import demo as _demo; app.command("demo")(_demo.demo_command)  # noqa: E402,E702
from frontline.cli import backup as _backup; app.command("export")(_backup.export_command); app.command("import-state")(_backup.import_state_command)  # noqa: E702,E501,I001
from frontline.cli import status as _status; app.command("status")(_status.status_command)  # noqa: E702,I001
from frontline.cli import digest as _digest; app.add_typer(_digest.app, name="digest")  # noqa: E402,E702
from frontline.cli import plan as _plan; app.add_typer(_plan.app, name="plan")  # noqa: E402,E702

from frontline.cli import observe as _observe; app.add_typer(_observe.app, name="observe"); app.add_typer(_observe.api_token_app, name="api-token")  # noqa: E402,E702,E501
from frontline.cli import serve as _serve; app.command("serve")(_serve.serve_command)  # noqa: E402,E702
from frontline.cli import pair as _pair; app.command("pair")(_pair.pair_command); app.command("mentors")(_pair.mentors_command); app.command("surveys")(_pair.surveys_command)  # noqa: E402,E702,E501


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover
        console_error("interrupted")
        sys.exit(130)
