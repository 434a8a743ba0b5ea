"""observation embeddings (theme grouping cache); who routed each observation (learnt routing)

Revision ID: i17_themes_routing
Revises: i17_contacts
Create Date: 2026-12-04 22:45:00
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision: str = 'i17_themes_routing'
down_revision: Union[str, None] = 'i17_contacts'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'observationembedding',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('observation_id', sa.Integer(), nullable=False),
        sa.Column('model', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column('vector', sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(['observation_id'], ['observation.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('observationembedding', schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f('ix_observationembedding_observation_id'), ['observation_id'], unique=True
        )
    with op.batch_alter_table('observation', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                'routed_by',
                sqlmodel.sql.sqltypes.AutoString(length=16),
                nullable=False,
                server_default='legacy',
            )
        )


def downgrade() -> None:
    with op.batch_alter_table('observation', schema=None) as batch_op:
        batch_op.drop_column('routed_by')
    with op.batch_alter_table('observationembedding', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_observationembedding_observation_id'))
    op.drop_table('observationembedding')
