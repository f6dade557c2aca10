"""The county's figures over a date range and a station subtree (CONTRACT §6 ``/api/v1/stats``),
computed by the database: a handful of aggregate queries (on SQLite, the percentiles read one
column of durations; see below).

Definitions (docs/statistics.md says the same for the people reading them):

- the range is local dates (``timezone``), ``from`` 00:00 to the end of ``to``;
- a station means it and every station below it; tickets, disputes and visits count where they
  belong (the ticket's station, the case's, the visit's at the time), bulletins where the
  groups they reached belong, households where their group belongs;
- ``items``: tickets that came in during the range, by category; ``emergencies``: those of
  them flagged emergency;
- ``ack_minutes`` / ``answer_hours``: for those tickets, from arrival to the first
  acknowledgement / to the first answer (an answer, or the close when there was none), p50 and
  p90 by linear interpolation between the closest ranks (PostgreSQL's ``percentile_cont``);
  tickets not acknowledged / answered yet are left out; null when there is none;
- ``satisfaction``: of those tickets, the ones rated, the ones rated satisfied, and the rate;
- ``disputes``: cases opened during the range, by their colour and level now, and how many of
  them are resolved (an agreement) or referred now;
- ``visits``: visits during the range, the households on the roster now, the distinct
  households visited, ``coverage`` = visited households / households;
- ``bulletins``: bulletin runs due during the range that went out, and their messages sent and
  failed for good.

Percentiles: PostgreSQL's ``percentile_cont``; SQLite has no percentile function, so one query
reads the durations of the range in a single pass (from an index holding every column used)
and Python sorts and interpolates them the same way (see :func:`percentiles`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Float,
    case,
    distinct,
    func,
    select,
    true,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from bot.clock import FIRST_YEAR, LAST_YEAR, within_years
from bot.services.routing import station_subtree
from models.bulletins import BulletinDelivery, BulletinRun
from models.directory import Group, Station
from models.disputes import COLOURS, LEVELS, DisputeCase, is_dispute
from models.outbox import OutboxMessage
from models.people import Household
from models.tickets import Ticket
from models.visits import Visit

LABELS = ("consultation", "suggestion", "report", "help", "dispute", "other")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


class StatsInputError(ValueError):
    """A bad range or station; ``field`` is the parameter to name (``from``, ``to``,
    ``station``, ``month``). ``out_of_range``: a date written well, outside the years
    :func:`bot.clock.within_years` allows (the console says so in words of its own)."""

    def __init__(self, field: str, message: str, *, out_of_range: bool = False) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.out_of_range = out_of_range


_YEARS = f"years {FIRST_YEAR}–{LAST_YEAR}"


def parse_day(field: str, value: str) -> date:
    """A local date written ``YYYY-MM-DD`` (nothing else: not ``2026-1-5``, not a timestamp)."""
    if not _DAY.fullmatch(value or ""):
        raise StatsInputError(field, f"expected a date as YYYY-MM-DD, got {value!r}")
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise StatsInputError(field, f"{value} is not a date") from None
    if not within_years(day):
        raise StatsInputError(field, f"{value} is out of range ({_YEARS})", out_of_range=True)
    return day


def parse_month(value: str) -> tuple[date, date]:
    """``YYYY-MM`` → its first and last day."""
    match = _MONTH.fullmatch(value or "")
    if match is None:
        raise StatsInputError("month", f"expected YYYY-MM, got {value!r}")
    year, month = int(match.group(1)), int(match.group(2))
    if not 1 <= month <= 12:
        raise StatsInputError("month", f"{value}: there is no month {month:02d}")
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise StatsInputError("month", f"{value} is out of range ({_YEARS})", out_of_range=True)
    first = date(year, month, 1)
    following = date(year + month // 12, month % 12 + 1, 1)
    return first, following - timedelta(days=1)


@dataclass(frozen=True)
class Period:
    """What the figures are about: local dates ``first``–``last`` (inclusive) as UTC instants
    ``start`` (inclusive) – ``end`` (exclusive); ``stations`` None for the whole county."""

    first: date
    last: date
    start: datetime
    end: datetime
    station: str | None
    stations: frozenset[str] | None


async def make_period(
    session: AsyncSession, *, timezone: str, first: date, last: date, station: str | None
) -> Period:
    """Check and convert a range and a station; raises :class:`StatsInputError`."""
    if first > last:
        raise StatsInputError("to", f"{last.isoformat()} is before from ({first.isoformat()})")
    stations = None
    if station:
        if await session.get(Station, station) is None:
            raise StatsInputError("station", f"no station {station!r}")
        stations = frozenset(await station_subtree(session, [station]))
    tz = ZoneInfo(timezone)

    def instant(day: date) -> datetime:
        return datetime.combine(day, time.min, tzinfo=tz).astimezone(UTC)

    return Period(
        first, last, instant(first), instant(last + timedelta(days=1)), station or None, stations
    )


# --- durations --------------------------------------------------------------------------------


class SecondsBetween(FunctionElement[float]):
    """``later - earlier`` in seconds, for two timestamp columns (dialect-specific SQL)."""

    type = Float()
    inherit_cache = True
    name = "seconds_between"


@compiles(SecondsBetween, "sqlite")
def _seconds_sqlite(element: SecondsBetween, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite keeps timestamps as ISO text in UTC; julianday reads it (days, as a float), which
    # leaves 30 minutes as 1799.99999…: rounded to the millisecond, it is 1800 as on PostgreSQL
    # (a time band's bound would otherwise depend on the database).
    later, earlier = (compiler.process(c, **kw) for c in element.clauses)
    return f"round((julianday({later}) - julianday({earlier})) * 86400.0, 3)"


@compiles(SecondsBetween, "postgresql")
def _seconds_postgresql(element: SecondsBetween, compiler: SQLCompiler, **kw: Any) -> str:
    later, earlier = (compiler.process(c, **kw) for c in element.clauses)
    return f"EXTRACT(EPOCH FROM ({later} - {earlier}))"


def interpolate(ordered: list[float], percent: int) -> float | None:
    """The ``percent``-th percentile of sorted values, linear between the closest ranks (as
    PostgreSQL's ``percentile_cont`` and numpy's default); None for no values."""
    if not ordered:
        return None
    position = (len(ordered) - 1) * percent / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (position - low) * (ordered[high] - ordered[low])


async def percentiles(
    session: AsyncSession,
    values: dict[str, ColumnElement[Any]],
    where: list[ColumnElement[bool]],
    wanted: tuple[int, ...] = (50, 90),
) -> dict[str, dict[int, float | None]]:
    """The ``wanted`` percentiles of each of ``values`` over the rows matching ``where`` (NULLs
    left out), linear between the closest ranks; None where no row has a value.

    PostgreSQL computes them (``percentile_cont``). SQLite has no percentile function: one
    query reads the values of every expression in a single pass and Python sorts them (a
    county's year, ~50,000 values, sorts in milliseconds; SQLite's own sorter, through a
    window query, took ten times longer)."""
    if session.get_bind().dialect.name == "postgresql":
        columns = [
            func.percentile_cont(p / 100).within_group(expression).label(f"{name}_{p}")
            for name, expression in values.items()
            for p in wanted
        ]
        row = (await session.execute(select(*columns).where(*where))).one()
        return {
            name: {
                p: None if (v := getattr(row, f"{name}_{p}")) is None else float(v) for p in wanted
            }
            for name in values
        }
    rows = (await session.execute(select(*values.values()).where(*where))).all()
    result = {}
    for index, name in enumerate(values):
        ordered = sorted(float(row[index]) for row in rows if row[index] is not None)
        result[name] = {p: interpolate(ordered, p) for p in wanted}
    return result


def _rounded(value: float | None, unit: float) -> float | None:
    return None if value is None else round(value / unit, 2)


# --- the figures ------------------------------------------------------------------------------


def _in(column: QueryableAttribute[Any], stations: frozenset[str] | None) -> ColumnElement[bool]:
    return column.in_(sorted(stations)) if stations is not None else true()


def _ticket_filter(period: Period) -> list[ColumnElement[bool]]:
    where = [Ticket.created_at >= period.start, Ticket.created_at < period.end]
    if period.stations is not None:
        where.append(Ticket.station_id.in_(sorted(period.stations)))
    return where


async def ticket_figures(session: AsyncSession, period: Period) -> dict[str, Any]:
    """Items by label, emergencies, acknowledgement and answer times, satisfaction."""
    where = _ticket_filter(period)
    rows = (
        await session.execute(
            select(
                Ticket.category,
                func.count(),
                func.sum(case((Ticket.emergency.is_(True), 1), else_=0)),
                func.count(Ticket.satisfaction),
                func.sum(case((Ticket.satisfaction == "satisfied", 1), else_=0)),
            )
            .where(*where)
            .group_by(Ticket.category)
        )
    ).all()
    items = dict.fromkeys(LABELS, 0)
    emergencies = rated = satisfied = 0
    for category, count, urgent, rated_here, satisfied_here in rows:
        items[category] = items.get(category, 0) + int(count)
        emergencies += int(urgent or 0)
        rated += int(rated_here or 0)
        satisfied += int(satisfied_here or 0)
    times = await percentiles(
        session,
        {
            "ack": SecondsBetween(Ticket.ack_time, Ticket.created_at),
            "answer": SecondsBetween(Ticket.answer_time, Ticket.created_at),
        },
        where,
    )
    ack, answer = times["ack"], times["answer"]
    return {
        "items": items,
        "emergencies": emergencies,
        "ack_minutes": {"p50": _rounded(ack[50], 60), "p90": _rounded(ack[90], 60)},
        "answer_hours": {"p50": _rounded(answer[50], 3600), "p90": _rounded(answer[90], 3600)},
        "satisfaction": {
            "rated": rated,
            "satisfied": satisfied,
            "rate": round(satisfied / rated, 4) if rated else None,
        },
    }


async def dispute_figures(session: AsyncSession, period: Period) -> dict[str, Any]:
    """Cases opened in the range by colour and level now, and how many are resolved or
    referred now."""
    rows = (
        await session.execute(
            select(DisputeCase.colour, DisputeCase.level, DisputeCase.status, func.count())
            .where(
                is_dispute(),
                DisputeCase.opened_at >= period.start,
                DisputeCase.opened_at < period.end,
                _in(DisputeCase.station_id, period.stations),
            )
            .group_by(DisputeCase.colour, DisputeCase.level, DisputeCase.status)
        )
    ).all()
    by_colour = dict.fromkeys(COLOURS, 0)
    by_level = dict.fromkeys(LEVELS, 0)
    by_status: dict[str, int] = {}
    for colour, level, status, count in rows:
        by_colour[colour] = by_colour.get(colour, 0) + count
        by_level[level] = by_level.get(level, 0) + count
        by_status[status] = by_status.get(status, 0) + count
    return {
        "by_colour": by_colour,
        "by_level": by_level,
        "resolved": by_status.get("resolved", 0),
        "referred": by_status.get("referred", 0),
    }


async def roster_size(session: AsyncSession, stations: frozenset[str] | None) -> int:
    """Households on the roster now, of the stations' groups (all households: the county)."""
    query = select(func.count()).select_from(Household)
    if stations is not None:
        query = query.join(Group, Group.id == Household.group_id).where(
            Group.station_id.in_(sorted(stations))
        )
    return int(await session.scalar(query) or 0)


async def visit_figures(session: AsyncSession, period: Period) -> dict[str, Any]:
    """Visits, households on the roster, households visited, coverage."""
    count, visited = (
        await session.execute(
            select(func.count(), func.count(distinct(Visit.household_id))).where(
                Visit.at >= period.start,
                Visit.at < period.end,
                _in(Visit.station_id, period.stations),
            )
        )
    ).one()
    households = await roster_size(session, period.stations)
    return {
        "count": int(count),
        "households": households,
        "visited_households": int(visited),
        "coverage": round(visited / households, 4) if households else None,
    }


async def bulletin_figures(session: AsyncSession, period: Period) -> dict[str, Any]:
    """Runs due in the range that went out (to the stations' groups), their messages sent and
    failed. A run counts when one of its messages was not cancelled: a run whose messages were
    all cancelled with the bulletin, or merged into an earlier run's, did not go out."""
    went_out = BulletinDelivery.status != "cancelled"
    query = (
        select(
            func.count(distinct(case((went_out, BulletinRun.id)))),
            func.sum(case((OutboxMessage.status == "sent", 1), else_=0)),
            func.sum(case((OutboxMessage.status == "failed", 1), else_=0)),
        )
        .select_from(BulletinRun)
        .join(BulletinDelivery, BulletinDelivery.run_id == BulletinRun.id)
        .outerjoin(OutboxMessage, OutboxMessage.idempotency_key == BulletinDelivery.idempotency_key)
        .where(
            BulletinRun.status == "sent",
            BulletinRun.due_at >= period.start,
            BulletinRun.due_at < period.end,
        )
    )
    if period.stations is not None:
        query = query.join(Group, Group.id == BulletinDelivery.group_id).where(
            Group.station_id.in_(sorted(period.stations))
        )
    runs, delivered, failed = (await session.execute(query)).one()
    return {"runs": int(runs or 0), "delivered": int(delivered or 0), "failed": int(failed or 0)}


async def compute_stats(session: AsyncSession, period: Period) -> dict[str, Any]:
    """Every figure of CONTRACT §6, in its shape."""
    tickets = await ticket_figures(session, period)
    return {
        **tickets,
        "disputes": await dispute_figures(session, period),
        "visits": await visit_figures(session, period),
        "bulletins": await bulletin_figures(session, period),
    }
