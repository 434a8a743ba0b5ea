"""Bad input met through the CLI: a clear message naming the file/option and why, a non-zero exit, no traceback."""

from __future__ import annotations

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
