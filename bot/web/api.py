"""The admin HTTP API (CONTRACT §6), ``/api/v1``."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from sqlalchemy import func, select

from bot.runtime import Runtime
from bot.web.auth import Caller, require_admin, require_officer
from bot.web.deps import get_runtime
from models.outbox import OutboxMessage

router = APIRouter(prefix="/api/v1", tags=["admin"])


class WhoAmI(BaseModel):
    role: str
    name: str


@router.get("/whoami", response_model=WhoAmI)
async def whoami(caller: Caller = Depends(require_officer)) -> WhoAmI:
    """The role and name of the presented token."""
    return WhoAmI(role=caller.role, name=caller.name)


class OutboxRow(BaseModel):
    id: int
    channel: str
    group_id: str | None
    user_id: str | None
    status: str
    attempts: int
    created_at: datetime
    sent_at: datetime | None
    last_error: str | None


class OutboxView(BaseModel):
    totals: dict[str, int]
    rows: list[OutboxRow]


@router.get("/outbox", response_model=OutboxView)
async def outbox(
    status: str | None = Query(None, pattern="^(pending|sending|sent|failed)$"),
    limit: int = Query(100, ge=1, le=1000),
    _: Caller = Depends(require_admin),
    runtime: Runtime = Depends(get_runtime),
) -> OutboxView:
    """Delivery state: totals per status and the latest rows (no message content)."""
    async with runtime.sessions() as session:
        totals = dict(
            (
                await session.execute(
                    select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
                )
            ).all()
        )
        query = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)
        if status:
            query = query.where(OutboxMessage.status == status)
        rows = (await session.scalars(query)).all()
    return OutboxView(
        totals={str(k): int(v) for k, v in totals.items()},
        rows=[OutboxRow.model_validate(r, from_attributes=True) for r in rows],
    )
