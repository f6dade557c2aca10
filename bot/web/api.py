"""The admin HTTP API (CONTRACT §6), ``/api/v1``."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import BaseModel
from sqlalchemy import func, select

from bot.runtime import Runtime
from bot.web.auth import ADMIN_QUERY, Caller, require_admin, require_officer
from bot.web.deps import Offset, errors, get_runtime, station_filter
from models.outbox import OutboxMessage
from models.tickets import OPEN_STATUSES, Ticket, TicketEvent

router = APIRouter(prefix="/api/v1", tags=["admin"])


class WhoAmI(BaseModel):
    role: str
    name: str


@router.get("/whoami", response_model=WhoAmI, responses=errors(401))
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


@router.get(
    "/outbox", response_model=OutboxView, dependencies=[ADMIN_QUERY], responses=errors(401, 403)
)
async def outbox(
    # Every status the totals can show (held: a paused bulletin; cancelled: withdrawn); empty:
    # no filter, as on every list.
    status: str | None = Query(None, pattern="^(|pending|sending|sent|failed|held|cancelled)$"),
    limit: int = Query(100, ge=1, le=1000),
    offset: Offset = 0,
    _: Caller = Depends(require_admin),
    runtime: Runtime = Depends(get_runtime),
) -> OutboxView:
    """Delivery state: totals per status and the latest rows (no message content), newest
    first; page with ``limit`` and ``offset``."""
    async with runtime.sessions() as session:
        totals = dict(
            (
                await session.execute(
                    select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
                )
            ).all()
        )
        query = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit).offset(offset)
        if status:
            query = query.where(OutboxMessage.status == status)
        rows = (await session.scalars(query)).all()
    return OutboxView(
        totals={str(k): int(v) for k, v in totals.items()},
        rows=[OutboxRow.model_validate(r, from_attributes=True) for r in rows],
    )


class TicketView(BaseModel):
    code: str
    category: str
    unclear: bool
    emergency: bool
    priority: int
    status: str
    group_id: str | None
    station_id: str | None
    assigned_officer_id: str | None
    escalation_level: int
    satisfaction: str | None
    created_at: datetime
    acknowledged_at: datetime | None
    answered_at: datetime | None
    closed_at: datetime | None
    ack_due_at: datetime
    answer_due_at: datetime


@router.get(
    "/tickets",
    response_model=list[TicketView],
    dependencies=[ADMIN_QUERY],
    responses=errors(401, 403),
)
async def tickets(
    # An empty value (`?status=&category=`) means no filter; `open` is every status but closed
    # (what a client following up on what is still open asks for; the disputes' word too).
    status: str | None = Query(
        None, pattern="^(|open|new|acknowledged|answered|closed|escalated)$"
    ),
    category: str | None = Query(
        None, pattern="^(|consultation|suggestion|report|help|dispute|other)$"
    ),
    station: str | None = Query(None, max_length=64, description="a station and those below it"),
    limit: int = Query(200, ge=1, le=2000),
    offset: Offset = 0,
    # Every station's tickets: the county's view, not an officer's (CONTRACT §6).
    _: Caller = Depends(require_admin),
    runtime: Runtime = Depends(get_runtime),
) -> list[TicketView]:
    """Tickets with code, category, priority, status and times (no personal data), newest first;
    page with ``limit`` and ``offset``. ``station`` takes the stations below it too, as
    ``/disputes``, ``/visits`` and ``/stats`` do (an unknown one: 422)."""
    query = (
        select(Ticket)
        .order_by(Ticket.created_at.desc(), Ticket.id.desc())
        .limit(limit)
        .offset(offset)
    )
    if status == "open":
        query = query.where(Ticket.status.in_(sorted(OPEN_STATUSES)))
    elif status:
        query = query.where(Ticket.status == status)
    if category:
        query = query.where(Ticket.category == category)
    async with runtime.sessions() as session:
        stations = await station_filter(session, station)
        if stations is not None:
            query = query.where(Ticket.station_id.in_(sorted(stations)))
        rows = (await session.scalars(query)).all()
    return [TicketView.model_validate(r, from_attributes=True) for r in rows]


class TicketEventView(BaseModel):
    at: datetime
    kind: str
    actor: str
    detail: str | None


@router.get(
    "/tickets/{code}/events",
    response_model=list[TicketEventView],
    dependencies=[ADMIN_QUERY],
    responses=errors(401, 403, 404),
)
async def ticket_events(
    code: str = Path(pattern=r"^#?[A-Za-z]\d{4,6}$"),
    _: Caller = Depends(require_admin),
    runtime: Runtime = Depends(get_runtime),
) -> list[TicketEventView]:
    """A ticket's timeline, oldest first: who did what when (answers, transfers, escalations,
    and every look at the reporters' contact details with ``聯繫``). No texts: residents' words
    and answers stay encrypted in the notes."""
    async with runtime.sessions() as session:
        ticket = await session.scalar(select(Ticket).where(Ticket.code == code.lstrip("#").upper()))
        if ticket is None:
            raise HTTPException(404, f"no ticket {code}")
        rows = await session.scalars(
            select(TicketEvent)
            .where(TicketEvent.ticket_id == ticket.id)
            .order_by(TicketEvent.at, TicketEvent.id)
        )
        return [TicketEventView.model_validate(r, from_attributes=True) for r in rows.all()]
