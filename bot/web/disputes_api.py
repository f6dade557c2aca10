"""``/api/v1/disputes`` (CONTRACT §6): the dispute register, by colour, level and status."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import BaseModel
from sqlalchemy import select

from bot.runtime import Runtime
from bot.services.dispute_cases import history
from bot.web.auth import ADMIN_QUERY, Caller, require_admin
from bot.web.deps import ADMIN_ERRORS, Offset, errors, get_runtime, station_filter
from models.disputes import DisputeCase, ended_at, is_dispute
from models.tickets import Ticket

router = APIRouter(
    prefix="/api/v1", tags=["admin"], dependencies=[ADMIN_QUERY], responses=ADMIN_ERRORS
)


class DisputeView(BaseModel):
    code: str
    colour: str
    level: str
    status: str
    station: str | None
    opened_at: datetime
    level_deadline: datetime | None
    resolved_at: datetime | None


class DisputeStep(BaseModel):
    at: datetime
    action: str
    level: str
    colour: str
    by: str


class DisputeDetail(DisputeView):
    history: list[DisputeStep]


def _view(case: DisputeCase, code: str) -> dict[str, object]:
    return {
        "code": code,
        "colour": case.colour,
        "level": case.level,
        "status": case.status,
        "station": case.station_id,
        "opened_at": case.opened_at,
        "level_deadline": case.level_deadline,
        "resolved_at": ended_at(case),
    }


@router.get("/disputes", response_model=list[DisputeView])
async def disputes(
    colour: str | None = Query(None, pattern="^(|red|yellow|blue)$"),
    level: str | None = Query(None, pattern="^(|village|station|county)$"),
    status: str | None = Query(None, pattern="^(|open|resolved|referred|withdrawn)$"),
    station: str | None = Query(None, max_length=64, description="a station and those below it"),
    limit: int = Query(200, ge=1, le=2000),
    offset: Offset = 0,
    _: Caller = Depends(require_admin),
    runtime: Runtime = Depends(get_runtime),
) -> list[DisputeView]:
    """Dispute cases, newest first (no personal data); an empty filter means none. ``station``
    takes the stations below it too, as ``/visits`` and ``/stats`` do (``county``: all)."""
    query = (
        select(DisputeCase, Ticket.code)
        .join(Ticket, Ticket.id == DisputeCase.ticket_id)
        .where(is_dispute())
        .order_by(DisputeCase.opened_at.desc(), DisputeCase.id.desc())
        .limit(limit)
        .offset(offset)
    )
    if colour:
        query = query.where(DisputeCase.colour == colour)
    if level:
        query = query.where(DisputeCase.level == level)
    if status:
        query = query.where(DisputeCase.status == status)
    async with runtime.sessions() as session:
        stations = await station_filter(session, station)
        if stations is not None:
            query = query.where(DisputeCase.station_id.in_(sorted(stations)))
        rows = (await session.execute(query)).all()
    return [DisputeView.model_validate(_view(case, code)) for case, code in rows]


@router.get("/disputes/{code}", response_model=DisputeDetail, responses=errors(404))
async def dispute(
    code: str = Path(pattern=r"^#?[A-Za-z]\d{4,6}$"),
    _: Caller = Depends(require_admin),
    runtime: Runtime = Depends(get_runtime),
) -> DisputeDetail:
    """One case with its history: who graded, mediated, escalated or resolved it, when, and
    at which level and colour (no records or agreements: they stay encrypted)."""
    async with runtime.sessions() as session:
        row = (
            await session.execute(
                select(DisputeCase, Ticket.code)
                .join(Ticket, Ticket.id == DisputeCase.ticket_id)
                .where(Ticket.code == code.lstrip("#").upper(), is_dispute())
            )
        ).first()
        if row is None:
            raise HTTPException(404, f"no dispute {code}")
        case, ticket_code = row
        steps = [
            {"at": e.at, "action": e.action, "level": e.level, "colour": e.colour, "by": e.by}
            for e in await history(session, case)
        ]
    return DisputeDetail.model_validate({**_view(case, ticket_code), "history": steps})
