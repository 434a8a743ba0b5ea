"""The cycle collector pauses of :mod:`frontline.core.heap`."""

import gc

from frontline.core.heap import command_heap, no_cyclic_gc


def test_no_cyclic_gc_pauses_and_restores():
    assert gc.isenabled()
    with no_cyclic_gc():
        assert not gc.isenabled()
        with no_cyclic_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()  # left as it was found
    assert gc.isenabled()


def test_command_heap_freezes_what_the_block_leaves_alive():
    """Inside: no collection; after: the collector runs again, and the objects still alive (here 1,000
    lists) are in the permanent generation, out of its scans."""
    gc.collect()
    gc.unfreeze()
    try:
        with command_heap():
            assert not gc.isenabled()
            kept = [[k] for k in range(1_000)]
            assert gc.get_freeze_count() == 0
        assert gc.isenabled()
        assert gc.get_freeze_count() >= len(kept)
        assert all(gc.is_tracked(x) for x in kept)
    finally:
        gc.unfreeze()


def test_pair_without_flow_closes_its_database_so_sqlite_keeps_no_wal(sqlite_settings, sqlite_engine):
    """``frontline pair --no-flow`` runs under :func:`command_heap` (collector paused, what is left alive
    frozen), so nothing closes the pooled connections before the process ends: SQLite then left the run's
    writes in ``frontline.db-wal`` (a copy of the database file alone, as a backup by ``cp``, missed the
    pairings). ``models.db`` closes them at exit: the WAL is checkpointed into the database and removed."""
    import sqlite3
    import subprocess
    import sys
    from datetime import date
    from pathlib import Path

    from models import session_scope
    from tests.test_mentoring import _company, _rotation

    sqlite_settings.policy_path.write_text('support_department = "Support"\n', encoding="utf-8")
    with session_scope(sqlite_engine) as s:
        _rotation(s, _company(s)["dora"], date(2027, 3, 1))
    sqlite_engine.dispose()
    db = Path(sqlite_engine.url.database or "")
    command = "from frontline.cli import main; main()"
    proc = subprocess.run(
        [sys.executable, "-c", command, "pair", "--no-flow", "--as-of", "2027-01-04"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "1 created" in proc.stdout, proc.stdout
    assert not Path(f"{db}-wal").exists()
    copy = db.with_name("copy.db")
    copy.write_bytes(db.read_bytes())  # the database file alone has the pairing
    with sqlite3.connect(copy) as con:
        assert con.execute("SELECT count(*) FROM mentorpairing WHERE status = 'active'").fetchone() == (1,)
