"""Export and import the whole Frontline database as one JSON-lines file.

The file is generic over ``SQLModel.metadata.sorted_tables`` (parents before children), so every table
added to ``models/tables.py`` is covered without touching this module. Format (one JSON object a line):

* line 1, the header: ``{"format": "frontline-export", "version": 1, "schema_revision": "0001",
  "exported_at": "...", "dialect": "sqlite", "tables": ["department", ...]}``
* one line per row: ``{"t": "<table>", "r": {"<column>": value, ...}}`` with tables in dependency order.
  Values: ``datetime``/``date``/``time`` as ISO 8601 strings, ``bytes`` as base64, ``Decimal`` and
  ``UUID`` as strings, JSON columns as JSON; everything else as is.
* the last line, the trailer: ``{"end": true, "counts": {"<table>": n, ...}}``. A file without it is
  truncated and is refused.

``import_state`` loads such a file into a database at the same schema revision, in ONE transaction (all
or nothing), keeping primary keys, and afterwards moves PostgreSQL sequences past the largest id so
new rows do not collide. It refuses a database that already holds rows unless ``force=True`` (which
deletes them first, inside the same transaction).
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Table, func, select, text
from sqlalchemy import types as satypes
from sqlalchemy.engine import Connection, Engine
from sqlmodel import SQLModel

import models
from frontline.core.errors import BackupError

FORMAT = "frontline-export"
VERSION = 1
BATCH = 1000


@dataclass
class BackupResult:
    schema_revision: str
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def tables() -> list[Table]:
    """Every application table, parents before children."""
    return list(SQLModel.metadata.sorted_tables)


def schema_revision(conn: Connection) -> str:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision() or ""


# --- value encoding ------------------------------------------------------------------------------


def _base_type(column) -> satypes.TypeEngine:
    col_type = column.type
    while isinstance(col_type, satypes.TypeDecorator):
        col_type = col_type.impl if isinstance(col_type.impl, satypes.TypeEngine) else col_type.impl_instance
    return col_type


def _is_json(column) -> bool:
    return isinstance(_base_type(column), satypes.JSON)


def _encode(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return str(value)
    return value


def _decoder(column):
    """A function turning the file's JSON value back into what the column stores."""
    if _is_json(column):
        return lambda v: v
    base = _base_type(column)
    if isinstance(base, satypes.LargeBinary):
        return base64.b64decode
    if isinstance(base, satypes.DateTime):
        return dt.datetime.fromisoformat
    if isinstance(base, satypes.Date):
        return dt.date.fromisoformat
    if isinstance(base, satypes.Time):
        return dt.time.fromisoformat
    if isinstance(base, satypes.Numeric) and getattr(base, "asdecimal", False):
        return decimal.Decimal
    if isinstance(base, satypes.Uuid):
        return uuid.UUID
    return lambda v: v


# --- export --------------------------------------------------------------------------------------


def export_lines(engine: Engine, result: BackupResult | None = None) -> Iterator[str]:
    """The export, line by line (read in one transaction, so the snapshot is consistent).

    ``result``, when given, receives the schema revision and the row counts."""
    names = [t.name for t in tables()]
    result = result if result is not None else BackupResult(schema_revision="")
    counts = result.counts
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
        result.schema_revision = schema_revision(conn)
        header = {
            "format": FORMAT,
            "version": VERSION,
            "schema_revision": result.schema_revision,
            "exported_at": models.utcnow().isoformat(),
            "dialect": conn.dialect.name,
            "tables": names,
        }
        yield json.dumps(header)
        for table in tables():
            order = list(table.primary_key.columns) or list(table.columns)
            n = 0
            rows = conn.execution_options(yield_per=BATCH).execute(select(table).order_by(*order))
            for row in rows.mappings():
                yield json.dumps({"t": table.name, "r": {k: _encode(v) for k, v in row.items()}}, ensure_ascii=False)
                n += 1
            counts[table.name] = n
    yield json.dumps({"end": True, "counts": counts})


def export_state(engine: Engine, output: Path | IO[str]) -> BackupResult:
    """Write the export to ``output`` (a path, written atomically, or an open text file)."""
    result = BackupResult(schema_revision="")
    if isinstance(output, (str, Path)):
        path = Path(output)
        tmp = path.with_name(path.name + ".partial")
        try:
            with tmp.open("w", encoding="utf-8") as fh:
                result = export_state(engine, fh)
            tmp.replace(path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise BackupError(f"{path}: cannot write the export: {exc.strerror or exc}") from None
        return result
    for line in export_lines(engine, result):
        output.write(line + "\n")
    return result


# --- import --------------------------------------------------------------------------------------


def row_counts(conn: Connection) -> dict[str, int]:
    return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() for t in tables()}


def _reset_sequences(conn: Connection) -> None:
    """Move every PostgreSQL serial/identity sequence past the largest imported id."""
    for table in tables():
        for column in table.primary_key.columns:
            if not isinstance(_base_type(column), satypes.Integer):
                continue
            seq = conn.execute(
                text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": f'"{table.name}"', "c": column.name}
            ).scalar()
            if not seq:
                continue
            top = conn.execute(select(func.max(column))).scalar()
            if top is None:
                conn.execute(text("SELECT setval(:s, 1, false)"), {"s": seq})
            else:
                conn.execute(text("SELECT setval(:s, :v, true)"), {"s": seq, "v": int(top)})


def _read(fh: IO[bytes], source: str) -> Iterator[tuple[int, dict]]:
    for lineno, raw in enumerate(fh, start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise BackupError(f"{source}:{lineno}: not UTF-8 text; not a file written by frontline export") from None
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BackupError(f"{source}:{lineno}: not valid JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise BackupError(f"{source}:{lineno}: not a JSON object")
        yield lineno, obj


def import_state(engine: Engine, source: Path | str, *, force: bool = False) -> BackupResult:
    """Load an export into ``engine``'s database (already migrated to the export's revision).

    All or nothing: any problem raises :class:`BackupError` (naming the line) and leaves the database
    unchanged.
    """
    from sqlalchemy.exc import DBAPIError

    try:
        return _import_state(engine, Path(source), force=force)
    except OSError as exc:
        raise BackupError(f"{source}: cannot read the file: {exc.strerror or exc}") from None
    except DBAPIError as exc:
        raise BackupError(f"{source}: the database refused the data, nothing was imported: {exc.orig}") from None


def _import_state(engine: Engine, path: Path, *, force: bool) -> BackupResult:
    """Check the header, empty (or refuse) the database, load the rows, check them against the trailer."""
    with path.open("rb") as fh, engine.begin() as conn:
        lines = _read(fh, str(path))
        try:
            _, header = next(lines)
        except StopIteration:
            raise BackupError(f"{path}: empty file") from None
        _check_header(path, header, schema_revision(conn))
        _clear_or_refuse(conn, force=force)
        counts = _load_rows(conn, path, lines)
        if conn.dialect.name == "postgresql":
            _reset_sequences(conn)
    return BackupResult(schema_revision=header["schema_revision"], counts=counts)


def _check_header(path: Path, header: dict[str, Any], current_revision: str) -> None:
    """The file is a Frontline export in this format version, at the database's schema revision, with
    only tables this Frontline knows."""
    if header.get("format") != FORMAT:
        raise BackupError(f"{path}:1: not a Frontline export (format={header.get('format')!r})")
    if header.get("version") != VERSION:
        raise BackupError(f"{path}:1: export format version {header.get('version')!r}; this Frontline reads {VERSION}")
    if header.get("schema_revision") != current_revision:
        raise BackupError(
            f"{path}:1: the export is at schema revision {header.get('schema_revision')!r} but the database "
            f"is at {current_revision!r}; migrate both to the same revision first (frontline init)"
        )
    known = {t.name for t in tables()}
    unknown = [n for n in header.get("tables", []) if n not in known]
    if unknown:
        raise BackupError(f"{path}:1: tables unknown to this Frontline: {', '.join(unknown)}")


def _clear_or_refuse(conn: Connection, *, force: bool) -> None:
    """Refuse a database that holds rows, unless ``force`` (then delete them, children first)."""
    existing = {n: c for n, c in row_counts(conn).items() if c}
    if not existing:
        return
    if not force:
        listing = ", ".join(f"{n}={c}" for n, c in existing.items())
        raise BackupError(f"the database is not empty ({listing}); use --force to replace its contents")
    for table in reversed(tables()):
        conn.execute(table.delete())


def _load_rows(conn: Connection, path: Path, lines: Iterator[tuple[int, dict]]) -> dict[str, int]:
    """Insert every row line (batched per table) up to the trailer; the counts per table, checked
    against the trailer's."""
    by_name = {t.name: t for t in tables()}
    decoders = {name: {c.name: _decoder(c) for c in t.columns} for name, t in by_name.items()}
    counts: dict[str, int] = {}
    batch: list[dict] = []
    batch_table: str | None = None
    trailer = None

    def flush() -> None:
        if batch and batch_table is not None:
            conn.execute(by_name[batch_table].insert(), batch)
            batch.clear()

    for lineno, obj in lines:
        if trailer is not None:
            raise BackupError(f"{path}:{lineno}: data after the end marker")
        if obj.get("end"):
            trailer = obj
            continue
        name, row = obj.get("t"), obj.get("r")
        if name not in by_name or not isinstance(row, dict):
            raise BackupError(f"{path}:{lineno}: unknown table {name!r} or malformed row")
        cols = decoders[name]
        try:
            values = {k: cols[k](v) if v is not None else None for k, v in row.items()}
        except KeyError as exc:
            raise BackupError(f"{path}:{lineno}: table {name} has no column {exc.args[0]!r}") from None
        except (ValueError, TypeError) as exc:
            raise BackupError(f"{path}:{lineno}: bad value in table {name}: {exc}") from None
        if name != batch_table:
            flush()
            batch_table = name
        batch.append(values)
        counts[name] = counts.get(name, 0) + 1
        if len(batch) >= BATCH:
            flush()
    flush()
    if trailer is None:
        raise BackupError(f"{path}: truncated file (no end marker); nothing was imported")
    expected = {n: c for n, c in trailer.get("counts", {}).items() if c}
    if expected != {n: c for n, c in counts.items() if c}:
        raise BackupError(f"{path}: row counts {counts} differ from the end marker {expected}; nothing was imported")
    return counts
