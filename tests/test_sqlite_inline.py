"""SQLite through ``bot.sqlite_inline``: errors, isolation levels and lock waits behave as
SQLAlchemy users expect, although no aiosqlite thread is involved."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

import bot.db
from bot.db import make_engine


async def _engine(tmp_path: Path) -> AsyncEngine:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'inline.db'}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE)"))
    return engine


async def test_constraint_violation_is_sqlalchemys_integrity_error(tmp_path: Path) -> None:
    engine = await _engine(tmp_path)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t (name) VALUES ('a')"))
        with pytest.raises(IntegrityError):
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO t (name) VALUES ('b')"))
                await conn.execute(text("INSERT INTO t (name) VALUES ('a')"))
        async with engine.connect() as conn:  # the failed transaction left nothing behind
            names = (await conn.execute(text("SELECT name FROM t ORDER BY name"))).scalars()
            assert list(names) == ["a"]
    finally:
        await engine.dispose()


async def test_isolation_level_can_be_set(tmp_path: Path) -> None:
    engine = await _engine(tmp_path)
    try:
        async with engine.connect() as conn:
            auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await auto.execute(text("INSERT INTO t (name) VALUES ('x')"))
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar() == 1
    finally:
        await engine.dispose()


async def test_another_processs_write_lock_fails_after_the_busy_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bot.db, "SQLITE_BUSY_S", 0.3)
    engine = await _engine(tmp_path)
    other = sqlite3.connect(tmp_path / "inline.db", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # holds the write lock, as a CLI command would
        started = time.monotonic()
        with pytest.raises(OperationalError, match="locked"):
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO t (name) VALUES ('y')"))
        assert 0.25 <= time.monotonic() - started < 5
        other.execute("ROLLBACK")
        async with engine.begin() as conn:  # the lock released, writing works again
            await conn.execute(text("INSERT INTO t (name) VALUES ('y')"))
    finally:
        other.close()
        await engine.dispose()
