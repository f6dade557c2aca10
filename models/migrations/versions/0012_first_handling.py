"""tickets keep the times of their first handling when a resident's 不滿意 reopens them

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Tickets reopened before this upgrade lost their first times: their timeline still has
    # them (the first 'acknowledged'/'answered' event), but the figures count them from the
    # second handling, as they did before.
    dt = models.base.UTCDateTime(timezone=True)
    op.add_column('tickets', sa.Column('first_acknowledged_at', dt, nullable=True))
    op.add_column('tickets', sa.Column('first_answered_at', dt, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_column('first_answered_at')
        batch_op.drop_column('first_acknowledged_at')
