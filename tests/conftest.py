"""Shared fixtures.

* ``engine``: a fresh, migrated database, once on SQLite and once on PostgreSQL (each test that takes it
  runs on both). PostgreSQL is ``FRONTLINE_TEST_PG_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``);
  each test gets its own schema, dropped afterwards. Where no server answers, the PostgreSQL half is
  skipped with the reason (``FRONTLINE_REQUIRE_PG=1`` turns that skip into a failure).
* ``sqlite_engine``: the SQLite half alone, for tests whose subject is not the database.
* ``settings``: ``FRONTLINE_*`` pointed at the test database and a temporary outbox.
* ``prefect_harness``: one real Prefect API server for the whole session, started on first use.
* ``chromium``: the path of Debian's Chromium for Playwright; where it is missing the browser tests skip
  with the reason, except with ``FRONTLINE_REQUIRE_BROWSER=1`` (set by ``.ci/run``), which fails them.
* ``axe_source``: axe-core's script (npm, ``make axe``) for the accessibility checks; missing, the same.

Markers: tests that run on PostgreSQL (the ``postgres`` half of ``engine``/``database``/``settings``, and
tests marked by hand) carry the ``postgres`` marker, so ``-m postgres`` / ``-m "not postgres"`` select them.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

# Prefect keeps state in PREFECT_HOME; never touch the developer's ~/.prefect from tests. The directory
# is removed when the test run ends (each run made one more in /tmp before).
if "PREFECT_HOME" not in os.environ:
    os.environ["PREFECT_HOME"] = _PREFECT_HOME = tempfile.mkdtemp(prefix="frontline-prefect-home-")
    atexit.register(shutil.rmtree, _PREFECT_HOME, ignore_errors=True)

PG_URL = os.environ.get("FRONTLINE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
ARTIFACTS = Path(os.environ.get("FRONTLINE_TEST_ARTIFACTS", Path(__file__).resolve().parent.parent / "test-artifacts"))

_pg_problem: str | None = None
_pg_checked = False


CHROMIUM = Path(os.environ.get("FRONTLINE_TEST_CHROMIUM", "/usr/bin/chromium"))


def pytest_collection_modifyitems(config, items):
    """Mark the PostgreSQL half of every parametrised database test with ``postgres``."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("database") == "postgres":
            item.add_marker(pytest.mark.postgres)


def require(problem: str, variable: str) -> None:
    """Skip with ``problem``, or fail when ``variable`` is 1 (CI must run what it claims)."""
    if os.environ.get(variable) == "1":
        pytest.fail(f"{problem} (and {variable}=1 requires it)")
    pytest.skip(problem)


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium for Playwright (never a downloaded browser)."""
    if not CHROMIUM.exists():
        require(
            f"Debian Chromium ({CHROMIUM}) is not installed; `make chromium` installs it", "FRONTLINE_REQUIRE_BROWSER"
        )
    return CHROMIUM


AXE = Path(__file__).resolve().parent.parent / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture(scope="session")
def axe_source() -> str:
    """axe-core's ``axe.min.js`` from npm (``make axe``, part of ``make test``), to inject into pages."""
    if not AXE.exists():
        require(f"axe-core ({AXE}) is not installed; `make axe` installs it from npm", "FRONTLINE_REQUIRE_BROWSER")
    return AXE.read_text(encoding="utf-8")


def postgres_unavailable() -> str | None:
    """Why PostgreSQL cannot be used (None when it can). Checked once per session."""
    global _pg_checked, _pg_problem
    if not _pg_checked:
        _pg_checked = True
        import psycopg

        try:
            with psycopg.connect(PG_URL, connect_timeout=3) as conn:
                conn.execute("select 1")
        except Exception as exc:  # noqa: BLE001 - any failure means "absent"
            _pg_problem = f"PostgreSQL at {PG_URL} is not reachable: {exc}"
    return _pg_problem


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def _sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'frontline-test.db'}"


def _pg_schema_url(schema: str) -> str:
    from sqlalchemy.engine import make_url

    from models.db import normalise_url

    url = make_url(normalise_url(PG_URL))
    return url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)


def make_database(backend: str, tmp_path: Path):
    """Yield (url, engine) for a fresh migrated database on ``backend``; cleans up afterwards."""
    from models.db import _engine_for, get_engine, init_db

    if backend == "sqlite":
        url = _sqlite_url(tmp_path)
        engine = get_engine(url)
        init_db(engine)
        yield url, engine
        engine.dispose()
        _engine_for.cache_clear()
        return
    problem = postgres_unavailable()
    if problem:
        require(problem, "FRONTLINE_REQUIRE_PG")
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'create schema "{schema}"')
    url = _pg_schema_url(schema)
    engine = get_engine(url)
    try:
        init_db(engine)
        yield url, engine
    finally:
        engine.dispose()
        _engine_for.cache_clear()
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'drop schema "{schema}" cascade')


@pytest.fixture(params=["sqlite", "postgres"])
def database(request, tmp_path):
    """(url, engine) of a fresh migrated database; the test runs once per backend."""
    yield from make_database(request.param, tmp_path)


@pytest.fixture
def engine(database):
    return database[1]


@pytest.fixture
def sqlite_database(tmp_path):
    yield from make_database("sqlite", tmp_path)


@pytest.fixture
def sqlite_engine(sqlite_database):
    return sqlite_database[1]


def _configure(monkeypatch, tmp_path: Path, url: str):
    from frontline.core.settings import get_settings

    monkeypatch.setenv("FRONTLINE_DATABASE_URL", url)
    monkeypatch.setenv("FRONTLINE_OUTBOX_DIR", str(tmp_path / "outbox"))
    monkeypatch.setenv("FRONTLINE_POLICY_PATH", str(tmp_path / "frontline.toml"))
    monkeypatch.setenv("FRONTLINE_SECRET_KEY", "test-secret-key-not-for-production")
    monkeypatch.setenv("FRONTLINE_BASE_URL", "http://frontline.test")
    monkeypatch.delenv("FRONTLINE_SMTP_URL", raising=False)
    # The sentence model costs ~0.1-1 s per new text on a loaded CI machine: tests that group stored
    # observations use the lexical grouping unless they turn it on (tests/test_themes*.py do).
    monkeypatch.setenv("FRONTLINE_THEME_EMBEDDINGS", os.environ.get("FRONTLINE_TEST_THEME_EMBEDDINGS", "false"))
    get_settings.cache_clear()
    settings = get_settings()
    yield settings
    get_settings.cache_clear()


@pytest.fixture
def settings(monkeypatch, tmp_path, database):
    """Settings pointed at ``database`` (both backends), a temporary outbox and policy path."""
    yield from _configure(monkeypatch, tmp_path, database[0])


@pytest.fixture
def sqlite_settings(monkeypatch, tmp_path, sqlite_database):
    yield from _configure(monkeypatch, tmp_path, sqlite_database[0])


@pytest.fixture(scope="session")
def prefect_harness():
    """One real Prefect API server (temporary SQLite) for every flow test in the session."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with (
        temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
        prefect_test_harness(server_startup_timeout=120),
    ):
        yield
