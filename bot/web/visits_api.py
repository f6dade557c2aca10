"""``/api/v1/visits`` and ``/api/v1/stats`` (CONTRACT §6): the visit register (no notes, no
names) and the county's figures over a range of local dates and a station subtree."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel

from bot.runtime import Runtime
from bot.services.stats import Period, StatsInputError, compute_stats, make_period, parse_day
from bot.services.visits import list_visits
from bot.web.auth import ADMIN_QUERY, Caller, require_admin
from bot.web.deps import ADMIN_ERRORS, Offset, get_runtime

router = APIRouter(
    prefix="/api/v1", tags=["admin"], dependencies=[ADMIN_QUERY], responses=ADMIN_ERRORS
)


class VisitView(BaseModel):
    id: int
    officer: str
    household: int | None
    group_id: str | None
    at: datetime


class Percentiles(BaseModel):
    p50: float | None
    p90: float | None


class Satisfaction(BaseModel):
    rated: int
    satisfied: int
    rate: float | None


class DisputeFigures(BaseModel):
    by_colour: dict[str, int]
    by_level: dict[str, int]
    resolved: int
    referred: int


class VisitFigures(BaseModel):
    count: int
    households: int
    visited_households: int
    coverage: float | None


class BulletinFigures(BaseModel):
    runs: int
    delivered: int
    failed: int


class Stats(BaseModel):
    items: dict[str, int]
    emergencies: int
    ack_minutes: Percentiles
    answer_hours: Percentiles
    satisfaction: Satisfaction
    disputes: DisputeFigures
    visits: VisitFigures
    bulletins: BulletinFigures


def _unprocessable(exc: StatsInputError) -> HTTPException:
    """A 422 shaped like FastAPI's own, naming the query parameter."""
    return HTTPException(
        422, [{"loc": ["query", exc.field], "msg": exc.message, "type": "value_error"}]
    )


async def _period(
    runtime: Runtime, first: str | None, last: str | None, station: str | None
) -> Period:
    try:
        start = parse_day("from", first) if first is not None else None
        end = parse_day("to", last) if last is not None else None
        if start is None:
            raise StatsInputError("from", "required (YYYY-MM-DD)")
        if end is None:
            raise StatsInputError("to", "required (YYYY-MM-DD)")
        async with runtime.sessions() as session:
            return await make_period(
                session, timezone=runtime.settings.timezone, first=start, last=end, station=station
            )
    except StatsInputError as exc:
        raise _unprocessable(exc) from None


@router.get("/visits", response_model=list[VisitView])
async def visits(
    station: str | None = Query(None, max_length=64, description="a station and those below it"),
    first: str | None = Query(None, alias="from", description="local date YYYY-MM-DD, inclusive"),
    last: str | None = Query(None, alias="to", description="local date YYYY-MM-DD, inclusive"),
    limit: int = Query(200, ge=1, le=2000),
    offset: Offset = 0,
    _: Caller = Depends(require_admin),
    runtime: Runtime = Depends(get_runtime),
) -> list[VisitView]:
    """Visits, newest first: the officer's id, the household's id (null once deleted on
    request), the group and the time. No notes, names or addresses. Empty filters mean none."""
    period = await _period(runtime, first or "1971-01-01", last or "9998-12-31", station or None)
    async with runtime.sessions() as session:
        rows = await list_visits(
            session,
            stations=period.stations,
            start=period.start if first else None,
            end=period.end if last else None,
            limit=limit,
            offset=offset,
        )
    return [
        VisitView(id=r.id, officer=r.officer, household=r.household, group_id=r.group_id, at=r.at)
        for r in rows
    ]


@router.get("/stats", response_model=Stats)
async def stats(
    first: str | None = Query(None, alias="from", description="local date YYYY-MM-DD, inclusive"),
    last: str | None = Query(None, alias="to", description="local date YYYY-MM-DD, inclusive"),
    station: str | None = Query(None, max_length=64, description="a station and those below it"),
    _: Caller = Depends(require_admin),
    runtime: Runtime = Depends(get_runtime),
) -> Stats:
    """The figures of a range of local dates (inclusive), for the county or a station's
    subtree; what each counts: docs/statistics.md."""
    period = await _period(runtime, first, last, station or None)
    async with runtime.sessions() as session:
        figures = await compute_stats(session, period)
    return Stats.model_validate(figures)
