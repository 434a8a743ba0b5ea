"""departments can be deactivated (history kept); outbox rows carry the lease token of their sender

Revision ID: i12_dept_active_lease
Revises: 0001
Create Date: 2026-12-04 20:21:58.934887
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision: str = 'i12_dept_active_lease'
down_revision: Union[str, None] = 'i12_sessions_limits'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('department', schema=None) as batch_op:
        batch_op.add_column(sa.Column('active', sa.Boolean(), nullable=False, server_default=sa.true()))
        batch_op.add_column(sa.Column('deactivated_on', sa.Date(), nullable=True))

    with op.batch_alter_table('outboundmessage', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lease_token', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('outboundmessage', schema=None) as batch_op:
        batch_op.drop_column('lease_token')

    with op.batch_alter_table('department', schema=None) as batch_op:
        batch_op.drop_column('deactivated_on')
        batch_op.drop_column('active')
