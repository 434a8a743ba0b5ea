from pathlib import Path

import pytest

from frontline.core.policy import PolicyError, holiday_country_codes, load_policy, parse_policy
from frontline.core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def test_example_policy_is_valid():
    policy = load_policy(ROOT / "frontline.example.toml")
    assert policy.support_department == "Support"
    assert policy.length_weeks == 4
    assert policy.blackouts[0].reason == "Year-end freeze"


def test_policy_errors_name_file_key_and_reason(tmp_path):
    bad = tmp_path / "frontline.toml"
    bad.write_text(
        'support_department = "Support"\nseats_per_week = 0\nlenght_weeks = 4\n'
        "[[blackouts]]\nstart = 2027-01-10\nend = 2027-01-01\n"
    )
    with pytest.raises(PolicyError) as info:
        load_policy(bad)
    problems = info.value.problems
    assert f"{bad}: seats_per_week: Input should be greater than or equal to 1" in problems
    assert any("lenght_weeks: unknown key" in p for p in problems)
    assert any("blackouts.0: end 2027-01-01 is before start 2027-01-10" in p for p in problems)


def test_policy_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(PolicyError, match="file not found"):
        load_policy(tmp_path / "nope.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("support_department = \n")
    with pytest.raises(PolicyError, match="not valid TOML"):
        load_policy(broken)


def test_unknown_holiday_country():
    with pytest.raises(PolicyError, match="holidays_country"):
        parse_policy({"support_department": "Support", "holidays_country": "XX"})
    assert parse_policy({"support_department": "Support", "holidays_country": "gb"}).holidays_country == "GB"


def test_holiday_country_codes_are_the_registrys_without_importing_holidays():
    """The codes read from the registry's source are exactly those the package lists (aliases included), and
    reading them imports no part of the package (a fresh interpreter: this one may have imported it)."""
    import subprocess
    import sys

    from holidays.registry import EntityLoader

    holiday_country_codes.cache_clear()
    assert holiday_country_codes() == frozenset(EntityLoader.get_country_codes(include_aliases=True))
    assert {"DE", "DEU", "GB", "UK", "US", "USA"} <= holiday_country_codes()
    script = (
        "import sys; from frontline.core.policy import holiday_country_codes; codes = holiday_country_codes(); "
        "print(len(codes), any(m == 'holidays' or m.startswith('holidays.') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.split()[1] == "False" and int(out.stdout.split()[0]) > 200


def test_settings_from_environment(monkeypatch):
    monkeypatch.setenv("FRONTLINE_TIMEZONE", "America/New_York")
    monkeypatch.setenv("FRONTLINE_BASE_URL", "https://frontline.example.com/")
    settings = Settings()
    assert settings.tz.key == "America/New_York"
    assert settings.base_url == "https://frontline.example.com"
    monkeypatch.setenv("FRONTLINE_TIMEZONE", "Mars/Olympus")
    with pytest.raises(ValueError, match="unknown IANA time zone"):
        Settings()
    monkeypatch.setenv("FRONTLINE_TIMEZONE", "UTC")
    monkeypatch.setenv("FRONTLINE_BASE_URL", "javascript:alert(1)")
    with pytest.raises(ValueError, match="http"):
        Settings()


def test_generated_secret_key_is_stable_and_private(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FRONTLINE_SECRET_KEY", raising=False)
    s = Settings()
    key = s.signing_key()
    assert key == Settings().signing_key() and len(key) > 40
    assert (tmp_path / "var" / "secret.key").stat().st_mode & 0o077 == 0


def test_a_deployment_flow_run_without_a_configured_database_fails_loudly(tmp_path):
    """A process a worker starts for a flow run (PREFECT__FLOW_RUN_ID set) with no FRONTLINE_DATABASE_URL
    (neither in the environment nor in .env) must fail, not create an empty var/frontline.db and run there."""
    import os
    import subprocess
    import sys
    import uuid

    code = (
        "from models import get_engine; from sqlalchemy import text; get_engine().connect().execute(text('select 1'))"
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith(("FRONTLINE_", "PREFECT__"))}

    def run(**env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", code], cwd=tmp_path, env=base | env, capture_output=True, text=True, timeout=120
        )

    worker_run = {"PREFECT__FLOW_RUN_ID": str(uuid.uuid4())}
    refused = run(**worker_run)
    assert refused.returncode != 0 and "FRONTLINE_DATABASE_URL: not set in this deployment flow run" in refused.stderr
    assert not (tmp_path / "var").exists(), "no local SQLite file was created"
    (tmp_path / ".env").write_text(f"FRONTLINE_DATABASE_URL=sqlite:///{tmp_path / 'configured.db'}\n")
    assert run(**worker_run).returncode == 0, "configured in $FRONTLINE_HOME/.env: fine"
    (tmp_path / ".env").unlink()
    assert run().returncode == 0 and (tmp_path / "var" / "frontline.db").exists(), "outside a worker: the default"
