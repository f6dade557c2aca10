"""API tokens: shown once at creation, stored only as a SHA-256 hash."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.messages import name_problem
from models.tokens import ApiToken

Role = Literal["admin", "officer"]


class TokenError(ValueError):
    """A token refused as asked for; the message says why (nothing was created)."""


def hash_token(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


async def create_token(session: AsyncSession, *, role: Role, name: str, now: datetime) -> str:
    """Create a token and return its only plain copy."""
    name = name.strip()
    problem = name_problem(name, ApiToken.name.type.length or 200)
    if problem:
        raise TokenError(f"--name: {problem}")
    token = "lx_" + secrets.token_urlsafe(32)
    session.add(ApiToken(name=name, role=role, token_hash=hash_token(token), created_at=now))
    return token


async def find_token(session: AsyncSession, token: str) -> ApiToken | None:
    """The live token row for a presented bearer token, if any."""
    row = await session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    return row if row is not None and row.revoked_at is None else None


async def list_tokens(session: AsyncSession) -> list[ApiToken]:
    """Every token ever created, oldest first (revoked ones too, marked)."""
    return list((await session.scalars(select(ApiToken).order_by(ApiToken.id))).all())


async def revoke_token(session: AsyncSession, token_id: int, *, now: datetime) -> bool:
    """Revoke a token by id; False when there is no such live token."""
    row = await session.get(ApiToken, token_id)
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = now
    return True
