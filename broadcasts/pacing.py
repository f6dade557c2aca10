"""Pacing: when a chat may next be sent to, shared by every worker of every instance.

A chat's slot is a row in ``send_pace`` (GCRA: the theoretical arrival time), taken by a
conditional upsert in the sending worker's transaction, so two instances never both take it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Float, bindparam, case
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from models.outbox import SendPace


@dataclass(frozen=True)
class Pace:
    """How fast one chat of a channel may be sent to: one message per ``interval_s``, with
    up to ``burst`` at once (a WeCom group robot: 20 a minute)."""

    interval_s: float
    burst: int = 1


# A tolerance no slot's time exceeds: the conditional upsert then always takes the slot.
_ALWAYS = 1e15


@functools.cache
def _admit_statement(dialect: str) -> Any:
    """Take a chat's next sending slot, or nothing when it is not free yet (GCRA, see
    :class:`models.outbox.SendPace`); RETURNING a row means admitted."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # Typed: PostgreSQL cannot tell what `$1 + $2` adds.
    now, interval = bindparam("now", type_=Float), bindparam("interval", type_=Float)
    stmt = insert(SendPace).values(key=bindparam("key"), tat=now + interval)
    return stmt.on_conflict_do_update(
        index_elements=["key"],
        set_={"tat": case((SendPace.tat > now, SendPace.tat), else_=now) + interval},
        where=SendPace.tat <= now + bindparam("tolerance", type_=Float),
    ).returning(SendPace.key)


async def admit(
    session: AsyncSession, key: str, *, now: datetime, pace: Pace, taken_anyway: bool = False
) -> bool:
    """Whether chat ``key`` may be sent to now; if so its slot is taken in ``session``'s
    transaction, so that every worker of every instance sees it. ``taken_anyway``: the slot
    is taken whether free or not, and what follows it waits one interval more."""
    tolerance = _ALWAYS if taken_anyway else (pace.burst - 1) * pace.interval_s
    result = await session.execute(
        _admit_statement(session.get_bind().dialect.name),
        {"key": key, "now": now.timestamp(), "interval": pace.interval_s, "tolerance": tolerance},
    )
    return result.first() is not None
