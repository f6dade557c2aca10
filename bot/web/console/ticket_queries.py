"""The ticket list's filters: read from the query string (bad values come back with a reason
and are not applied), turned into one query within the viewer's scope, and written back into
links (pages, CSV export)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, case, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.ticket_service import CATEGORIES, Scope
from bot.web.console.list_filters import (
    ListFilters,
    days_clause,
    read_range,
    read_station,
    read_typed,
    station_subtrees,
)
from models.directory import Officer, Station
from models.tickets import OPEN_STATUSES, Ticket

FIELDS = ("status", "category", "priority", "officer", "from", "to", "code")
STATUSES = ("open", "all", "new", "acknowledged", "answered", "escalated", "closed")
PAGE_SIZE = 50
CSV_LIMIT = 10_000
_CODE = re.compile(r"[A-Z]?\d{0,6}")


@dataclass
class Filters(ListFilters):
    """What the ticket list is narrowed to (the station and paging: :class:`ListFilters`)."""

    status: str = "open"
    category: str = ""
    priority: int | None = None
    officer: str = ""
    date_from: date | None = None
    date_to: date | None = None
    code: str = ""

    def values(self) -> dict[str, str]:
        return {
            "status": self.status,
            "category": self.category,
            "priority": str(self.priority or ""),
            "officer": self.officer,
            "from": self.date_from.isoformat() if self.date_from else "",
            "to": self.date_to.isoformat() if self.date_to else "",
            "code": self.code,
        }


@dataclass(frozen=True)
class Choices:
    """What the viewer may pick: stations and officers of their scope, by name, and each
    station's subtree (the station filter's ``below``)."""

    stations: dict[str, str]
    officers: dict[str, str]  # id → "name(station)"
    subtrees: dict[str, frozenset[str]] = field(default_factory=dict)


async def choices(session: AsyncSession, scope: Scope) -> Choices:
    """Stations and officers within ``scope``, in directory order, by name."""
    station_rows = (await session.execute(select(Station.id, Station.name))).all()
    stations = {sid: name for sid, name in station_rows if scope.covers_station(sid)}
    officers = {
        o.id: f"{o.name}({stations.get(o.station_id, '')})"
        for o in await session.scalars(select(Officer).order_by(Officer.station_id, Officer.name))
        if scope.covers_station(o.station_id) or o.id == scope.officer_id
    }
    return Choices(stations, officers, await station_subtrees(session, scope))


def parse_filters(params: Mapping[str, str], picks: Choices) -> Filters:
    """Filters from a query string. A value that is not one of the choices (a station of
    another scope included) is reported and left out, never silently widened or narrowed."""
    f = Filters()
    read_typed(f, params, FIELDS, 100)
    typed = f.typed
    f.status = f.choose("status", STATUSES) or "open"
    f.category = f.choose("category", CATEGORIES)
    priority = f.choose("priority", ("1", "2", "3"))
    f.priority = int(priority) if priority else None
    read_station(f, picks.subtrees)
    f.officer = f.choose("officer", picks.officers)
    # Within the years every date page takes: a day either side of 0001-01-01 or
    # 9999-12-31 overflows when it becomes an instant (was a 500).
    f.date_from, f.date_to = read_range(f)
    if typed["code"]:
        code = typed["code"].lstrip("#＃").strip().upper()
        if code and _CODE.fullmatch(code):
            f.code = code
        else:
            f.errors["code"] = "f_bad_code"
    return f


def ticket_query(f: Filters, *, scope: Scope, tz: ZoneInfo, mine: str | None) -> Select[Any]:
    """The tickets matching ``f`` within ``scope``. Order: ``mine`` (an officer's own) first,
    open before closed, then by priority, newest first."""
    query = select(Ticket).where(scope.clause())
    if f.status == "open":
        query = query.where(Ticket.status.in_(OPEN_STATUSES))
    elif f.status != "all":
        query = query.where(Ticket.status == f.status)
    if f.category:
        query = query.where(Ticket.category == f.category)
    if f.priority:
        query = query.where(Ticket.priority == f.priority)
    if (station := f.station_clause(Ticket.station_id)) is not None:
        query = query.where(station)
    if f.officer:
        query = query.where(Ticket.assigned_officer_id == f.officer)
    query = query.where(*days_clause(Ticket.created_at, f.date_from, f.date_to, tz))
    if f.code:
        # A code's start ("A10"), or its digits ("1023"), as people remember them.
        pattern = f"{f.code}%" if f.code[0].isalpha() else f"_{f.code}%"
        query = query.where(Ticket.code.like(pattern))
    order: list[Any] = []
    if mine:
        order.append(case((Ticket.assigned_officer_id == mine, 0), else_=1))
    order += [
        case((Ticket.status == "closed", 1), else_=0),
        Ticket.priority,
        Ticket.created_at.desc(),
        Ticket.id.desc(),
    ]
    return query.order_by(*order)
