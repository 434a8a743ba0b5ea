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


_ENGINES: list[Engine] = []  # every engine made by :func:`_engine_for` (for :func:`close_engines`)


def close_engines() -> None:
    """Close the pooled connections of every engine made so far (they reconnect if used again); run at
    process exit (registered with the first engine). A command that paused the cycle collector and froze
    what it left alive (:func:`frontline.core.heap.command_heap`) leaves them to nobody else: SQLite then
    kept its ``-wal`` and ``-shm`` files beside the database, with the run's last writes in the WAL only (a
    copy of the database file alone, as a backup by ``cp``, missed them). Closing checkpoints the WAL into
    the database and removes it."""
    for engine in _ENGINES:
        engine.dispose()


@lru_cache(maxsize=16)
def _engine_for(url: str) -> Engine:
    engine = _make_engine(url)
    if not _ENGINES:
        import atexit

        atexit.register(close_engines)
    _ENGINES.append(engine)
    return engine


def _make_engine(url: str) -> Engine:
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


# --- the planning lock: one writer of the plan or the pairings at a time -----------------------------

PLANNING_LOCK_CLASS = 0x46524F4E  # first key of the PostgreSQL advisory lock ("FRON"); the second is the schema's
_HELD = "frontline_planning_lock"  # session.info: the transaction that holds it
_FILE = "frontline_planning_lock_file"  # session.info: SQLite: the open lock file (closing it releases the lock)
# session.info: the longest a web request's writer waits for the planning lock (seconds; see
# frontline.web.auth.web_session): a person's click should not hang for the command-line wait.
INTERACTIVE = "frontline_interactive_wait"


def planning_lock(session: Session, holder: str, *, wait: float | None = None) -> None:
    """Take the planning lock in ``session``'s transaction, before the writer reads its input; it is held
    until that transaction commits or rolls back (so a second writer reads the first one's result), also
    when the process dies. Every writer of the plan or the pairings takes it (planning, pairing,
    onboarding, HR's overrides, change-request approvals and pairing changes, a mentor's decline); taking
    it again in the same transaction is free.

    * PostgreSQL: ``pg_advisory_xact_lock`` on (``PLANNING_LOCK_CLASS``, the schema): it blocks nobody but
      other planning writers of the same database schema; the holder names itself in ``application_name``.
    * SQLite: an exclusive ``flock`` on the file ``<database>-planning`` beside the database (where SQLite's
      own locks live), released when the transaction ends: it blocks nobody but other planning writers
      (SQLite's write lock would stop mail delivery and the console for the whole run); the holder writes
      its name into the file.

    A writer waits at most ``wait`` seconds (default: the setting ``FRONTLINE_PLANNING_LOCK_WAIT``, at most
    ``session.info[INTERACTIVE]`` in a web request's session), logging
    who it waits for, then raises :class:`~frontline.core.errors.PlanningBusy` naming the holder and since
    when. After a wait the session's objects are re-read (expired) so nothing stale is planned from."""
    root = session.get_transaction()
    if root is not None and session.info.get(_HELD) is root:
        return
    conn = session.connection()
    root = session.get_transaction()
    if wait is None:
        from frontline.core.settings import get_settings

        wait = get_settings().planning_lock_wait
        if INTERACTIVE in session.info:  # a web request: someone is looking at a spinner
            wait = min(wait, session.info[INTERACTIVE])
    from frontline.core.errors import PlanningBusy

    try:
        if conn.dialect.name == "postgresql":
            waited = _pg_planning_lock(conn, holder, wait)
        else:
            waited = _sqlite_planning_lock(session, conn, holder, wait)
    except PlanningBusy as busy:
        if INTERACTIVE not in session.info:
            raise
        _log().warning("%s; nothing was written (a web request's wait)", busy.detail())
        raise PlanningBusy(busy.holder, busy.who, busy.waited, interactive=True) from None
    session.info[_HELD] = root
    if waited:
        session.flush()
        session.expire_all()


def _busy(holder: str, waited: float, who: str) -> Exception:
    from frontline.core.errors import PlanningBusy

    return PlanningBusy(holder, who, waited)


def _log() -> Any:
    import logging

    return logging.getLogger("frontline.planning")


def _waiting(holder: str, who: str) -> None:
    _log().warning("%s waits for the planning lock: %s", holder, who)


def _pg_planning_lock(conn: Any, holder: str, wait: float) -> bool:
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    key = {"c": PLANNING_LOCK_CLASS}
    waited = False
    if not conn.execute(text("SELECT pg_try_advisory_xact_lock(:c, hashtext(current_schema()))"), key).scalar():
        who = _pg_holder(conn)
        waited = True
        if wait <= 0:
            raise _busy(holder, 0, who)
        _waiting(holder, who)
        previous = conn.execute(text("SELECT current_setting('lock_timeout')")).scalar()
        conn.execute(text("SELECT set_config('lock_timeout', :t, true)"), {"t": f"{max(1, round(wait * 1000))}ms"})
        try:
            conn.execute(text("SELECT pg_advisory_xact_lock(:c, hashtext(current_schema()))"), key)
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) != "55P03":  # lock_not_available: the wait ran out
                raise
            with conn.engine.connect() as other:  # this transaction is aborted now
                who = _pg_holder(other)
            raise _busy(holder, wait, who) from None
        conn.execute(text("SELECT set_config('lock_timeout', :t, true)"), {"t": previous})
    conn.execute(text("SELECT set_config('application_name', :n, true)"), {"n": f"frontline planning: {holder}"[:63]})
    return waited


def _pg_holder(conn: Any) -> str:
    from sqlalchemy import text

    row = conn.execute(
        text(
            "SELECT a.application_name, a.pid, a.xact_start, a.client_addr FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
            "AND l.classid = :c AND l.objid = hashtext(current_schema())::oid AND l.objsubid = 2"
        ),
        {"c": PLANNING_LOCK_CLASS},
    ).first()
    if row is None:
        return "it has just finished"
    name, pid, since, addr = row
    return f"{name or 'a session'}, PostgreSQL pid {pid}{f' from {addr}' if addr else ''}, since {_when(since)}"


def _when(moment: Any) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z") if moment is not None else "an unknown time"


def _sqlite_planning_lock(session: Session, conn: Any, holder: str, wait: float) -> bool:
    """An exclusive ``flock`` on ``<database>-planning``, released when the transaction ends (the OS
    releases it when the process dies). Not SQLite's write lock: taken before reading, that would stop
    every other writer (mail delivery, the console) for the whole run, 11 s for ``frontline pair`` at 10k
    (``bench/planning_lock.py``); this one stops only the other planning writers."""
    import fcntl
    import json
    import os
    import socket
    import time
    from datetime import UTC, datetime

    database = conn.engine.url.database
    if not database or database == ":memory:":  # one connection, one process: nobody to wait for
        return False
    path = f"{database}-planning"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    waited, t0 = False, time.monotonic()
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() - t0 >= wait:
                    raise _busy(holder, time.monotonic() - t0, _sqlite_holder(fd)) from None
                if not waited:
                    _waiting(holder, _sqlite_holder(fd))
                    waited = True
                time.sleep(0.05)
        note = {
            "holder": holder,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": datetime.now(UTC).isoformat(),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(note).encode(), 0)
    except BaseException:
        os.close(fd)
        raise

    session.info[_FILE] = fd
    if not event.contains(session, "after_transaction_end", _release_file_lock):
        event.listen(session, "after_transaction_end", _release_file_lock)
    return waited


def _release_file_lock(session: Session, transaction: Any) -> None:
    """When the transaction that took the SQLite planning lock has committed or rolled back: let it go."""
    import os

    if transaction.parent is not None or _FILE not in session.info:
        return
    fd = session.info.pop(_FILE)
    session.info.pop(_HELD, None)
    try:
        os.ftruncate(fd, 0)  # nobody holds it now
    finally:
        os.close(fd)


def _sqlite_holder(fd: int) -> str:
    """Who holds the planning lock, from what the holder wrote into the lock file."""
    import json
    import os
    from datetime import datetime

    try:
        data = json.loads(os.pread(fd, 4096, 0).decode() or "null")
        since = _when(datetime.fromisoformat(data["since"]))
        return f"{data['holder']}, pid {data['pid']} on {data['host']}, since {since}"
    except (OSError, ValueError, TypeError, KeyError):
        return "another process (it has not said who yet)"
