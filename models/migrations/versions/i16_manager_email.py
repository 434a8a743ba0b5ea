"""employees may name their manager (told when their rotation is planned, moved or cancelled)

Revision ID: i16_manager_email
Revises: i15_time_off
Create Date: 2026-12-04 22:30:00
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision: str = 'i16_manager_email'
down_revision: Union[str, None] = 'i15_time_off'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('employee', schema=None) as batch_op:
        batch_op.add_column(sa.Column('manager_email', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('employee', schema=None) as batch_op:
        batch_op.drop_column('manager_email')
