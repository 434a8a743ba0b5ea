"""``frontline demo``: generate a synthetic company and run every job on it, end to end."""

from __future__ import annotations

from pathlib import Path

import typer


def demo_command(
    employees: int = typer.Option(300, "--employees", "-n", min=1, help="How many employees to generate."),
    seed: int = typer.Option(7, "--seed", help="Random seed: the same seed gives the same company."),
    directory: Path = typer.Option(
        Path("var/demo"), "--dir", help="Folder for the demo's database, outbox, policy and CSV files (reset each run)."
    ),
    flow_logs: bool = typer.Option(
        False, "--flow-logs", help="Show Prefect's log lines for every flow and task run (PREFECT_LOGGING_LEVEL=INFO)."
    ),
) -> None:
    """Generate a realistic synthetic company and run every job on it end to end.

    The demo uses its own folder (database, outbox, policy, CSV files) and starts from scratch each run; your own database and policy are not touched. Every job runs in this process as a command runs it (recorded in the demo database's audit; on the Prefect server when PREFECT_API_URL is set; FRONTLINE_JOB_RUNNER=prefect runs real Prefect flow runs, starting Prefect's temporary server).
    """
    import os

    # The summary is the point of the demo; Prefect's per-run log lines would bury it. The runs are
    # real either way (see them with --flow-logs, or in the Prefect UI against a server).
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO" if flow_logs else "WARNING")
    from frontline.cli.common import fail
    from frontline.demo.runner import DemoError, run_demo

    try:
        run_demo(directory, n_employees=employees, seed=seed, echo=typer.echo)
    except DemoError as exc:
        fail(str(exc))
