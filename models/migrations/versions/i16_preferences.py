"""employees' preferred and unavailable weeks (soft planning terms)

Revision ID: i16_preferences
Revises: i16_manager_email
Create Date: 2026-12-04 22:45:00
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision: str = 'i16_preferences'
down_revision: Union[str, None] = 'i16_manager_email'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'weekpreference',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('employee_id', sa.Integer(), nullable=False),
        sa.Column('week', sa.Date(), nullable=False),
        sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['employee_id'], ['employee.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('employee_id', 'week', 'kind', 'source', name='uq_week_preference'),
    )
    with op.batch_alter_table('weekpreference', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_weekpreference_employee_id'), ['employee_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('weekpreference', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_weekpreference_employee_id'))

    op.drop_table('weekpreference')
