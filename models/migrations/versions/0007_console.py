"""console: accounts, sign-in sessions, used forms, audit log

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 21:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'console_accounts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('username', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('password_hash', sa.String(length=200), nullable=False),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('officer_id', sa.String(length=64), nullable=True),
        sa.Column('script', sa.String(length=4), nullable=False),
        sa.Column('failed_logins', sa.Integer(), nullable=False),
        sa.Column('locked_until', models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column('last_login_at', models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column('disabled_at', models.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ['officer_id'], ['officers.id'], name=op.f('fk_console_accounts_officer_id_officers')
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_console_accounts')),
        sa.UniqueConstraint('username', name=op.f('uq_console_accounts_username')),
    )
    op.create_table(
        'console_sessions',
        sa.Column('id_hash', sa.String(length=64), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('csrf_token', sa.String(length=64), nullable=False),
        sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column('last_seen_at', models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column('ended_at', models.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ['account_id'], ['console_accounts.id'],
            name=op.f('fk_console_sessions_account_id_console_accounts'),
        ),
        sa.PrimaryKeyConstraint('id_hash', name=op.f('pk_console_sessions')),
    )
    with op.batch_alter_table('console_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_console_sessions_account_id'), ['account_id'], unique=False)

    op.create_table(
        'console_form_uses',
        sa.Column('nonce', sa.String(length=64), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('used_at', models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ['account_id'], ['console_accounts.id'],
            name=op.f('fk_console_form_uses_account_id_console_accounts'),
        ),
        sa.PrimaryKeyConstraint('nonce', name=op.f('pk_console_form_uses')),
    )
    with op.batch_alter_table('console_form_uses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_console_form_uses_used_at'), ['used_at'], unique=False)

    op.create_table(
        'audit_log',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('at', models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=True),
        sa.Column('username', sa.String(length=64), nullable=False),
        sa.Column('action', sa.String(length=32), nullable=False),
        sa.Column('target', sa.String(length=200), nullable=True),
        sa.Column('detail', sa.String(length=500), nullable=True),
        sa.Column('ip', sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ['account_id'], ['console_accounts.id'],
            name=op.f('fk_audit_log_account_id_console_accounts'),
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log')),
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_log_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_log_action'), ['action'], unique=False)
        batch_op.create_index('ix_audit_log_at', ['at'], unique=False)


def downgrade() -> None:
    op.drop_table('audit_log')
    op.drop_table('console_form_uses')
    op.drop_table('console_sessions')
    op.drop_table('console_accounts')
