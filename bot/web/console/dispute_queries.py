"""The dispute register's filters and queries: colour, level, station and status read from the
query string (a value that is not one of the choices comes back with a reason and is not
applied), one query within the viewer's scope with red open cases on top, and the register's
tally (open cases by colour and level, settled ones by the level that settled them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import TypeVarTuple
from zoneinfo import ZoneInfo

from sqlalchemy import Select, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.ticket_service import Scope
from bot.web.console.list_filters import (
    ListFilters,
    days_clause,
    read_range,
    read_station,
    read_typed,
)
from models.disputes import COLOURS, LEVELS, STATUSES, DisputeCase, is_dispute
from models.tickets import Ticket

FIELDS = ("colour", "level", "status", "from", "to")
# "open" (the default) and "all" besides the case statuses.
STATUS_CHOICES = ("open", "all", *(s for s in STATUSES if s != "open"))
PAGE_SIZE = 50
Row = TypeVarTuple("Row")  # the columns of a query a helper narrows and hands back


@dataclass
class DisputeFilters(ListFilters):
    """What the register is narrowed to (the station and paging: :class:`ListFilters`)."""

    colour: str = ""
    level: str = ""
    status: str = "open"
    # The local days the cases were opened on (統計's range: its bars link here with it).
    opened_from: date | None = None
    opened_to: date | None = None

    def values(self) -> dict[str, str]:
        return {
            "colour": self.colour,
            "level": self.level,
            "status": self.status,
            "from": self.opened_from.isoformat() if self.opened_from else "",
            "to": self.opened_to.isoformat() if self.opened_to else "",
        }


def parse_filters(
    params: Mapping[str, str], subtrees: Mapping[str, frozenset[str]]
) -> DisputeFilters:
    """Filters from a query string; ``subtrees`` are the stations the viewer may pick, each
    with those below it. A station of another scope, or a colour that is not one, is reported
    and left out."""
    f = DisputeFilters()
    read_typed(f, params, FIELDS, 64)
    f.colour = f.choose("colour", COLOURS)
    f.level = f.choose("level", LEVELS)
    read_station(f, subtrees)
    f.status = f.choose("status", STATUS_CHOICES) or "open"
    f.opened_from, f.opened_to = read_range(f)
    return f


def _in_scope(query: Select[*Row], scope: Scope) -> Select[*Row]:
    """A case is the viewer's when its ticket is (the scope rule of bot/services/ticket_service)."""
    return query.join(Ticket, Ticket.id == DisputeCase.ticket_id).where(
        scope.clause(), is_dispute()
    )


def register_query(f: DisputeFilters, *, scope: Scope, tz: ZoneInfo) -> Select[DisputeCase, Ticket]:
    """The cases matching ``f`` within ``scope``, with their tickets. Red open cases first,
    then the other open ones (yellow before blue, the nearest deadline first), then the
    settled, newest first."""
    query = _in_scope(select(DisputeCase, Ticket), scope)
    query = query.where(*days_clause(DisputeCase.opened_at, f.opened_from, f.opened_to, tz))
    if f.colour:
        query = query.where(DisputeCase.colour == f.colour)
    if f.level:
        query = query.where(DisputeCase.level == f.level)
    if (station := f.station_clause(DisputeCase.station_id)) is not None:
        query = query.where(station)
    if f.status != "all":
        query = query.where(DisputeCase.status == f.status)
    is_open = DisputeCase.status == "open"
    return query.order_by(
        case((is_open & (DisputeCase.colour == "red"), 0), (is_open, 1), else_=2),
        case({c: i for i, c in enumerate(COLOURS)}, value=DisputeCase.colour, else_=len(COLOURS)),
        # Without a deadline (the county's has passed) after those with one, on every database.
        case((DisputeCase.level_deadline.is_(None), 1), else_=0),
        DisputeCase.level_deadline,
        DisputeCase.opened_at.desc(),
        DisputeCase.id.desc(),
    )


@dataclass
class Tally:
    """The register at a glance, within the viewer's scope: open cases by colour and by level,
    settled ones by the level where the agreement was reached, referred and withdrawn."""

    open_by_colour: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COLOURS, 0))
    open_by_level: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LEVELS, 0))
    resolved_at: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LEVELS, 0))
    referred: int = 0
    withdrawn: int = 0

    @property
    def open(self) -> int:
        return sum(self.open_by_colour.values())


async def tally(session: AsyncSession, scope: Scope) -> Tally:
    """Count the scope's cases (one grouped query)."""
    query = _in_scope(
        select(
            DisputeCase.status,
            DisputeCase.colour,
            DisputeCase.level,
            DisputeCase.resolved_level,
            func.count(),
        ),
        scope,
    ).group_by(
        DisputeCase.status, DisputeCase.colour, DisputeCase.level, DisputeCase.resolved_level
    )
    t = Tally()
    for status, colour, level, resolved_level, count in (await session.execute(query)).all():
        if status == "open":
            t.open_by_colour[colour] = t.open_by_colour.get(colour, 0) + count
            t.open_by_level[level] = t.open_by_level.get(level, 0) + count
        elif status == "resolved":
            where = resolved_level or level
            t.resolved_at[where] = t.resolved_at.get(where, 0) + count
        elif status == "referred":
            t.referred += count
        elif status == "withdrawn":
            t.withdrawn += count
    return t
