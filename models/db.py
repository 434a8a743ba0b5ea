"""The one database helper: engines, sessions, and schema creation/upgrade through Alembic."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Table, event, insert
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, create_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` and use the psycopg 3 driver for them."""
    parsed = make_url(url)
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


@lru_cache(maxsize=16)
def _engine_for(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - exercised by every test
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "savepoint")
        def _begin_before_savepoint(conn, _name):  # pragma: no cover - exercised by every savepoint
            # pysqlite opens a transaction only before the first INSERT/UPDATE/DELETE. A SAVEPOINT issued
            # before any write then starts one of its own, and releasing it COMMITS, outside the caller's
            # transaction (a later rollback would not undo it). Open the real transaction first; IMMEDIATE
            # takes the write lock now, waiting (busy_timeout) instead of failing on a stale snapshot.
            if not conn.connection.dbapi_connection.in_transaction:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def get_engine(url: str | None = None) -> Engine:
    """The engine for ``url`` (default: the configured database), created once per URL."""
    if url is None:
        from frontline.core.settings import get_settings

        url = get_settings().configured_database_url()
    return _engine_for(normalise_url(url))


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """A session that commits when the block succeeds and rolls back when it raises."""
    with Session(engine or get_engine(), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def bulk_insert(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert ``rows`` (mappings with the same keys, every column without a default among them) into ``table``
    in the session's transaction, as one DBAPI ``executemany``: no ORM object, no per-row statement, and each
    distinct value converted by its column type's bind processor once (dates and timestamps repeat across
    rows), so the stored values are exactly what an ORM insert stores. The session is flushed first. Returns
    the number of rows inserted; ValueError (nothing written) when a row has other keys or a column is missing."""
    if not rows:
        return 0
    keys = list(rows[0])
    unknown = [k for k in keys if k not in table.c]
    if unknown:
        raise ValueError(f"bulk insert into {table.name}: no column(s) {', '.join(unknown)}")
    keyset = set(keys)
    for n, row in enumerate(rows):
        if row.keys() != keyset:
            raise ValueError(f"bulk insert into {table.name}: row {n} has keys {sorted(row)}, not {sorted(keys)}")
    session.flush()
    conn = session.connection()
    dialect = conn.dialect
    compiled = insert(table).compile(dialect=dialect, column_keys=keys, for_executemany=True)  # no RETURNING
    extra = [b for b in compiled.binds if b not in keyset]
    if extra:  # a column default the statement would compute per row: the caller must give it
        raise ValueError(f"bulk insert into {table.name}: give the column(s) {', '.join(sorted(extra))}")
    values: list[list[Any]] = []
    for k in keys:
        column = [row[k] for row in rows]
        process = table.c[k].type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            try:  # each distinct value once
                converted = {v: (None if v is None else process(v)) for v in set(column)}
                column = list(map(converted.__getitem__, column))
            except TypeError:  # unhashable values: one by one
                column = [None if v is None else process(v) for v in column]
        values.append(column)
    if compiled.positional:
        position = [keys.index(name) for name in compiled.positiontup or []]
        params: list[Any] = list(zip(*(values[j] for j in position), strict=True))
    else:
        params = [dict(zip(keys, vals, strict=True)) for vals in zip(*values, strict=True)]
    conn.exec_driver_sql(compiled.string, params)
    return len(rows)


def alembic_config(engine: Engine):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def migration_heads() -> set[str]:
    """The head revisions of ``migrations/versions``, read from the files' ``revision`` and
    ``down_revision`` assignments (without importing Alembic, which costs ~0.5 s on a small machine)."""
    import ast

    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.AnnAssign) and node.value is not None:
                target: ast.expr = node.target
                value_node = node.value
            elif isinstance(node, ast.Assign) and len(node.targets) == 1:
                target, value_node = node.targets[0], node.value
            else:
                continue
            if not isinstance(target, ast.Name) or target.id not in {"revision", "down_revision"}:
                continue
            value = ast.literal_eval(value_node)
            if target.id == "revision":
                revisions.add(str(value))
            elif value:
                parents.update([value] if isinstance(value, str) else value)
    return revisions - parents


def current_revisions(engine: Engine) -> set[str] | None:
    """The revisions recorded in ``alembic_version``; ``None`` when there is no such table yet."""
    from sqlalchemy import inspect, text

    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return {row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))}


def init_db(engine: Engine | None = None) -> str:
    """Create the schema or upgrade it to the newest revision. Returns the revision now in place.

    A database already at the one head revision is answered without Alembic (every command opens the
    database; this keeps that to a query)."""
    engine = engine or get_engine()
    heads = migration_heads()
    if len(heads) == 1 and current_revisions(engine) == heads:
        return next(iter(heads))
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    command.upgrade(alembic_config(engine), "head")
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision() or ""
