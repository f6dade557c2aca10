"""The ticket list's filters: read from the query string (bad values come back with a reason
and are not applied), turned into one query within the viewer's scope, and written back into
links (pages, CSV export)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from sqlalchemy import Select, case, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.ticket_service import CATEGORIES, Scope
from models.directory import Officer, Station
from models.tickets import OPEN_STATUSES, Ticket

FIELDS = ("status", "category", "priority", "station", "officer", "from", "to", "code")
STATUSES = ("open", "all", "new", "acknowledged", "answered", "escalated", "closed")
PAGE_SIZE = 50
CSV_LIMIT = 10_000
_CODE = re.compile(r"[A-Z]?\d{0,6}")


@dataclass
class Filters:
    """What the list is narrowed to. ``errors`` maps a field to the text key of why its value
    was not used; ``typed`` keeps what was typed, to show it again."""

    status: str = "open"
    category: str = ""
    priority: int | None = None
    station: str = ""
    officer: str = ""
    date_from: date | None = None
    date_to: date | None = None
    code: str = ""
    page: int = 1
    errors: dict[str, str] = field(default_factory=dict)
    typed: dict[str, str] = field(default_factory=dict)

    def params(self, **changes: Any) -> dict[str, str]:
        """The filters as query parameters (empty ones left out)."""
        values = {
            "status": self.status,
            "category": self.category,
            "priority": str(self.priority or ""),
            "station": self.station,
            "officer": self.officer,
            "from": self.date_from.isoformat() if self.date_from else "",
            "to": self.date_to.isoformat() if self.date_to else "",
            "code": self.code,
        }
        values.update({k: str(v) for k, v in changes.items()})
        return {k: v for k, v in values.items() if v}

    def query(self, **changes: Any) -> str:
        """The filters as a query string."""
        return urlencode(self.params(**changes))


@dataclass(frozen=True)
class Choices:
    """What the viewer may pick: stations and officers of their scope, by name."""

    stations: dict[str, str]
    officers: dict[str, str]  # id → "name(station)"


async def choices(session: AsyncSession, scope: Scope) -> Choices:
    """Stations and officers within ``scope``, in directory order, by name."""
    station_rows = (await session.execute(select(Station.id, Station.name))).all()
    stations = {sid: name for sid, name in station_rows if scope.covers_station(sid)}
    officers = {
        o.id: f"{o.name}({stations.get(o.station_id, '')})"
        for o in await session.scalars(select(Officer).order_by(Officer.station_id, Officer.name))
        if scope.covers_station(o.station_id) or o.id == scope.officer_id
    }
    return Choices(stations, officers)


def _date(value: str) -> date | None:
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def parse_filters(params: Mapping[str, str], picks: Choices) -> Filters:
    """Filters from a query string. A value that is not one of the choices (a station of
    another scope included) is reported and left out, never silently widened or narrowed."""
    f = Filters()
    typed = {k: (params.get(k) or "").strip()[:100] for k in FIELDS}
    f.typed = typed

    def bad(name: str, key: str = "f_bad_choice") -> None:
        f.errors[name] = key

    status = typed.get("status") or "open"
    if status in STATUSES:
        f.status = status
    else:
        bad("status")
    if typed.get("category"):
        if typed["category"] in CATEGORIES:
            f.category = typed["category"]
        else:
            bad("category")
    if typed.get("priority"):
        if typed["priority"] in ("1", "2", "3"):
            f.priority = int(typed["priority"])
        else:
            bad("priority")
    if typed.get("station"):
        if typed["station"] in picks.stations:
            f.station = typed["station"]
        else:
            bad("station")
    if typed.get("officer"):
        if typed["officer"] in picks.officers:
            f.officer = typed["officer"]
        else:
            bad("officer")
    for name in ("from", "to"):
        if typed.get(name):
            parsed = _date(typed[name])
            if parsed is None:
                bad(name, "f_bad_date")
            elif name == "from":
                f.date_from = parsed
            else:
                f.date_to = parsed
    if f.date_from and f.date_to and f.date_from > f.date_to:
        bad("to", "f_bad_range")
        f.date_to = None
    if typed.get("code"):
        code = typed["code"].lstrip("#＃").strip().upper()
        if code and _CODE.fullmatch(code):
            f.code = code
        else:
            bad("code", "f_bad_code")
    page = params.get("page") or "1"
    f.page = int(page) if page.isdigit() and 0 < int(page) <= 100_000 else 1
    return f


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz)


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
    if f.station:
        query = query.where(Ticket.station_id == f.station)
    if f.officer:
        query = query.where(Ticket.assigned_officer_id == f.officer)
    if f.date_from:
        query = query.where(Ticket.created_at >= _local_midnight(f.date_from, tz))
    if f.date_to:
        query = query.where(Ticket.created_at < _local_midnight(f.date_to + timedelta(days=1), tz))
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
