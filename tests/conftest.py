"""Shared fixtures: a database per test on every available backend, the app, the fake world.

Every database test runs on SQLite, and again on PostgreSQL when ``TEST_DATABASE_URL`` is set
(``.ci/run`` sets it to a throw-away database). Under pytest-xdist (``-n``, on by default in
pyproject's addopts) each worker gets a database of its own, ``<name>_gw0``, ``<name>_gw1`` …,
created when the worker starts and dropped when it ends; SQLite files live in each worker's
own temporary directory.

Set-up is kept cheap, because it runs 1,200 times (docs/testing.md):
- each backend is migrated once per worker; a test then gets a copy of the migrated SQLite
  file, or the PostgreSQL database emptied by one batch of ``DELETE``s (a ``TRUNCATE`` of every
  table creates new files and syncs them: 0.4–1.4 s against 0.03 s) with its sequences
  restarted, so ids start at 1 as in a new database;
- console passwords are hashed with argon2id at its cheapest cost (``argon2.profiles.CHEAPEST``)
  instead of the product's RFC 9106 profile (64 MiB, ~0.4 s a hash here). The product's own
  parameters are not changed; the tests check what a hash is used for, not what it costs.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from argon2.profiles import CHEAPEST
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

import bot.services.accounts
from bot.db import migrate_url
from tests.fakes import FakeWorld
from tests.harness import Harness


def _worker_url(url: str | None) -> str | None:
    """This xdist worker's own database beside ``url`` (``url`` itself without xdist)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not url or not worker:
        return url
    parsed = make_url(url)
    return parsed.set(database=f"{parsed.database}_{worker}").render_as_string(hide_password=False)


BASE_PG_URL = os.environ.get("TEST_DATABASE_URL")
# The database this process's tests use (test_cli_database also creates its own beside it).
PG_URL = _worker_url(BASE_PG_URL)
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
_prepared: dict[str, str] = {}
# Child tables before their parents, so that plain DELETEs never trip a foreign key.
_pg_reset: list[str] = []

_cheap_hasher = PasswordHasher.from_parameters(CHEAPEST)
bot.services.accounts._hasher = _cheap_hasher  # the unknown names' dummy hash is made with it


def pytest_report_header() -> str:
    return "database backends: " + ", ".join(BACKENDS)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "both_reply_modes: run the test in each WeChat reply mode, passive and api (issue 17)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # A test of WeChat's private conversations runs in both reply modes: `passive` (the first
    # reply rides in the callback's response when it is ready in time) and `api` (every reply
    # through the customer-service API). Whatever it checks must hold in each.
    if metafunc.definition.get_closest_marker("both_reply_modes"):
        metafunc.parametrize("reply_mode", ["passive", "api"], indirect=True)


@pytest.fixture(autouse=True)
def reply_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The WeChat reply mode this test's harness is built with (tests/harness.py reads it).

    Autouse, so that it is set before any fixture builds a harness."""
    mode: str | None = getattr(request, "param", None)
    if mode is not None:
        monkeypatch.setenv("LIANXIN_TEST_REPLY_MODE", mode)
    return mode or os.environ.get("LIANXIN_TEST_REPLY_MODE", "passive")


async def _admin(sql: str) -> None:
    """Run ``sql`` outside a transaction on the server of ``TEST_DATABASE_URL``."""
    assert BASE_PG_URL
    engine = create_async_engine(BASE_PG_URL, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


def pytest_sessionstart(session: pytest.Session) -> None:
    if PG_URL and PG_URL != BASE_PG_URL:
        name = make_url(PG_URL).database
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))


def pytest_sessionfinish(session: pytest.Session) -> None:
    if PG_URL and PG_URL != BASE_PG_URL:
        name = make_url(PG_URL).database
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def fake_world() -> Iterator[FakeWorld]:
    world = FakeWorld().start()
    yield world
    world.stop()


@pytest.fixture
def world(fake_world: FakeWorld) -> FakeWorld:
    fake_world.state.reset()
    return fake_world


async def _delete_order(conn: AsyncConnection) -> list[str]:
    """Every table but alembic's, each after the tables that reference it."""
    tables = set(
        (
            await conn.execute(
                text(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                    "AND tablename <> 'alembic_version'"
                )
            )
        )
        .scalars()
        .all()
    )
    edges = (
        await conn.execute(
            text(
                "SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint "
                "WHERE contype = 'f' AND conrelid <> confrelid "
                "AND connamespace = 'public'::regnamespace"
            )
        )
    ).all()
    referrers: dict[str, set[str]] = {t: set() for t in tables}
    for child, parent in edges:
        referrers[parent.strip('"')].add(child.strip('"'))
    order: list[str] = []
    while referrers:
        ready = sorted(t for t, refs in referrers.items() if not refs - set(order))
        assert ready, f"foreign keys in a cycle among {sorted(referrers)}"
        order += ready
        for t in ready:
            del referrers[t]
    # Deleting from the directory's tables moves its version row (triggers, migration 0010),
    # making it again: it goes last.
    return sorted(order, key=lambda t: t == "directory_version")


async def _pg_fresh(url: str) -> None:
    engine = create_async_engine(url, poolclass=NullPool)
    async with engine.begin() as conn:
        if "pg" not in _prepared:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
        elif _pg_reset:
            # One round trip: DELETE on a table of a few rows costs next to nothing, where
            # TRUNCATE swaps every table's files; then the sequences start again at 1.
            script = "".join(f'DELETE FROM "{t}";' for t in _pg_reset) + (
                "SELECT setval(format('%I.%I', schemaname, sequencename)::regclass, "
                "start_value, false) FROM pg_sequences "
                "WHERE schemaname = 'public' AND last_value IS NOT NULL;"
            )
            driver = (await conn.get_raw_connection()).driver_connection
            assert driver is not None
            await driver.execute(script)  # asyncpg: several statements, no parameters
    if "pg" not in _prepared:
        await engine.dispose()
        await migrate_url(url)
        _prepared["pg"] = url
        async with engine.connect() as conn:
            _pg_reset[:] = await _delete_order(conn)
    await engine.dispose()


@pytest.fixture(params=BACKENDS)
async def db_url(
    request: pytest.FixtureRequest, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """A migrated, empty database for this test."""
    if request.param == "postgresql":
        if not PG_URL:
            # Only a test that asks for PostgreSQL by name gets here without it (the README's
            # command runs on SQLite alone).
            pytest.skip("PostgreSQL only: set TEST_DATABASE_URL to run it")
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
