"""contacts handled per rotator and day (the denominator of the digest's shares)

Revision ID: i17_contacts
Revises: i16_requests
Create Date: 2026-12-04 22:45:00
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision: str = 'i17_contacts'
down_revision: Union[str, None] = 'i16_requests'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'contactcount',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('employee_id', sa.Integer(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('contacts', sa.Integer(), nullable=False),
        sa.Column('by_area', sa.JSON(), nullable=False),
        sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('recorded_by', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column('recorded_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['employee_id'], ['employee.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('employee_id', 'day', name='uq_contactcount_employee_day'),
    )
    with op.batch_alter_table('contactcount', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contactcount_day'), ['day'], unique=False)
        batch_op.create_index(batch_op.f('ix_contactcount_employee_id'), ['employee_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('contactcount', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_contactcount_employee_id'))
        batch_op.drop_index(batch_op.f('ix_contactcount_day'))
    op.drop_table('contactcount')
