"""``Idempotency-Key`` on creating POSTs (bot.services.idempotency): a twin request that races
the first one with the same key, in PostgreSQL where the two transactions really overlap."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.idempotency import KeyReused, create_once
from bot.services.tokens import create_token
from models.tokens import ApiToken
from tests.harness import Harness


async def test_a_twin_that_loses_the_race_answers_the_winners_answer(harness: Harness) -> None:
    if harness.runtime.settings.database.url.startswith("sqlite"):
        pytest.skip("SQLite writes one transaction at a time: twins cannot overlap")
    first_read = asyncio.Event()
    now = harness.clock.now()

    def creating(name: str, *, wait: bool) -> Any:
        async def create(session: AsyncSession) -> dict[str, Any]:
            if wait:
                first_read.set()  # this one has looked for the key and found none
                await asyncio.sleep(0)
            await create_token(session, role="admin", name=name, now=now)
            return {"id": name}

        return create

    async def attempt(name: str, *, wait: bool) -> tuple[dict[str, Any], bool]:
        if not wait:
            await first_read.wait()
        return await create_once(
            harness.runtime.sessions,
            route="test",
            key="k-1",
            body={"same": True},
            created_by="test",
            now=now,
            create=creating(name, wait=wait),
        )

    slow = asyncio.create_task(attempt("slow", wait=True))
    fast = await attempt("fast", wait=False)
    lost = await slow
    # Whichever committed first, both answer its answer, and one row was created.
    assert fast[0] == lost[0] and sorted([fast[1], lost[1]]) == [False, True]
    async with harness.runtime.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(ApiToken)) == 1
    with pytest.raises(KeyReused):
        await create_once(
            harness.runtime.sessions,
            route="test",
            key="k-1",
            body={"same": False},
            created_by="test",
            now=now,
            create=creating("other", wait=False),
        )
