"""Write the next Alembic migration from the difference between the models and the newest revision.

    make migration-new MESSAGE="observation contacts"      (or: python -m models.migrations.new_revision "...")

Upgrades an empty SQLite database to the newest revision, autogenerates a revision against it and
names it with the next number (``0002_observation_contacts.py``). Read the result before committing:
autogenerate does not see renames, and server defaults for new NOT NULL columns on tables with rows
must be added by hand. ``tests/test_migrations.py`` fails while models and migrations disagree.
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

from alembic import command

from models.db import MIGRATIONS_DIR, alembic_config, get_engine, init_db


def next_rev_id(versions: Path) -> str:
    numbers = [int(m.group(1)) for p in versions.glob("*.py") if (m := re.match(r"(\d{4})_", p.name))]
    return f"{max(numbers, default=0) + 1:04d}"


def main(message: str) -> Path:
    versions = MIGRATIONS_DIR / "versions"
    rev_id = next_rev_id(versions)
    with tempfile.TemporaryDirectory() as tmp:
        engine = get_engine(f"sqlite:///{Path(tmp) / 'head.db'}")
        init_db(engine)
        command.revision(alembic_config(engine), message=message, autogenerate=True, rev_id=rev_id)
        engine.dispose()
    slug = re.sub(r"[^a-z0-9]+", "_", message.lower()).strip("_")
    generated = next(versions.glob(f"{rev_id}_*.py"))
    target = versions / f"{rev_id}_{slug}.py"
    generated.rename(target)
    print(f"wrote {target}")
    return target


if __name__ == "__main__":
    if len(sys.argv) != 2 or not sys.argv[1].strip():
        sys.exit('usage: python -m models.migrations.new_revision "what changed"')
    main(sys.argv[1].strip())
