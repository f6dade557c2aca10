"""API tokens (only their hash), the admin API's idempotency keys, and the cached WeChat access
token."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(16))  # admin | officer
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class IdempotencyKey(Base):
    """A creating request's ``Idempotency-Key`` and the answer it got, so that a client's
    retry (after a timeout, a lost connection) gets that answer again instead of creating a
    second bulletin or notice. ``route`` keeps keys of different routes apart."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("route", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    route: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(200))
    # SHA-256 of the request as parsed (key order and spacing do not matter).
    body_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int]
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime]


class AccessTokenCache(Base):
    """One row per WeChat app: the one place the access token is refreshed from."""

    __tablename__ = "access_tokens"

    app_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    token: Mapped[str] = mapped_column(String(600))
    expires_at: Mapped[datetime]
