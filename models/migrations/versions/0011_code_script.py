"""verification codes keep the script of the request that asked for them

The six digits that answer a code do not tell a script, and a name often does not either
(林美): the answer follows the request's ``實名`` / ``实名``.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Codes asked for before this upgrade have none: their answer follows the name, as before.
    op.add_column('verification_codes', sa.Column('script', sa.String(length=4), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('verification_codes', schema=None) as batch_op:
        batch_op.drop_column('script')
