"""The command line: every command documents itself; roster import end to end (in process and as a flow)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import typer
from sqlalchemy import select
from sqlmodel import Session
from typer.testing import CliRunner

from frontline.cli import app

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
runner = CliRunner()


def _squash(text: str) -> str:
    """Text without whitespace or rich box characters, so wrapped help can be compared."""
    return re.sub(r"[\s│─╭╮╰╯]+", "", text)


def command_paths() -> list[tuple[str, ...]]:
    """Every registered command and group, found by walking the click tree (later commands included)."""
    root = typer.main.get_command(app)
    paths: list[tuple[str, ...]] = []

    def walk(cmd, path: tuple[str, ...]) -> None:
        paths.append(path)
        if _is_group(cmd):
            for name, sub in sorted(cmd.commands.items()):
                if not sub.hidden:
                    walk(sub, (*path, name))

    walk(root, ())
    return paths


def _is_group(cmd) -> bool:
    return hasattr(cmd, "commands")  # typer bundles its own click: duck-type the group


def _command(path: tuple[str, ...]):
    cmd = typer.main.get_command(app)
    for name in path:
        cmd = cmd.commands[name]  # type: ignore[attr-defined]
    return cmd


def test_the_tree_has_the_foundation_commands():
    paths = command_paths()
    for expected in [(), ("init",), ("demo",), ("roster",), ("roster", "import"), ("roster", "check")]:
        assert expected in paths


@pytest.mark.parametrize("path", command_paths(), ids=lambda p: " ".join(p) or "frontline")
def test_every_command_has_help(path):
    result = runner.invoke(app, [*path, "--help"], terminal_width=100)
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    cmd = _command(path)
    description = (cmd.help or "").strip()
    assert description, f"'frontline {' '.join(path)}' has no description"
    first_sentence = description.split("\n\n")[0].split(". ")[0][:60]
    assert _squash(first_sentence) in _squash(result.output)
    if _is_group(cmd):
        for name, sub in cmd.commands.items():
            if not sub.hidden:
                assert name in result.output
                assert (sub.short_help or sub.help or "").strip(), f"'{name}' has no summary in the listing"


@pytest.mark.parametrize("path", command_paths(), ids=lambda p: " ".join(p) or "frontline")
def test_help_paragraphs_are_not_hard_wrapped(path):
    """The help keeps the docstring's line breaks: a paragraph broken mid-sentence prints as ragged lines."""
    for paragraph in re.split(r"\n\s*\n", (_command(path).help or "").strip()):
        assert "\n" not in paragraph.strip(), f"'frontline {' '.join(path)}': {paragraph[:80]!r}... is hard-wrapped"


def _copy_examples(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name in ("departments", "employees", "absences"):
        out[name] = tmp_path / f"{name}.csv"
        out[name].write_bytes((EXAMPLES / f"{name}.csv").read_bytes())
    return out


def _import_args(paths: dict[str, Path], *options: str, absences: bool = True) -> list[str]:
    """``frontline roster import [options]`` for the roster files in ``paths``."""
    files = ["--departments", str(paths["departments"]), "--employees", str(paths["employees"])]
    if absences:
        files += ["--absences", str(paths["absences"])]
    return ["roster", "import", *options, *files]


def test_roster_import_with_bad_files_exits_non_zero_and_lists_problems_on_stderr(sqlite_settings, tmp_path):
    paths = _copy_examples(tmp_path)
    text = paths["employees"].read_text(encoding="utf-8")
    paths["employees"].write_text(
        text.replace("Europe/Berlin", "Berlin").replace("2022-02-01", "01.02.2022"), encoding="utf-8"
    )
    paths["absences"].write_text("employee_id,start,end,reason\nE404,2027-01-01,2026-12-01,PTO\n", encoding="utf-8")
    result = runner.invoke(
        app,
        _import_args(paths),
    )
    assert result.exit_code == 1
    e, a = paths["employees"], paths["absences"]
    assert result.stderr.splitlines() == [
        f"{e}:6: hire_date: '01.02.2022' is not an ISO 8601 date (YYYY-MM-DD)",
        f"{e}:7: timezone: unknown IANA time zone 'Berlin' (e.g. Europe/Berlin)",
        f"{a}:2: employee_id: unknown employee 'E404' (not in {e})",
        f"{a}:2: end: end 2026-12-01 is before start 2027-01-01",
        "error: roster import refused: 4 problem(s); nothing was written",
    ]
    assert result.stdout == ""


def test_roster_check(tmp_path, monkeypatch):
    from frontline.core.settings import get_settings

    monkeypatch.setenv("FRONTLINE_DATABASE_URL", f"sqlite:///{tmp_path / 'none-yet.db'}")
    get_settings.cache_clear()
    paths = _copy_examples(tmp_path)
    args = ["roster", "check", "--departments", str(paths["departments"]), "--employees", str(paths["employees"])]
    ok = runner.invoke(app, [*args, "--absences", str(paths["absences"])])
    assert ok.exit_code == 0
    first, database = ok.stdout.splitlines()
    assert first == "roster OK: 4 departments, 8 employees, 3 absences"
    assert database.startswith("no database yet (sqlite:///") and "nobody would be marked as left" in database
    paths["departments"].write_text("department,head_name\nSupport,Zoë\n", encoding="utf-8")
    bad = runner.invoke(app, args)
    assert bad.exit_code == 1
    assert f"{paths['departments']}:1: head_email: missing column" in bad.stderr.splitlines()


def test_roster_import_without_flow(sqlite_settings, tmp_path):
    from models import Employee, get_engine

    paths = _copy_examples(tmp_path)
    args = _import_args(paths, "--no-flow", absences=False)
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "roster imported: departments 4 new" in result.stdout
    assert re.search(r"employees_created\s+8", result.stdout)
    with Session(get_engine()) as s:
        assert len(s.exec(select(Employee)).scalars().all()) == 8
    again = runner.invoke(app, args)
    assert re.search(r"employees_unchanged\s+8", again.stdout)


@pytest.mark.prefect
def test_roster_import_runs_as_a_prefect_flow(prefect_harness, sqlite_settings, tmp_path):
    from prefect.artifacts import Artifact

    from flows.roster import import_roster_flow
    from frontline.core.errors import RosterError
    from models import AuditEvent, get_engine

    paths = _copy_examples(tmp_path)
    result = runner.invoke(
        app,
        _import_args(paths),
    )
    assert result.exit_code == 0, result.output
    assert "employees 8 new" in result.stdout
    with Session(get_engine()) as s:
        event = s.exec(select(AuditEvent).where(AuditEvent.action == "roster.import")).scalars().one()
        assert event.actor == "cli" and event.details["absences"] == 3
    table = Artifact.get("roster-import")
    assert table.type == "table"
    assert {"what": "employees_created", "count": 8} in json.loads(table.data)

    # Refused by the database check (a leaver's address taken over): the run fails, nothing is written.
    paths["employees"].write_text(
        paths["employees"].read_text(encoding="utf-8").replace("\nE008,", "\nE009,"), encoding="utf-8"
    )
    with pytest.raises(RosterError, match="belongs to employee 'E008'"):
        import_roster_flow(departments=str(paths["departments"]), employees=str(paths["employees"]))
    state = import_roster_flow(
        departments=str(paths["departments"]), employees=str(paths["employees"]), return_state=True
    )
    assert state.is_failed() and "belongs to employee 'E008'" in state.message
    with Session(get_engine()) as s:
        assert len(s.exec(select(AuditEvent)).scalars().all()) == 1

    refused = Artifact.get("roster-import")  # the latest version of the key
    assert refused.type == "markdown" and "Roster import refused" in refused.data
