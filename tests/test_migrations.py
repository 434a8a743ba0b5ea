"""The Alembic migrations create exactly the schema the models describe, on both backends."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import models  # noqa: F401


def test_migrations_match_models(engine):
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), SQLModel.metadata)
    assert diff == [], (
        "models and migrations differ; run `make migration` (before the first release) or add a revision:\n"
        + "\n".join(map(str, diff))
    )


def test_init_is_idempotent(engine):
    from models import init_db

    assert init_db(engine) == init_db(engine) == "i12_dept_active_lease"
