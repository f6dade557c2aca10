"""a bulletin run keeps what it sent, so that editing the bulletin does not rewrite its record

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-08 00:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Runs fanned out before this keep none: what they sent is in no column to copy from.
    op.add_column('bulletin_runs', sa.Column('sent', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('bulletin_runs', schema=None) as batch_op:
        batch_op.drop_column('sent')
