"""The processor's directory cache (bot/services/directory_cache.py): read once, kept while
``directory_version`` stands still, read again in the first batch after any writer — another
runtime with its own engine, ``lianxin directory load``, plain SQL — changed the directory."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import select, text

from bot.cli import main
from bot.db import make_engine, make_sessions
from bot.services.directory import load_directory_file
from models.journal import InboundEvent
from tests.fakes import FakeWorld
from tests.harness import DIRECTORY, Harness

NEW_GROUP = "grp-qiaozhen-03"


def _with_new_group(tmp_path: Path) -> Path:
    """The test directory and one more group, as a file for the loader."""
    path = tmp_path / "directory.yaml"
    path.write_text(
        DIRECTORY.read_text("utf-8").replace(
            "groups:\n",
            f"groups:\n  - {{id: {NEW_GROUP}, name: 橋鎮新村警民群, station: qiaozhen}}\n",
            1,
        ),
        "utf-8",
    )
    return path


async def _statuses(h: Harness) -> list[str]:
    async with h.runtime.sessions() as s:
        rows = await s.scalars(
            select(InboundEvent.status)
            .where(InboundEvent.group_id == NEW_GROUP)
            .order_by(InboundEvent.id)
        )
        return list(rows.all())


async def test_a_group_loaded_by_another_runtime_is_known_from_the_next_batch(
    db_url: str, world: FakeWorld, tmp_path: Path
) -> None:
    h = Harness.build(db_url, world)
    other = Harness.build(db_url, world)  # another process: its own runtime, engine and cache
    try:
        await h.load_directory()
        cache = h.pipeline.dispatcher.directory
        await h.say("你好", group=NEW_GROUP, sender="wxid_a")
        loads = cache.loads
        await h.say("你好", group=NEW_GROUP, sender="wxid_b")
        assert cache.loads == loads  # nothing changed: the tables were not read again
        assert await _statuses(h) == ["unknown_group", "unknown_group"]

        async with other.runtime.sessions.begin() as session:
            await load_directory_file(session, _with_new_group(tmp_path))
        await h.say("你好", group=NEW_GROUP, sender="wxid_c")
        assert cache.loads == loads + 1
        assert await _statuses(h) == ["unknown_group", "unknown_group", "handled"]
    finally:
        await other.close()
        await h.close()


async def test_lianxin_directory_load_invalidates_it(
    db_url: str, world: FakeWorld, tmp_path: Path
) -> None:
    h = Harness.build(db_url, world)
    try:
        await h.say("你好", group=NEW_GROUP, sender="wxid_a")  # nothing loaded yet
        config = tmp_path / "config.yaml"
        config.write_text(f"database:\n  url: {db_url}\n", "utf-8")
        command = ["--config", str(config), "directory", "load", str(_with_new_group(tmp_path))]
        assert await asyncio.to_thread(main, command) == 0  # the CLI runs its own event loop
        await h.say("你好", group=NEW_GROUP, sender="wxid_b")
        assert await _statuses(h) == ["unknown_group", "handled"]
    finally:
        await h.close()


async def test_a_change_in_plain_sql_from_another_engine_is_seen(
    db_url: str, world: FakeWorld
) -> None:
    h = Harness.build(db_url, world)
    try:
        await h.load_directory()
        await h.say("你好", group=NEW_GROUP, sender="wxid_a")
        engine = make_engine(db_url)
        try:
            async with make_sessions(engine).begin() as session:
                await session.execute(
                    text(
                        "INSERT INTO groups (id, name, station_id, tags) "
                        "VALUES (:id, '橋鎮新村警民群', 'qiaozhen', '[]')"
                    ),
                    {"id": NEW_GROUP},
                )
            await h.say("你好", group=NEW_GROUP, sender="wxid_b")
            async with make_sessions(engine).begin() as session:
                await session.execute(text("DELETE FROM groups WHERE id = :id"), {"id": NEW_GROUP})
        finally:
            await engine.dispose()
        await h.say("你好", group=NEW_GROUP, sender="wxid_c")
        assert await _statuses(h) == ["unknown_group", "handled", "unknown_group"]
    finally:
        await h.close()
