"""Alembic environment: the engine comes from ``models.db`` (``cfg.attributes['engine']``)."""

from alembic import context
from sqlmodel import SQLModel

import models  # noqa: F401  (registers every table)
from models.db import get_engine

config = context.config
target_metadata = SQLModel.metadata


def run_migrations_online() -> None:
    engine = config.attributes.get("engine") or get_engine()
    with engine.begin() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        context.run_migrations()


run_migrations_online()
