"""time off from calendar feeds: absence source, connector status

Revision ID: i15_time_off
Revises: i12_dept_active_lease
Create Date: 2026-12-04 22:21:23.089794
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision: str = 'i15_time_off'
down_revision: Union[str, None] = 'i12_dept_active_lease'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('connectorstatus',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('last_success_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('last_success', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('last_error_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('connectorstatus', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_connectorstatus_name'), ['name'], unique=True)

    with op.batch_alter_table('absence', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False, server_default='roster')
        )
        batch_op.drop_constraint(batch_op.f('uq_absence_span'), type_='unique')
        batch_op.create_unique_constraint('uq_absence_span', ['employee_id', 'start', 'end', 'source'])
        batch_op.create_index(batch_op.f('ix_absence_source'), ['source'], unique=False)



def downgrade() -> None:
    # absences read from calendar feeds have no place in the older schema (and could collide with the roster's)
    op.execute("DELETE FROM absence WHERE source <> 'roster'")
    with op.batch_alter_table('absence', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_absence_source'))
        batch_op.drop_constraint('uq_absence_span', type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_absence_span'), ['employee_id', 'start', 'end'])
        batch_op.drop_column('source')

    with op.batch_alter_table('connectorstatus', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_connectorstatus_name'))

    op.drop_table('connectorstatus')
