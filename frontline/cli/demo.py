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
) -> None:
    """Generate a realistic synthetic company and run every job on it end to end.

    The demo uses its own folder (database, outbox, policy, CSV files) and starts from scratch each run; your own database and policy are not touched. Flows run as real Prefect flow runs without a server (the first one starts Prefect's temporary server, which takes 15-25 s).
    """
    from frontline.demo import run_demo

    run_demo(directory, n_employees=employees, seed=seed, echo=typer.echo)
