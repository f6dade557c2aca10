"""directory version: a row every change to stations, officers or groups moves; the journal's
queue index in the claim's order (issue 17)

The inbound processor keeps the directory in memory and reads this one row per batch; a
trigger on each directory table moves it in the writing transaction, whoever writes
(``lianxin directory load``, the console, a handler's ``指派``, key rotation, plain SQL), so a
cache in another process sees the change when it commits and never before.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 02:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

TABLES = ('stations', 'officers', 'groups')
# A row deleted and made again starts at a random version: a cache that saw the old row's
# number must not take the new row's for it.
_SQLITE_BUMP = (
    'INSERT INTO directory_version (id, version) VALUES (1, abs(random() % 1000000000000)) '
    'ON CONFLICT (id) DO UPDATE SET version = version + 1;'
)
_PG_FUNCTION = """
CREATE FUNCTION bump_directory_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO directory_version (id, version) VALUES (1, floor(random() * 1e12)::bigint)
    ON CONFLICT (id) DO UPDATE SET version = directory_version.version + 1;
    RETURN NULL;
END
$$
"""


def _queue_index(*columns: sa.TextClause | str) -> None:
    op.drop_index('ix_inbound_events_queue', table_name='inbound_events')
    op.create_index(
        'ix_inbound_events_queue',
        'inbound_events',
        list(columns),
        unique=False,
        sqlite_where=sa.text('processed_at IS NULL'),
        postgresql_where=sa.text('processed_at IS NULL'),
    )


def upgrade() -> None:
    # The processor claims ORDER BY emergency DESC, id: on (emergency, id) both databases read
    # every unprocessed ordinary row and sort them before the first is returned, a cost that
    # grows with the backlog; in the claim's order the first rows are the answer.
    _queue_index(sa.text('emergency DESC'), 'id')
    op.create_table(
        'directory_version',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('version', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_directory_version')),
    )
    op.execute('INSERT INTO directory_version (id, version) VALUES (1, 1)')
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(_PG_FUNCTION)
        for table in TABLES:
            # Once per statement: a directory load of a thousand groups moves it once.
            op.execute(
                f'CREATE TRIGGER {table}_directory_version '
                f'AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON "{table}" '
                'FOR EACH STATEMENT EXECUTE FUNCTION bump_directory_version()'
            )
        return
    # SQLite has row triggers only. Note for later migrations: batch_alter_table copies a
    # SQLite table and loses its triggers; one that alters these tables must create them again.
    for table in TABLES:
        for event in ('INSERT', 'UPDATE', 'DELETE'):
            op.execute(
                f'CREATE TRIGGER {table}_{event.lower()}_directory_version '
                f'AFTER {event} ON "{table}" BEGIN {_SQLITE_BUMP} END'
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for table in TABLES:
            op.execute(f'DROP TRIGGER {table}_directory_version ON "{table}"')
        op.execute('DROP FUNCTION bump_directory_version()')
    else:
        for table in TABLES:
            for event in ('insert', 'update', 'delete'):
                op.execute(f'DROP TRIGGER {table}_{event}_directory_version')
    op.drop_table('directory_version')
    _queue_index('emergency', 'id')
