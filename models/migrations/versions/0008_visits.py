"""visits: household visits, visit plans, pending choices, the household audit; households
without a phone; tickets indexed by arrival for the statistics

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    dt = models.base.UTCDateTime(timezone=True)
    # A household added at a visit may have no number yet. The unique constraint on
    # phone_hash stays: NULLs never collide, so every known number is still one household's.
    with op.batch_alter_table('households', schema=None) as batch_op:
        batch_op.alter_column('phone_enc', existing_type=sa.LargeBinary(), nullable=True)
        batch_op.alter_column('phone_hash', existing_type=sa.String(length=64), nullable=True)
        batch_op.create_index(batch_op.f('ix_households_name_hash'), ['name_hash'], unique=False)
        batch_op.create_index(batch_op.f('ix_households_group_id'), ['group_id'], unique=False)

    # The statistics read tickets by arrival: every column they use is in the index, so a
    # county's year is read from it alone.
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.create_index(
            'ix_tickets_stats',
            ['created_at', 'station_id', 'category', 'emergency', 'satisfaction',
             'acknowledged_at', 'answered_at', 'closed_at'],
            unique=False,
        )

    op.create_table(
        'visits',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('household_id', sa.Integer(), nullable=True),
        sa.Column('officer_id', sa.String(length=64), nullable=False),
        sa.Column('group_id', sa.String(length=128), nullable=True),
        sa.Column('station_id', sa.String(length=64), nullable=True),
        sa.Column('at', dt, nullable=False),
        sa.Column('note_enc', sa.LargeBinary(), nullable=True),
        sa.Column('source', sa.String(length=16), nullable=False),
        sa.Column('created_at', dt, nullable=False),
        sa.ForeignKeyConstraint(['household_id'], ['households.id'], name=op.f('fk_visits_household_id_households')),
        sa.ForeignKeyConstraint(['officer_id'], ['officers.id'], name=op.f('fk_visits_officer_id_officers')),
        sa.ForeignKeyConstraint(['station_id'], ['stations.id'], name=op.f('fk_visits_station_id_stations')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_visits')),
    )
    with op.batch_alter_table('visits', schema=None) as batch_op:
        batch_op.create_index('ix_visits_at', ['at', 'station_id', 'household_id'], unique=False)
        batch_op.create_index('ix_visits_station_at', ['station_id', 'at', 'household_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_visits_household_id'), ['household_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_visits_officer_id'), ['officer_id'], unique=False)

    op.create_table(
        'visit_plans',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('household_id', sa.Integer(), nullable=False),
        sa.Column('reason', sa.String(length=32), nullable=False),
        sa.Column('every_days', sa.Integer(), nullable=False),
        sa.Column('officer_id', sa.String(length=64), nullable=True),
        sa.Column('next_due_at', dt, nullable=False),
        sa.Column('reminded', sa.Integer(), nullable=False),
        sa.Column('created_at', dt, nullable=False),
        sa.Column('created_by', sa.String(length=128), nullable=False),
        sa.Column('updated_at', dt, nullable=False),
        sa.ForeignKeyConstraint(['household_id'], ['households.id'], name=op.f('fk_visit_plans_household_id_households')),
        sa.ForeignKeyConstraint(['officer_id'], ['officers.id'], name=op.f('fk_visit_plans_officer_id_officers')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_visit_plans')),
        sa.UniqueConstraint('household_id', name=op.f('uq_visit_plans_household_id')),
    )
    with op.batch_alter_table('visit_plans', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_visit_plans_next_due_at'), ['next_due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_visit_plans_officer_id'), ['officer_id'], unique=False)

    op.create_table(
        'visit_choices',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('officer_id', sa.String(length=64), nullable=False),
        sa.Column('action', sa.String(length=16), nullable=False),
        sa.Column('options', sa.JSON(), nullable=False),
        sa.Column('payload_enc', sa.LargeBinary(), nullable=False),
        sa.Column('created_at', dt, nullable=False),
        sa.Column('expires_at', dt, nullable=False),
        sa.ForeignKeyConstraint(['officer_id'], ['officers.id'], name=op.f('fk_visit_choices_officer_id_officers')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_visit_choices')),
        sa.UniqueConstraint('officer_id', name=op.f('uq_visit_choices_officer_id')),
    )
    with op.batch_alter_table('visit_choices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_visit_choices_expires_at'), ['expires_at'], unique=False)

    op.create_table(
        'household_events',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('household_id', sa.Integer(), nullable=False),
        sa.Column('at', dt, nullable=False),
        sa.Column('action', sa.String(length=24), nullable=False),
        sa.Column('actor', sa.String(length=128), nullable=False),
        sa.Column('detail', sa.String(length=300), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_household_events')),
    )
    with op.batch_alter_table('household_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_household_events_household_id'), ['household_id'], unique=False)


def downgrade() -> None:
    op.drop_table('household_events')
    op.drop_table('visit_choices')
    op.drop_table('visit_plans')
    op.drop_table('visits')
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_index('ix_tickets_stats')
    # Households added without a number cannot go back under NOT NULL: they go first.
    op.execute("DELETE FROM households WHERE phone_hash IS NULL OR phone_enc IS NULL")
    with op.batch_alter_table('households', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_households_group_id'))
        batch_op.drop_index(batch_op.f('ix_households_name_hash'))
        batch_op.alter_column('phone_hash', existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column('phone_enc', existing_type=sa.LargeBinary(), nullable=False)
