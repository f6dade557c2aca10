"""Limits on what one sender, or one group, may make the bot do (abuse, floods).

Counted in the database (``rate_counters``), so that every instance of the service sees the
same counts: one multi-row upsert per event, keyed by scope, a keyed hash of the sender (no
account id in clear) or the group id, and a fixed window. Beyond a limit an event is journaled
and counted but opens nothing new; emergencies always pass (the dispatcher runs the emergency
layer for a limited event) and the sender is told at most once a minute.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, bindparam, delete, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.messages import InboundMessage
from bot.pii import PiiCipher
from bot.settings import LimitSettings
from models.base import core, rowcount, table_of
from models.outbox import RateCounter


@dataclass(frozen=True)
class Verdict:
    """Which limit an event went over (None: within every limit)."""

    over: str | None  # "sender" | "group" | None
    notify: bool = False  # the first limited event of this minute: tell the sender


def _sender_key(cipher: PiiCipher, event: InboundMessage) -> str:
    return cipher.lookup_hash(f"rate:{event.channel}:{event.sender_id}")[:40]


@functools.cache
def _upsert(dialect: str, rows: int) -> Any:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = table_of(RateCounter)
    # Core on the table: the ORM would read a dict of parameters as rows to bulk-insert.
    stmt = insert(table).values(
        [
            {"key": bindparam(f"k{i}"), "count": 1, "expires_at": bindparam(f"e{i}")}
            for i in range(rows)
        ]
    )
    upsert = stmt.on_conflict_do_update(
        index_elements=["key"], set_={"count": table.c.count + 1}
    ).returning(table.c.key, table.c.count)
    if dialect != "sqlite":
        return upsert
    # SQLAlchemy compiles a multi-row VALUES statement afresh on every execution (about a
    # millisecond, once per event); compiled here once, it runs as text with typed parameters.
    # (SQLite only: PostgreSQL's rendering adds casts that text() cannot read back.)
    compiled = upsert.compile(dialect=sqlite.dialect(paramstyle="named"))
    literals = {
        name: bindparam(name, value=compiled.params[name], type_=Integer)
        for name in compiled.params
        if not name.startswith(("k", "e"))
    }
    return (
        text(str(compiled))
        .bindparams(
            *(bindparam(f"k{i}", type_=table.c.key.type) for i in range(rows)),
            *(bindparam(f"e{i}", type_=table.c.expires_at.type) for i in range(rows)),
            *literals.values(),
        )
        .columns(table.c.key, table.c.count)
    )


async def _count(session: AsyncSession, keys: list[tuple[str, datetime]]) -> dict[str, int]:
    params: dict[str, Any] = {}
    for i, (key, expires) in enumerate(keys):
        params[f"k{i}"], params[f"e{i}"] = key, expires
    statement = _upsert(session.get_bind().dialect.name, len(keys))
    result = await (await core(session)).execute(statement, params)
    return {key: count for key, count in result.all()}


async def count(session: AsyncSession, keys: list[tuple[str, datetime]]) -> dict[str, int]:
    """Add one to each counter ``key`` (made with its window's end, ``expires_at``, when new)
    and return the new counts: for limits other than the chat's (the console's sign-in)."""
    return await _count(session, keys)


async def peek(session: AsyncSession, key: str, now: datetime) -> int:
    """The count of ``key`` without adding to it (0 when absent or its window has passed)."""
    counter = await session.get(RateCounter, key)
    if counter is None or counter.expires_at < now:
        return 0
    return counter.count


async def peek_many(session: AsyncSession, keys: Sequence[str], now: datetime) -> dict[str, int]:
    """The counts of ``keys`` still in their windows, in one statement (absent: not listed)."""
    rows = await session.execute(
        select(RateCounter.key, RateCounter.count).where(
            RateCounter.key.in_(list(keys)), RateCounter.expires_at >= now
        )
    )
    return {key: count for key, count in rows.all()}


def _keys(cipher: PiiCipher, event: InboundMessage, now: datetime) -> list[tuple[str, datetime]]:
    """The counters ``event`` adds one to, each with the end of its window."""
    epoch = int(now.timestamp())
    minute, hour = epoch // 60, epoch // 3600
    sender = _sender_key(cipher, event)
    soon, later = now + timedelta(minutes=2), now + timedelta(hours=2)
    keys = [(f"s:m:{sender}:{minute}", soon), (f"s:h:{sender}:{hour}", later)]
    if event.group_id:
        keys.append((f"g:m:{event.group_id}:{minute}", soon))
    return keys


async def check(
    session: AsyncSession,
    *,
    cipher: PiiCipher,
    limits: LimitSettings,
    event: InboundMessage,
    now: datetime,
) -> Verdict:
    """Count ``event`` against its sender's and its group's limits; say which it went over."""
    keys = _keys(cipher, event, now)
    return await _verdict(session, cipher, limits, event, now, keys, await _count(session, keys))


async def _verdict(
    session: AsyncSession,
    cipher: PiiCipher,
    limits: LimitSettings,
    event: InboundMessage,
    now: datetime,
    keys: list[tuple[str, datetime]],
    counts: dict[str, int],
) -> Verdict:
    over = None
    if counts[keys[0][0]] > limits.sender_per_minute or counts[keys[1][0]] > limits.sender_per_hour:
        over = "sender"
    elif event.group_id and counts[keys[2][0]] > limits.group_per_minute:
        over = "group"
    if over is None:
        return Verdict(None)
    # Told once a minute: the flooding sender, or the flooded group as a whole.
    minute, soon = int(now.timestamp()) // 60, now + timedelta(minutes=2)
    whom = _sender_key(cipher, event) if over == "sender" else f"g:{event.group_id}"
    notices = await _count(session, [(f"n:{whom}:{minute}", soon)])
    return Verdict(over, notify=next(iter(notices.values())) == 1)


@functools.cache
def _add(dialect: str) -> Any:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = table_of(RateCounter)
    # One row of parameters per counter, run as one statement: SQLAlchemy folds an
    # executemany of an INSERT … RETURNING into a multi-row VALUES ("insertmanyvalues"), and
    # unlike a multi-row VALUES built by hand the statement is compiled once.
    stmt = insert(table).values(
        key=bindparam("key"), count=bindparam("n"), expires_at=bindparam("expires_at")
    )
    return stmt.on_conflict_do_update(
        index_elements=["key"], set_={"count": table.c.count + stmt.excluded.count}
    ).returning(table.c.key, table.c.count)


_TAKE_BACK = (
    update(table_of(RateCounter))
    .where(table_of(RateCounter).c.key == bindparam("k"))
    .values(count=table_of(RateCounter).c.count - bindparam("n", type_=Integer))
)


@dataclass
class BatchCount:
    """A batch's events counted in one statement before they are handled (:func:`count_batch`).

    Each event's verdict (:meth:`check`) is what :func:`check` would have said had it counted
    the event alone at its turn: its counters as they were after the batch's statement, less
    what the events after it added. Counts the batch added for events it did not handle after
    all (left for the next batch, or found to be our own echo) are taken back by
    :meth:`settle`."""

    keys: dict[int, list[tuple[str, datetime]]] = field(default_factory=dict)  # by journal id
    final: dict[str, int] = field(default_factory=dict)  # counter → count after the statement
    added: Counter[str] = field(default_factory=Counter)  # counter → events it counted
    used: Counter[str] = field(default_factory=Counter)  # … and of those, how many were checked

    async def check(
        self,
        session: AsyncSession,
        *,
        cipher: PiiCipher,
        limits: LimitSettings,
        event: InboundMessage,
        journal_id: int,
        now: datetime,
    ) -> Verdict:
        """The verdict on ``event``, counted in the batch (or alone when it was not)."""
        keys = self.keys.pop(journal_id, None)
        if keys is None:
            return await check(session, cipher=cipher, limits=limits, event=event, now=now)
        counts = {}
        for key, _ in keys:
            self.used[key] += 1
            counts[key] = self.final[key] - self.added[key] + self.used[key]
        return await _verdict(session, cipher, limits, event, now, keys, counts)

    async def settle(self, session: AsyncSession) -> None:
        """Take back what was counted for events that were not checked."""
        back = self.added - self.used
        if back:
            await (await core(session)).execute(
                _TAKE_BACK, [{"k": key, "n": n} for key, n in sorted(back.items())]
            )


async def count_batch(
    session: AsyncSession,
    cipher: PiiCipher,
    events: Sequence[tuple[int, InboundMessage]],
    now: datetime,
) -> BatchCount:
    """Count every event of a batch (journal id, event) in one statement, in journal order."""
    keys = {journal_id: _keys(cipher, event, now) for journal_id, event in events}
    added: Counter[str] = Counter(key for ks in keys.values() for key, _ in ks)
    final: dict[str, int] = {}
    if added:
        ends = {key: end for ks in keys.values() for key, end in ks}
        params = [{"key": k, "n": n, "expires_at": ends[k]} for k, n in sorted(added.items())]
        statement = _add(session.get_bind().dialect.name)
        rows = (await (await core(session)).execute(statement, params)).all()
        final = {key: count for key, count in rows}
    return BatchCount(keys, final, added)


async def forget_expired(session: AsyncSession, now: datetime) -> int:
    """Delete counters whose window has passed; returns how many."""
    result = await session.execute(delete(RateCounter).where(RateCounter.expires_at < now))
    return rowcount(result)
