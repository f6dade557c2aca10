"""inbound pipeline: journal rows are accepted first and processed behind (issue 17)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('inbound_events', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('emergency', sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(
            sa.Column('processed_at', models.base.UTCDateTime(timezone=True), nullable=True)
        )
    # Every event journaled before this revision was handled in its own request.
    op.execute('UPDATE inbound_events SET processed_at = received_at')
    with op.batch_alter_table('inbound_events', schema=None) as batch_op:
        batch_op.create_index(
            'ix_inbound_events_queue',
            ['emergency', 'id'],
            unique=False,
            sqlite_where=sa.text('processed_at IS NULL'),
            postgresql_where=sa.text('processed_at IS NULL'),
        )


def downgrade() -> None:
    with op.batch_alter_table('inbound_events', schema=None) as batch_op:
        batch_op.drop_index('ix_inbound_events_queue')
        batch_op.drop_column('processed_at')
        batch_op.drop_column('emergency')
