"""Shared fixtures: a database per test on every available backend, the app, the fake world.

Every database test runs on SQLite, and again on PostgreSQL when ``TEST_DATABASE_URL`` is set
(``.ci/run`` sets it to a throw-away database).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from bot.db import migrate_url
from tests.fakes import FakeWorld
from tests.harness import Harness

PG_URL = os.environ.get("TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
_prepared: dict[str, str] = {}


def pytest_report_header() -> str:
    return "database backends: " + ", ".join(BACKENDS)


@pytest.fixture(scope="session")
def fake_world() -> Iterator[FakeWorld]:
    world = FakeWorld().start()
    yield world
    world.stop()


@pytest.fixture
def world(fake_world: FakeWorld) -> FakeWorld:
    fake_world.state.reset()
    return fake_world


async def _pg_fresh(url: str) -> None:
    engine = create_async_engine(url, poolclass=NullPool)
    async with engine.begin() as conn:
        if "pg" not in _prepared:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
        else:
            tables = (
                (
                    await conn.execute(
                        text(
                            "SELECT tablename FROM pg_tables WHERE schemaname='public' "
                            "AND tablename <> 'alembic_version'"
                        )
                    )
                )
                .scalars()
                .all()
            )
            if tables:
                joined = ", ".join(f'"{t}"' for t in tables)
                await conn.execute(text(f"TRUNCATE {joined} RESTART IDENTITY CASCADE"))
    await engine.dispose()
    if "pg" not in _prepared:
        await migrate_url(url)
        _prepared["pg"] = url


@pytest.fixture(params=BACKENDS)
async def db_url(
    request: pytest.FixtureRequest, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """A migrated, empty database for this test."""
    if request.param == "postgresql":
        assert PG_URL
        await _pg_fresh(PG_URL)
        return PG_URL
    if "sqlite" not in _prepared:
        template = tmp_path_factory.mktemp("template") / "template.db"
        await migrate_url(f"sqlite+aiosqlite:///{template}")
        _prepared["sqlite"] = str(template)
    target = tmp_path / "lianxin.db"
    shutil.copy(_prepared["sqlite"], target)
    return f"sqlite+aiosqlite:///{target}"


@pytest.fixture
async def harness(db_url: str, world: FakeWorld) -> AsyncIterator[Harness]:
    h = Harness.build(db_url, world)
    yield h
    await h.close()
