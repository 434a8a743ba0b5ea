"""mentor answers and HR review of pairings (pairing response, proposed/declined/rejected states), why a
rotation has no mentor (pairing_gap), and change requests from rotators and heads (change_request)

Revision ID: i16_requests
Revises: i16_preferences
Create Date: 2026-12-04 22:40:00
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision: str = 'i16_requests'
down_revision: Union[str, None] = 'i16_preferences'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('mentorpairing', schema=None) as batch_op:
        batch_op.add_column(sa.Column('response', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
        batch_op.add_column(sa.Column('responded_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))

    op.create_table(
        'pairing_gap',
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('relaxation', sa.Text(), nullable=True),
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('rotation_id', sa.Integer(), nullable=False),
        sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['rotation_id'], ['rotation.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('rotation_id'),
    )
    op.create_table(
        'change_request',
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('preferred_weeks', sa.JSON(), nullable=False),
        sa.Column('decision_note', sa.Text(), nullable=True),
        sa.Column('outcome', sa.Text(), nullable=True),
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('rotation_id', sa.Integer(), nullable=False),
        sa.Column('employee_id', sa.Integer(), nullable=False),
        sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('requester_email', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column('requester_role', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('decided_by', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
        sa.Column('decided_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['employee_id'], ['employee.id'], ),
        sa.ForeignKeyConstraint(['rotation_id'], ['rotation.id'], ),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('change_request', schema=None) as batch_op:
        batch_op.create_index('ix_change_request_status', ['status', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_change_request_rotation_id'), ['rotation_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('change_request', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_change_request_rotation_id'))
        batch_op.drop_index('ix_change_request_status')
    op.drop_table('change_request')
    op.drop_table('pairing_gap')
    with op.batch_alter_table('mentorpairing', schema=None) as batch_op:
        batch_op.drop_column('responded_at')
        batch_op.drop_column('response')
