"""What the console's list pages (工單, 糾紛台賬) read from a query string alike: the values as
typed (cut to a length), a choice that must be one of a set (else reported, not applied), the
page number, the days a list's items came in (``from``, ``to``), and the station filter — one
station, or with ``below=1`` the station and every station under it (as 統計 counts a station,
so that its drill-down lists hold what it counted) — and how they go back into links."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from bot.services.stats import StatsInputError, parse_day
from bot.services.ticket_service import Scope
from models.directory import Station

MAX_PAGE = 100_000


@dataclass
class ListFilters:
    """Filters of a list page. ``errors`` maps a field to the text key of why its value was not
    used; ``typed`` keeps what was typed, to show it again. Subclasses name their own values in
    :meth:`values`."""

    station: str = ""
    below: bool = False  # the station's subtree, not the station alone
    page: int = 1
    errors: dict[str, str] = field(default_factory=dict)
    typed: dict[str, str] = field(default_factory=dict)
    # The stations the station filter stands for (set by :func:`read_station`).
    stations: frozenset[str] = frozenset()

    def values(self) -> dict[str, str]:
        """The list's own filters as query parameters (before the station's)."""
        return {}

    def params(self, **changes: Any) -> dict[str, str]:
        """The filters as query parameters (empty ones left out)."""
        values = {
            **self.values(),
            "station": self.station,
            "below": "1" if self.below and self.station else "",
        }
        values.update({k: str(v) for k, v in changes.items()})
        return {k: v for k, v in values.items() if v}

    def query(self, **changes: Any) -> str:
        """The filters as a query string."""
        return urlencode(self.params(**changes))

    def choose(self, name: str, allowed: Collection[str]) -> str:
        """The typed value of ``name`` if it is one of ``allowed``; "" otherwise, with the
        reason kept when something was typed."""
        value = self.typed.get(name, "")
        if value and value not in allowed:
            self.errors[name] = "f_bad_choice"
            return ""
        return value

    def station_clause(
        self, column: InstrumentedAttribute[str | None]
    ) -> ColumnElement[bool] | None:
        """The condition on ``column`` (a station id) the station filter makes, if any."""
        if not self.station:
            return None
        if self.below:
            return column.in_(sorted(self.stations))
        return column == self.station


def read_typed(
    f: ListFilters, params: Mapping[str, str], fields: Iterable[str], limit: int
) -> None:
    """Keep what was typed for ``fields`` (and ``station``, ``below``) and the page number."""
    f.typed = {k: (params.get(k) or "").strip()[:limit] for k in (*fields, "station", "below")}
    page = params.get("page") or "1"
    f.page = int(page) if page.isdigit() and 0 < int(page) <= MAX_PAGE else 1


def date_error(exc: StatsInputError) -> str:
    """The text key of why a typed date was not used: not a date, or out of the years."""
    return "f_date_out_of_range" if exc.out_of_range else "f_bad_date"


def read_day(f: ListFilters, name: str) -> date | None:
    """The date typed for ``name`` (``YYYY-MM-DD``, within the years the API and 統計 take:
    ``stats.parse_day``), or None with the reason kept."""
    typed = f.typed.get(name, "")
    if not typed:
        return None
    try:
        return parse_day(name, typed)
    except StatsInputError as exc:
        f.errors[name] = date_error(exc)
        return None


def read_range(f: ListFilters) -> tuple[date | None, date | None]:
    """The ``from`` and ``to`` days typed (local dates, both included); a ``to`` before the
    ``from`` is reported and left out."""
    first, last = read_day(f, "from"), read_day(f, "to")
    if first and last and first > last:
        f.errors["to"] = "f_bad_range"
        last = None
    return first, last


def days_clause(
    column: InstrumentedAttribute[datetime], first: date | None, last: date | None, tz: ZoneInfo
) -> list[ColumnElement[bool]]:
    """``column`` (an instant) on the local days ``first`` to ``last``, as 統計 counts them."""
    where: list[ColumnElement[bool]] = []
    if first:
        where.append(column >= datetime.combine(first, time(0), tzinfo=tz))
    if last:
        where.append(column < datetime.combine(last + timedelta(days=1), time(0), tzinfo=tz))
    return where


def read_station(f: ListFilters, subtrees: Mapping[str, frozenset[str]]) -> None:
    """The station filter: one of the viewer's stations (``subtrees``' keys), alone or with
    those below it; one from outside is reported and not applied."""
    f.station = f.choose("station", subtrees)
    f.below = f.typed.get("below") == "1"
    if f.station:
        f.stations = subtrees[f.station] if f.below else frozenset({f.station})


async def station_subtrees(session: AsyncSession, scope: Scope) -> dict[str, frozenset[str]]:
    """Each station within ``scope`` with itself and every station under it (in the scope,
    as a scope holds a station's whole subtree), in directory order."""
    rows = (await session.execute(select(Station.id, Station.parent_id))).all()
    children: dict[str, list[str]] = {}
    for sid, parent in rows:
        if parent:
            children.setdefault(parent, []).append(sid)
    out: dict[str, frozenset[str]] = {}
    for sid, _ in rows:
        if not scope.covers_station(sid):
            continue
        seen, todo = {sid}, [sid]
        while todo:
            for child in children.get(todo.pop(), []):
                if child not in seen:
                    seen.add(child)
                    todo.append(child)
        out[sid] = frozenset(s for s in seen if scope.covers_station(s))
    return out
