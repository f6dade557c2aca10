"""The admin API's ``Idempotency-Key`` (docs/interfaces.md, "Retries"): a creating request sent
again with the same key gets the first answer again instead of creating a second bulletin or
urgent notice, and the same key with another request is refused.

The key is stored with the answer in the transaction that creates the row, so the two are
committed together or not at all; a retry racing the first request meets the unique
``(route, key)`` and is answered from the row the first one committed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.tokens import IdempotencyKey

# Printable ASCII without spaces, as the header's usual values are (UUIDs, ULIDs, hashes).
KEY_PATTERN = r"^[\x21-\x7e]{1,200}$"


class KeyReused(Exception):
    """The key was used before for another request (another body, or another route's)."""


def request_hash(body: Any) -> str:
    """SHA-256 of a request as parsed (``model_dump(mode="json")``): the same request written
    with its keys in another order or other spacing hashes the same."""
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


async def earlier_answer(
    session: AsyncSession, *, route: str, key: str, body_hash: str
) -> tuple[int, dict[str, Any]] | None:
    """The status and answer stored for ``key`` on ``route``, or None for a new key;
    :class:`KeyReused` when the key came with another request."""
    row = await session.scalar(
        select(IdempotencyKey).where(IdempotencyKey.route == route, IdempotencyKey.key == key)
    )
    if row is None:
        return None
    if row.body_hash != body_hash:
        raise KeyReused(
            f"Idempotency-Key {key!r} was used at {row.created_at.isoformat()} for another "
            "request; send a new key for a new request, or the same body to get its answer again"
        )
    return row.status_code, dict(row.response)


async def remember_answer(
    session: AsyncSession,
    *,
    route: str,
    key: str,
    body_hash: str,
    status_code: int,
    response: dict[str, Any],
    created_by: str,
    now: datetime,
) -> None:
    """Store the answer in the caller's transaction (flushed: a racing twin fails here, at
    the unique key, rather than at the commit)."""
    session.add(
        IdempotencyKey(
            route=route,
            key=key,
            body_hash=body_hash,
            status_code=status_code,
            response=response,
            created_by=created_by,
            created_at=now,
        )
    )
    await session.flush()


async def create_once(
    sessions: async_sessionmaker[AsyncSession],
    *,
    route: str,
    key: str | None,
    body: Any,
    created_by: str,
    now: datetime,
    create: Callable[[AsyncSession], Awaitable[dict[str, Any]]],
    status_code: int = 201,
) -> tuple[dict[str, Any], bool]:
    """Run ``create`` in a transaction and answer what it returns, once per ``key``: a repeat
    of the same ``body`` under the same key answers the stored answer without running it
    (the second value True). Without a key it simply runs. Exceptions of ``create`` (a 422's
    problem) pass through and store nothing: the retry is checked afresh. :class:`KeyReused`
    for the key with another body."""
    if key is None:
        async with sessions.begin() as session:
            return await create(session), False
    body_hash = request_hash(body)
    try:
        async with sessions.begin() as session:
            earlier = await earlier_answer(session, route=route, key=key, body_hash=body_hash)
            if earlier is not None:
                return earlier[1], True
            answer = await create(session)
            await remember_answer(
                session,
                route=route,
                key=key,
                body_hash=body_hash,
                status_code=status_code,
                response=answer,
                created_by=created_by,
                now=now,
            )
            return answer, False
    except IntegrityError:
        # A twin request with the same key committed first: its answer is ours.
        async with sessions() as session:
            earlier = await earlier_answer(session, route=route, key=key, body_hash=body_hash)
        if earlier is None:
            raise
        return earlier[1], True
