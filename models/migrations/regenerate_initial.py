"""Regenerate the initial migration from the models (used before the first release only).

    python -m models.migrations.regenerate_initial

Deletes ``versions/0001_initial.py`` and autogenerates it again against an empty SQLite database,
so the migration always equals the models. ``tests/test_migrations.py`` fails when they drift.
"""

import tempfile
from pathlib import Path

from alembic import command

from models.db import MIGRATIONS_DIR, alembic_config, get_engine


def main() -> None:
    target = MIGRATIONS_DIR / "versions" / "0001_initial.py"
    target.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        engine = get_engine(f"sqlite:///{Path(tmp) / 'empty.db'}")
        command.revision(alembic_config(engine), message="initial schema", autogenerate=True, rev_id="0001")
    generated = next((MIGRATIONS_DIR / "versions").glob("0001_*.py"))
    generated.rename(target)
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
