"""disputes: red/yellow/blue grading and three levels of mediation

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 21:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    dt = models.base.UTCDateTime(timezone=True)
    op.create_table(
        'disputes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('ticket_id', sa.Integer(), nullable=False),
        sa.Column('station_id', sa.String(length=64), nullable=True),
        sa.Column('colour', sa.String(length=8), nullable=False),
        sa.Column('suggested_colour', sa.String(length=8), nullable=False),
        sa.Column('colour_set_by_officer', sa.Boolean(), nullable=False),
        sa.Column('level', sa.String(length=8), nullable=False),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('opened_at', dt, nullable=False),
        sa.Column('level_started_at', dt, nullable=False),
        sa.Column('level_deadline', dt, nullable=True),
        sa.Column('check_at', dt, nullable=True),
        sa.Column('resolved_at', dt, nullable=True),
        sa.Column('resolved_level', sa.String(length=8), nullable=True),
        sa.Column('follow_up_at', dt, nullable=True),
        sa.Column('follow_ups_done', sa.Integer(), nullable=False),
        sa.Column('parties_enc', sa.LargeBinary(), nullable=True),
        sa.Column('place_enc', sa.LargeBinary(), nullable=True),
        sa.Column('summary_enc', sa.LargeBinary(), nullable=True),
        sa.Column('agreement_enc', sa.LargeBinary(), nullable=True),
        sa.Column('updated_at', dt, nullable=False),
        sa.ForeignKeyConstraint(['station_id'], ['stations.id'], name=op.f('fk_disputes_station_id_stations')),
        sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_disputes_ticket_id_tickets')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_disputes')),
        sa.UniqueConstraint('ticket_id', name=op.f('uq_disputes_ticket_id')),
    )
    with op.batch_alter_table('disputes', schema=None) as batch_op:
        batch_op.create_index('ix_disputes_level_deadline', ['level_deadline'], unique=False)
        batch_op.create_index('ix_disputes_check_at', ['check_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_disputes_station_id'), ['station_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_disputes_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_disputes_follow_up_at'), ['follow_up_at'], unique=False)
    op.create_table(
        'dispute_events',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('dispute_id', sa.Integer(), nullable=False),
        sa.Column('at', dt, nullable=False),
        sa.Column('action', sa.String(length=24), nullable=False),
        sa.Column('level', sa.String(length=8), nullable=False),
        sa.Column('colour', sa.String(length=8), nullable=False),
        sa.Column('by', sa.String(length=128), nullable=False),
        sa.Column('note_enc', sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(['dispute_id'], ['disputes.id'], name=op.f('fk_dispute_events_dispute_id_disputes')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_dispute_events')),
    )
    with op.batch_alter_table('dispute_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dispute_events_dispute_id'), ['dispute_id'], unique=False)


def downgrade() -> None:
    op.drop_table('dispute_events')
    op.drop_table('disputes')
