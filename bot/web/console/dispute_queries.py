"""The dispute register's filters and queries: colour, level, station and status read from the
query string (a value that is not one of the choices comes back with a reason and is not
applied), one query within the viewer's scope with red open cases on top, and the register's
tally (open cases by colour and level, settled ones by the level that settled them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVarTuple
from urllib.parse import urlencode

from sqlalchemy import Select, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.ticket_service import Scope
from models.disputes import COLOURS, LEVELS, STATUSES, DisputeCase
from models.tickets import Ticket

FIELDS = ("colour", "level", "station", "status")
# "open" (the default) and "all" besides the case statuses.
STATUS_CHOICES = ("open", "all", *(s for s in STATUSES if s != "open"))
PAGE_SIZE = 50
Row = TypeVarTuple("Row")  # the columns of a query a helper narrows and hands back


@dataclass
class DisputeFilters:
    """What the register is narrowed to; ``errors`` maps a field to the text key of why its
    value was not used, ``typed`` keeps what was asked for."""

    colour: str = ""
    level: str = ""
    station: str = ""
    status: str = "open"
    page: int = 1
    errors: dict[str, str] = field(default_factory=dict)
    typed: dict[str, str] = field(default_factory=dict)

    def params(self, **changes: Any) -> dict[str, str]:
        """The filters as query parameters (empty ones left out)."""
        values = {
            "colour": self.colour,
            "level": self.level,
            "station": self.station,
            "status": self.status,
        }
        values.update({k: str(v) for k, v in changes.items()})
        return {k: v for k, v in values.items() if v}

    def query(self, **changes: Any) -> str:
        """The filters as a query string."""
        return urlencode(self.params(**changes))


def parse_filters(params: Mapping[str, str], stations: Mapping[str, str]) -> DisputeFilters:
    """Filters from a query string; ``stations`` are those the viewer may pick. A station of
    another scope, or a colour that is not one, is reported and left out."""
    f = DisputeFilters()
    typed = {k: (params.get(k) or "").strip()[:64] for k in FIELDS}
    f.typed = typed
    for name, allowed in (("colour", COLOURS), ("level", LEVELS), ("station", stations)):
        value = typed[name]
        if value and value in allowed:
            setattr(f, name, value)
        elif value:
            f.errors[name] = "f_bad_choice"
    status = typed["status"] or "open"
    if status in STATUS_CHOICES:
        f.status = status
    else:
        f.errors["status"] = "f_bad_choice"
    page = params.get("page") or "1"
    f.page = int(page) if page.isdigit() and 0 < int(page) <= 100_000 else 1
    return f


def _in_scope(query: Select[*Row], scope: Scope) -> Select[*Row]:
    """A case is the viewer's when its ticket is (the scope rule of bot/services/ticket_service)."""
    return query.join(Ticket, Ticket.id == DisputeCase.ticket_id).where(scope.clause())


def register_query(f: DisputeFilters, *, scope: Scope) -> Select[DisputeCase, Ticket]:
    """The cases matching ``f`` within ``scope``, with their tickets. Red open cases first,
    then the other open ones (yellow before blue, the nearest deadline first), then the
    settled, newest first."""
    query = _in_scope(select(DisputeCase, Ticket), scope)
    if f.colour:
        query = query.where(DisputeCase.colour == f.colour)
    if f.level:
        query = query.where(DisputeCase.level == f.level)
    if f.station:
        query = query.where(DisputeCase.station_id == f.station)
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
