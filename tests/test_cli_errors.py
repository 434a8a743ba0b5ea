"""Bad input met through the CLI: a clear message naming the file/option and why, a non-zero exit, no traceback."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from frontline.cli import app

runner = CliRunner()


def _no_traceback(result) -> None:
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception


@pytest.mark.parametrize("content", [b"\xff\xfe\x00 not text", None], ids=["not-utf8", "a-directory"])
def test_unreadable_policy_file_is_a_clear_error(sqlite_settings, content):
    path = sqlite_settings.policy_path
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    result = runner.invoke(app, ["plan", "--dry-run", "--weeks", "2"])
    _no_traceback(result)
    assert result.exit_code == 2
    expected = "not UTF-8 text" if content else "cannot read the file"
    assert result.stderr.startswith(f"error: {path}: {expected}")


def test_export_to_an_unwritable_path_is_a_clear_error_and_leaves_no_partial_file(sqlite_settings, tmp_path):
    missing = tmp_path / "no-such-folder" / "state.jsonl"
    result = runner.invoke(app, ["export", "-o", str(missing)])
    _no_traceback(result)
    assert result.exit_code == 1
    assert result.stderr == f"error: {missing}: cannot write the export: No such file or directory\n"

    folder = tmp_path / "a-folder"
    folder.mkdir()
    result = runner.invoke(app, ["export", "-o", str(folder)])
    _no_traceback(result)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {folder}: cannot write the export:")
    assert not (tmp_path / "a-folder.partial").exists()


def test_import_state_of_a_garbled_file_names_the_line_and_imports_nothing(sqlite_settings, tmp_path):
    from sqlmodel import Session, select

    from models import Department, get_engine

    runner.invoke(app, ["init", "--no-policy-example"])
    with Session(get_engine()) as s:
        s.add(Department(name="Support", head_name="Zoë", head_email="zoe@example.com"))
        s.commit()
    export = tmp_path / "state.jsonl"
    assert runner.invoke(app, ["export", "-o", str(export)]).exit_code == 0
    lines = export.read_bytes().splitlines(keepends=True)
    garbled = tmp_path / "garbled.jsonl"
    garbled.write_bytes(b"".join(lines[:2]) + b"\xff\xfe garbage\n" + b"".join(lines[2:]))
    listed = tmp_path / "list.jsonl"
    listed.write_text("[1, 2]\n", encoding="utf-8")

    with Session(get_engine()) as s:
        for row in s.exec(select(Department)).all():
            s.delete(row)
        s.commit()
    for path, message in [(garbled, f"{garbled}:3: not UTF-8 text"), (listed, f"{listed}:1: not a JSON object")]:
        result = runner.invoke(app, ["import-state", str(path)])
        _no_traceback(result)
        assert result.exit_code == 1
        assert result.stderr.startswith(f"error: {message}")
    with Session(get_engine()) as s:
        assert s.exec(select(Department)).all() == []


def _example_policy(folder: Path) -> None:
    """The example policy as ``frontline.toml`` in ``folder`` (where the settings fixtures look for it)."""
    (folder / "frontline.toml").write_bytes(
        (Path(__file__).resolve().parent.parent / "frontline.example.toml").read_bytes()
    )


def test_plan_export_to_an_unwritable_path_is_a_clear_error(sqlite_settings, tmp_path):
    missing = tmp_path / "no-such-folder" / "plan.csv"
    result = runner.invoke(app, ["plan", "export", "--format", "csv", "-o", str(missing)])
    _no_traceback(result)
    assert result.exit_code == 1
    assert result.stderr == f"error: --output: cannot write {missing}: No such file or directory\n"


def test_digest_preview_into_a_path_that_is_a_file_is_a_clear_error(sqlite_settings, tmp_path):
    _example_policy(tmp_path)
    not_a_folder = tmp_path / "previews"
    not_a_folder.write_text("I am a file\n", encoding="utf-8")
    result = runner.invoke(app, ["digest", "send", "--week", "2026-W48", "--preview", str(not_a_folder)])
    _no_traceback(result)
    assert result.exit_code == 1
    assert result.stderr == f"error: cannot create the preview folder {not_a_folder}: File exists\n"


def test_mentors_with_a_bad_from_date_names_the_from_option(sqlite_settings, tmp_path):
    _example_policy(tmp_path)
    result = runner.invoke(app, ["mentors", "--from", "2026-02-30"])
    _no_traceback(result)
    assert result.exit_code == 1
    assert result.stderr == "error: --from: '2026-02-30' is not a date (YYYY-MM-DD)\n"


@pytest.mark.parametrize("url", ["foo://bar", "not a url"])
def test_an_unusable_database_url_is_a_clear_error(sqlite_settings, monkeypatch, url):
    from frontline.core.settings import get_settings

    monkeypatch.setenv("FRONTLINE_DATABASE_URL", url)
    get_settings.cache_clear()
    result = runner.invoke(app, ["status"])
    _no_traceback(result)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: FRONTLINE_DATABASE_URL: {url!r} is not a usable database URL (")


def test_an_invalid_setting_is_a_clear_error_before_any_command_runs(sqlite_settings, monkeypatch):
    from frontline.core.settings import get_settings

    monkeypatch.setenv("FRONTLINE_TIMEZONE", "Nowhere/Atlantis")
    monkeypatch.setenv("FRONTLINE_BASE_URL", "frontline.example.com")
    get_settings.cache_clear()
    result = runner.invoke(app, ["status"])
    _no_traceback(result)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: FRONTLINE_BASE_URL: base_url must be an http(s) URL such as https://frontline.example.com",
        "error: FRONTLINE_TIMEZONE: unknown IANA time zone 'Nowhere/Atlantis'",
    ]
    assert runner.invoke(app, ["status", "--help"]).exit_code == 0  # help still answers
    get_settings.cache_clear()


def test_observe_list_refuses_a_negative_limit(settings):
    """PostgreSQL rejects LIMIT -1 (SQLite reads it as no limit): the option itself must refuse it."""
    result = runner.invoke(app, ["observe", "list", "--limit", "-1"])
    _no_traceback(result)
    assert result.exit_code == 2
    assert "--limit" in result.output


def test_calendar_feed_for_both_a_person_and_the_team_says_not_both(sqlite_settings):
    result = runner.invoke(app, ["calendar", "feed", "create", "--team", "--employee", "E1"])
    assert result.exit_code == 1
    assert result.stderr == "error: say whose feed: --employee ID_OR_EMAIL or --team (one of them, not both)\n"


def test_roster_with_a_nul_byte_in_a_cell_is_refused_naming_row_and_column(settings, tmp_path):
    """PostgreSQL cannot store NUL in text: the import used to fail with a database traceback."""
    from sqlmodel import Session, select

    from models import Department, get_engine

    departments = tmp_path / "departments.csv"
    departments.write_bytes(b"department,head_name,head_email\nSupport,Zo\xc3\xab,zoe@example.com\x00\n")
    employees = tmp_path / "employees.csv"
    employees.write_text(
        "employee_id,name,email,department,hire_date,timezone,country\n"
        "E1,Ann,ann@example.com,Support,2020-12-01,Europe/Berlin,DE\n",
        encoding="utf-8",
    )
    result = runner.invoke(
        app, ["roster", "import", "--no-flow", "--departments", str(departments), "--employees", str(employees)]
    )
    _no_traceback(result)
    assert result.exit_code == 1
    assert (
        result.stderr.splitlines()[0]
        == f"{departments}:2: head_email: contains the control character U+0000; remove it (every field is one line of text)"
    )
    with Session(get_engine()) as s:
        assert s.exec(select(Department)).all() == []


def test_init_with_a_policy_path_in_a_missing_folder_says_so(sqlite_settings, monkeypatch, tmp_path):
    from frontline.core.settings import get_settings

    policy = tmp_path / "no-such-folder" / "frontline.toml"
    monkeypatch.setenv("FRONTLINE_POLICY_PATH", str(policy))
    get_settings.cache_clear()
    result = runner.invoke(app, ["init"])
    _no_traceback(result)
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: cannot write the example policy to {policy} (FRONTLINE_POLICY_PATH): No such file or directory\n"
    )


def test_demo_with_a_dir_that_is_a_file_says_so(tmp_path):
    not_a_folder = tmp_path / "demo"
    not_a_folder.write_text("a file\n", encoding="utf-8")
    result = runner.invoke(app, ["demo", "--dir", str(not_a_folder)])
    _no_traceback(result)
    assert result.exit_code == 1
    assert result.stderr == f"error: cannot use {not_a_folder} as the demo folder: File exists\n"


def test_an_unreachable_database_is_a_clear_error_that_hides_the_password(sqlite_settings, monkeypatch):
    from frontline.core.settings import get_settings

    monkeypatch.setenv("FRONTLINE_DATABASE_URL", "postgresql+psycopg://frontline:s3cret@127.0.0.1:1/frontline")
    get_settings.cache_clear()
    result = runner.invoke(app, ["status"])
    _no_traceback(result)
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "error: cannot open the database 'postgresql+psycopg://frontline:***@127.0.0.1:1/frontline': "
    )
    assert "s3cret" not in result.output


def test_an_unreachable_prefect_api_is_a_clear_error(sqlite_settings):
    """(in a child process: Prefect's background event client would keep the dead URL for later tests)"""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PREFECT_API_URL": "http://127.0.0.1:1/api"}
    proc = subprocess.run(
        [sys.executable, "-c", "from frontline.cli import main; main()", "mail", "send"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "error: cannot reach the Prefect API at http://127.0.0.1:1/api (PREFECT_API_URL)" in proc.stderr


def test_pair_and_plan_with_a_policy_naming_no_existing_support_department_change_nothing(sqlite_settings, tmp_path):
    """A typo in support_department used to unpair every rotation ("mentor is no longer a mentor")."""
    from sqlmodel import Session

    from models import Department, get_engine

    example = (Path(__file__).resolve().parent.parent / "frontline.example.toml").read_text(encoding="utf-8")
    policy = re.sub(r'(?m)^support_department = ".*"$', 'support_department = "Suport"', example)
    assert policy != example
    (tmp_path / "frontline.toml").write_text(policy, encoding="utf-8")
    runner.invoke(app, ["init", "--no-policy-example"])
    with Session(get_engine()) as s:
        s.add(Department(name="Support", head_name="Zoë", head_email="zoe@example.com"))
        s.commit()
    for args in (["pair", "--no-flow"], ["pair"], ["plan", "--dry-run"]):  # (flows: checked before Prefect starts)
        result = runner.invoke(app, args)
        _no_traceback(result)
        assert result.exit_code == 1
        assert result.stderr.startswith(
            "error: policy support_department 'Suport' is not a department of the roster (known: Support)"
        )
