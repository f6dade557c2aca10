"""hardening: officers by channel and phone, per-chat pacing, SMS fallback, rate limits

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 20:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('officers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('wecom_id', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('phone_enc', sa.LargeBinary(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_officers_wecom_id'), ['wecom_id'])

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('chat_key', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('ticket_id', sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column('fallback_at', models.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_index('ix_outbox_chat', ['chat_key', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_ticket_id'), ['ticket_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_fallback_at'), ['fallback_at'], unique=False)
        batch_op.create_foreign_key(
            batch_op.f('fk_outbox_ticket_id_tickets'), 'tickets', ['ticket_id'], ['id']
        )
    # Rows queued before this revision belong to their chats too.
    op.execute(
        "UPDATE outbox SET chat_key = CASE WHEN group_id IS NOT NULL "
        "THEN channel || ':g:' || group_id ELSE channel || ':u:' || COALESCE(user_id, '') END"
    )

    op.create_table(
        'send_pace',
        sa.Column('key', sa.String(length=300), nullable=False),
        sa.Column('tat', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('key', name=op.f('pk_send_pace')),
    )
    op.create_table(
        'rate_counters',
        sa.Column('key', sa.String(length=200), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.Column('expires_at', models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('key', name=op.f('pk_rate_counters')),
    )
    with op.batch_alter_table('rate_counters', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rate_counters_expires_at'), ['expires_at'], unique=False)


def downgrade() -> None:
    op.drop_table('rate_counters')
    op.drop_table('send_pace')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_outbox_ticket_id_tickets'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_outbox_fallback_at'))
        batch_op.drop_index(batch_op.f('ix_outbox_ticket_id'))
        batch_op.drop_index('ix_outbox_chat')
        batch_op.drop_column('fallback_at')
        batch_op.drop_column('ticket_id')
        batch_op.drop_column('chat_key')
    with op.batch_alter_table('officers', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_officers_wecom_id'), type_='unique')
        batch_op.drop_column('phone_enc')
        batch_op.drop_column('wecom_id')
