"""The per-test database reset of tests/conftest.py leaves nothing behind: every table empty and
every sequence started again, as in a newly migrated database (PostgreSQL only: a SQLite test
gets a fresh copy of the migrated file)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.conftest import _pg_fresh
from tests.harness import Harness


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_the_reset_empties_every_table_and_restarts_ids(harness: Harness) -> None:
    await harness.load_directory()
    assert await harness.bind("wxid_first") == 1
    assert await harness.bind("wxid_second", group="grp-qiaozhen-01") == 2
    await harness.close()

    url = harness.runtime.settings.database.url
    await _pg_fresh(url)

    h = Harness.build(url, harness.world)
    try:
        async with h.runtime.engine.connect() as conn:
            tables = (
                await conn.execute(
                    text(
                        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                        "AND tablename <> 'alembic_version'"
                    )
                )
            ).scalars()
            counts = {
                t: await conn.scalar(text(f'SELECT count(*) FROM "{t}"')) for t in list(tables)
            }
            assert counts == dict.fromkeys(counts, 0)
            assert await conn.scalar(text("SELECT count(*) FROM alembic_version")) == 1
        await h.load_directory()
        assert await h.bind("wxid_second", group="grp-qiaozhen-01") == 1
    finally:
        await h.close()
