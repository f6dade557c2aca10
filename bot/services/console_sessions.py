"""Console sign-in sessions, kept on the server (CONTRACT §7).

The browser's cookie holds a random 256-bit id and nothing else; the table keeps its SHA-256,
the account, the session's CSRF token and when it was last used. A session ends after 30
minutes without a request that counts as use (the overview's own refreshes do not), after 12
hours whatever happens, at sign-out, and when its account is disabled.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import delete, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from models.base import rowcount
from models.console import ConsoleAccount, ConsoleFormUse, ConsoleSession

IDLE_LIMIT = timedelta(minutes=30)
MAX_AGE = timedelta(hours=12)
# Used form nonces are kept this long: a form older than this is refused by its CSRF token
# anyway (its session is over).
FORM_MEMORY = MAX_AGE + IDLE_LIMIT


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def new_token() -> str:
    """A random URL-safe token (256 bits): session ids, CSRF tokens."""
    return secrets.token_urlsafe(32)


def tokens_match(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison of two tokens; a missing one never matches."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


@dataclass(frozen=True)
class Resumed:
    """A live session and its account (``expired``: it ended just now, for being idle or
    old; ``row`` and ``account`` say whose it was)."""

    row: ConsoleSession
    account: ConsoleAccount
    expired: bool = False


async def open_session(
    session: AsyncSession, *, account: ConsoleAccount, now: datetime
) -> tuple[str, ConsoleSession]:
    """A new session for ``account`` (a new id at every sign-in: no fixation); returns the
    cookie's value and the row. The account's finished sessions are cleared away."""
    await session.execute(
        delete(ConsoleSession).where(
            ConsoleSession.account_id == account.id,
            or_(ConsoleSession.ended_at.is_not(None), ConsoleSession.created_at < now - MAX_AGE),
        )
    )
    await session.execute(delete(ConsoleFormUse).where(ConsoleFormUse.used_at < now - FORM_MEMORY))
    raw = new_token()
    row = ConsoleSession(
        id_hash=_digest(raw),
        account_id=account.id,
        csrf_token=new_token(),
        created_at=now,
        last_seen_at=now,
    )
    session.add(row)
    return raw, row


async def resume_session(
    session: AsyncSession, *, raw: str | None, now: datetime, touch: bool = True
) -> Resumed | None:
    """The live session behind a cookie's value, or None. An idle or too old one is ended
    here and comes back with ``expired`` set (once). ``touch``: this request counts as use."""
    if not raw or len(raw) > 200:
        return None
    row = await session.get(ConsoleSession, _digest(raw))
    if row is None or row.ended_at is not None:
        return None
    account = await session.get(ConsoleAccount, row.account_id)
    if account is None or account.disabled_at is not None:
        row.ended_at = now
        return None
    if now - row.last_seen_at > IDLE_LIMIT or now - row.created_at > MAX_AGE:
        row.ended_at = now
        return Resumed(row, account, expired=True)
    if touch:
        row.last_seen_at = now
    return Resumed(row, account)


async def end_session(session: AsyncSession, *, raw: str | None, now: datetime) -> bool:
    """Sign out: end the session behind a cookie's value; False when there was none."""
    if not raw or len(raw) > 200:
        return False
    row = await session.get(ConsoleSession, _digest(raw))
    if row is None or row.ended_at is not None:
        return False
    row.ended_at = now
    return True


async def why_ended(session: AsyncSession, *, raw: str | None) -> Literal["idle", "old"] | None:
    """Why the session behind a cookie's value ended on its own: ``idle`` (30 minutes without
    use), ``old`` (its 12 hours were up, however busy), or None (it did not, or was signed
    out): the sign-in page then says which. Idle first: a session that was both was left."""
    if not raw or len(raw) > 200:
        return None
    row = await session.get(ConsoleSession, _digest(raw))
    if row is None or row.ended_at is None:
        return None
    if row.ended_at - row.last_seen_at > IDLE_LIMIT:
        return "idle"
    if row.ended_at - row.created_at > MAX_AGE:
        return "old"
    return None


async def use_form(session: AsyncSession, *, nonce: str, account_id: int, now: datetime) -> bool:
    """Mark an action form's nonce used; False when it was used before (a double submit)."""
    if not nonce or len(nonce) > 64:
        return False
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    result = await session.execute(
        insert(ConsoleFormUse)
        .values(nonce=nonce, account_id=account_id, used_at=now)
        .on_conflict_do_nothing(index_elements=["nonce"])
    )
    return bool(rowcount(result))


async def live_sessions(session: AsyncSession, account_id: int) -> list[ConsoleSession]:
    """An account's sessions not ended (for tests and the account list)."""
    return list(
        (
            await session.scalars(
                select(ConsoleSession).where(
                    ConsoleSession.account_id == account_id, ConsoleSession.ended_at.is_(None)
                )
            )
        ).all()
    )
