"""Backups: export a populated SQLite database, import it into PostgreSQL, compare every table row by row."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from conftest import make_database
from sqlalchemy import func, insert, select
from sqlalchemy import types as satypes
from sqlmodel import SQLModel
from typer.testing import CliRunner

from frontline.operations.backup import (
    BackupError,
    _base_type,
    _is_json,
    export_state,
    import_state,
    row_counts,
    tables,
)

ROWS_PER_TABLE = 3
COMPANY_TODAY = dt.date(2031, 10, 20)  # a Monday far from the seeded timestamps and from the machine's clock


def _value(table, column, i: int, ids: dict[str, list[int]]):
    """A value for ``column`` of the ``i``-th synthetic row (unique where it must be; awkward on purpose)."""
    if column.foreign_keys:
        target = next(iter(column.foreign_keys)).column.table.name
        if column.unique:  # one row per target (e.g. pairing_gap.rotation_id): the target's rows of this pass
            return ids[target][len(ids[target]) - ROWS_PER_TABLE + i % ROWS_PER_TABLE]
        return ids[target][i % len(ids[target])]
    if _is_json(column):
        return {"n": i, "list": [i, "ü ✓ 東京", None], "nested": {"x": 1.5}} if i % 2 else [f"item-{i}", "Ω"]
    base = _base_type(column)
    if isinstance(base, satypes.LargeBinary):
        return bytes(range(256)) + i.to_bytes(2, "big")  # every byte value, NUL included
    if isinstance(base, satypes.DateTime):
        return dt.datetime(2026, 3, 29, 1, 30, 15, 123456, tzinfo=dt.UTC) + dt.timedelta(days=i)
    if isinstance(base, satypes.Date):
        return dt.date(2026, 1, 5) + dt.timedelta(weeks=i)
    if isinstance(base, satypes.Boolean):
        return bool(i % 2)
    if isinstance(base, satypes.Float):
        return 0.1 + i / 3
    if isinstance(base, satypes.Integer):
        return i % 5
    if isinstance(base, satypes.String):
        text = f"{table.name}.{column.name}#{i} Zoë «quotes» \"' \\ 🚀"
        return text[: base.length] if base.length else text + "\nsecond line"
    raise AssertionError(f"no synthetic value for {table.name}.{column.name} ({column.type!r}); extend the test")


def populate_every_table(engine) -> dict[str, list[int]]:
    """Insert ROWS_PER_TABLE rows into every table (generic over the metadata, so new tables are covered)."""
    ids: dict[str, list[int]] = {}
    with engine.begin() as conn:
        for table in tables():
            pk = list(table.primary_key.columns)
            assert len(pk) == 1, f"{table.name}: composite keys need handling here"
            existing = conn.execute(select(pk[0])).scalars().all()
            rows = []
            for i in range(ROWS_PER_TABLE):
                row = {}
                for column in table.columns:
                    if column.primary_key:
                        continue
                    if column.nullable and not column.foreign_keys and i == 0:
                        row[column.name] = None  # one row with every optional value empty
                    else:
                        row[column.name] = _value(table, column, i + len(existing), ids)
                rows.append(row)
            conn.execute(insert(table), rows)
            ids[table.name] = conn.execute(select(pk[0]).order_by(pk[0])).scalars().all()
    return ids


def dump(engine) -> dict[str, list[dict]]:
    with engine.connect() as conn:
        return {
            t.name: [dict(r) for r in conn.execute(select(t).order_by(*t.primary_key.columns)).mappings()]
            for t in tables()
        }


def run_a_company(url: str, engine, tmp_path, monkeypatch) -> None:
    """A synthetic company imported and put through the domain functions of the jobs (plan, pair,
    invites, an observation, digests, mail delivery), as the demo does, on ``engine``."""
    from datetime import timedelta

    from sqlmodel import select as sm_select

    from frontline.calendar.invites import process_invites, rotations_to_announce
    from frontline.core.clock import iso_week
    from frontline.core.policy import load_policy
    from frontline.core.settings import get_settings
    from frontline.demo import synth
    from frontline.digests.queue import queue_digests
    from frontline.mail.delivery import deliver_pending
    from frontline.mentors.service import pair_mentors
    from frontline.observations.intake import submit
    from frontline.people.roster import import_roster
    from frontline.rotations.service import plan_rotations
    from models import Employee, Rotation, session_scope

    policy_path = tmp_path / "frontline.toml"
    policy_path.write_text((Path(__file__).resolve().parent.parent / "frontline.example.toml").read_text())
    monkeypatch.setenv("FRONTLINE_DATABASE_URL", url)
    monkeypatch.setenv("FRONTLINE_OUTBOX_DIR", str(tmp_path / "outbox"))
    monkeypatch.setenv("FRONTLINE_POLICY_PATH", str(policy_path))
    monkeypatch.delenv("FRONTLINE_SMTP_URL", raising=False)
    get_settings.cache_clear()
    policy = load_policy()
    today = COMPANY_TODAY  # every date of the company's life is derived from this fixed day
    files = synth.write_csvs(synth.generate_company(80, seed=3, today=today), tmp_path / "roster")
    with session_scope(engine) as s:
        import_roster(s, files["departments"], files["employees"], files["absences"], actor="test", today=today)
    with session_scope(engine) as s:
        plan_rotations(s, policy, start=today, weeks=26, today=today, actor="test")
    with session_scope(engine) as s:
        pair_mentors(s, policy, as_of=today, actor="test")
    with session_scope(engine) as s:
        process_invites(s, rotations_to_announce(s, today, 26), as_of=today, announce_weeks=26)
    with session_scope(engine) as s:
        rotator = s.exec(sm_select(Employee).join(Rotation, Rotation.employee_id == Employee.id)).first()
        submit(
            s,
            rotator,
            {
                "text": "Customer ann@example.org could not export – «Zoë»",
                "impact": 4,
                "product_area": "export",
                "category": "bug",
                "urgent": True,
            },
            "api",
            policy=policy,
        )
    with session_scope(engine) as s:
        queue_digests(s, iso_week(today + timedelta(days=7)))
        queue_digests(s, iso_week(today))
    deliver_pending(engine)
    get_settings.cache_clear()
    with engine.connect() as conn:
        counts = row_counts(conn)
    assert counts["employee"] == 80 and counts["rotation"] and counts["mentorpairing"] and counts["observation"] == 1
    assert counts["outboundmessage"] > counts["rotation"] // 2 and counts["auditevent"] >= 4, counts


@pytest.mark.postgres
def test_sqlite_to_postgres_round_trip_keeps_every_row(tmp_path, monkeypatch):
    sqlite = make_database("sqlite", tmp_path / "a")
    url, src = next(sqlite)
    try:
        run_a_company(url, src, tmp_path, monkeypatch)
        populate_every_table(src)
        # a gap in the ids (deleted rows) must survive the move unchanged
        with src.begin() as conn:
            t = SQLModel.metadata.tables["auditevent"]
            conn.execute(t.delete().where(t.c.id == 2))
        before = dump(src)
        assert all(before[t.name] for t in tables()), "every table holds rows"
        out = tmp_path / "backup.jsonl"
        exported = export_state(src, out)
        assert exported.counts == {name: len(rows) for name, rows in before.items()}
    finally:
        next(sqlite, None)

    header = json.loads(out.read_text().splitlines()[0])
    assert header["format"] == "frontline-export" and header["schema_revision"] == exported.schema_revision
    assert json.loads(out.read_text().splitlines()[-1])["end"] is True

    pg = make_database("postgres", tmp_path / "b")
    _, dst = next(pg)
    try:
        imported = import_state(dst, out)
        assert imported.counts == exported.counts
        after = dump(dst)
        for table in tables():
            assert after[table.name] == before[table.name], f"table {table.name} differs after the move"
        # sequences moved past the imported ids: new rows get fresh ids, no collision
        with dst.begin() as conn:
            t = SQLModel.metadata.tables["auditevent"]
            new_id = conn.execute(
                insert(t)
                .values(at=dt.datetime.now(dt.UTC), actor="test", action="after-import", details={})
                .returning(t.c.id)
            ).scalar_one()
        assert new_id > max(r["id"] for r in before["auditevent"])
        # a second import into the now non-empty database is refused and changes nothing
        with pytest.raises(BackupError, match="not empty"):
            import_state(dst, out)
        with dst.connect() as conn:
            assert conn.execute(select(func.count()).select_from(t)).scalar_one() == len(before["auditevent"]) + 1
        # --force replaces the contents
        import_state(dst, out, force=True)
        assert dump(dst) == before
    finally:
        next(pg, None)


def test_truncated_or_corrupt_file_imports_nothing(tmp_path):
    gen = make_database("sqlite", tmp_path / "a")
    _, src = next(gen)
    out = tmp_path / "backup.jsonl"
    try:
        populate_every_table(src)
        export_state(src, out)
    finally:
        next(gen, None)
    lines = out.read_text().splitlines()

    gen = make_database("sqlite", tmp_path / "b")
    _, dst = next(gen)
    try:
        truncated = tmp_path / "truncated.jsonl"
        truncated.write_text("\n".join(lines[:-1]) + "\n")
        with pytest.raises(BackupError, match="truncated"):
            import_state(dst, truncated)
        corrupt = tmp_path / "corrupt.jsonl"
        corrupt.write_text("\n".join(lines[:5] + ["{not json"] + lines[5:]) + "\n")
        with pytest.raises(BackupError, match=r"corrupt.jsonl:6: not valid JSON"):
            import_state(dst, corrupt)
        bad_column = tmp_path / "bad-column.jsonl"
        row = json.loads(lines[1])
        row["r"]["no_such_column"] = 1
        bad_column.write_text("\n".join([lines[0], json.dumps(row)] + lines[2:]) + "\n")
        with pytest.raises(BackupError, match="no column 'no_such_column'"):
            import_state(dst, bad_column)
        other_revision = tmp_path / "other-revision.jsonl"
        header = json.loads(lines[0])
        header["schema_revision"] = "9999"
        other_revision.write_text("\n".join([json.dumps(header)] + lines[1:]) + "\n")
        with pytest.raises(BackupError, match="schema revision '9999'"):
            import_state(dst, other_revision)
        with dst.connect() as conn:
            assert not any(row_counts(conn).values()), "nothing was written by the failed imports"
    finally:
        next(gen, None)


def test_cli_export_and_import_state(tmp_path, monkeypatch):
    from frontline.cli import app
    from frontline.core.settings import get_settings

    runner = CliRunner()
    gen = make_database("sqlite", tmp_path / "a")
    url, src = next(gen)
    out = tmp_path / "cli-backup.jsonl"
    try:
        populate_every_table(src)
        before = dump(src)
        monkeypatch.setenv("FRONTLINE_DATABASE_URL", url)
        get_settings.cache_clear()
        result = runner.invoke(app, ["export", "--output", str(out)])
        assert result.exit_code == 0, result.output
        assert f"exported {sum(map(len, before.values()))} rows" in result.output
    finally:
        next(gen, None)

    target = tmp_path / "restored.db"
    monkeypatch.setenv("FRONTLINE_DATABASE_URL", f"sqlite:///{target}")
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["import-state", str(out)])
        assert result.exit_code == 0, result.output
        from models.db import get_engine

        assert dump(get_engine(f"sqlite:///{target}")) == before
        result = runner.invoke(app, ["import-state", str(out)])
        assert result.exit_code == 1 and "not empty" in result.output
    finally:
        get_settings.cache_clear()
        from models.db import _engine_for

        _engine_for.cache_clear()
