"""What the 組織 pages read: the stations a viewer sees and may change, the tree, each
station's officers and groups, and its roster as a week in local time."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.routing import on_duty_ids, scheduled_on, station_subtree
from bot.web.console.viewer import Viewer
from models.directory import Group, Officer, RosterEntry, Station


@dataclass(frozen=True)
class OrgScope:
    """The stations a viewer sees (None: all) and whether they may change them: admins
    everywhere, leaders their station's subtree, officers nothing."""

    stations: frozenset[str] | None
    editor: bool

    def sees(self, station_id: str) -> bool:
        return self.stations is None or station_id in self.stations

    def edits(self, station_id: str) -> bool:
        return self.editor and self.sees(station_id)


async def org_scope(session: AsyncSession, who: Viewer) -> OrgScope:
    """The viewer's part of the directory (the chat's rule: a station and those below it)."""
    if who.is_admin:
        return OrgScope(None, True)
    if who.officer is None:
        return OrgScope(frozenset(), False)
    stations = frozenset(await station_subtree(session, [who.officer.station_id]))
    return OrgScope(stations, who.role == "leader")


@dataclass
class StationNode:
    """A station in the tree, with its people, groups and the stations below it."""

    station: Station
    depth: int
    officers: list[Officer] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    on_duty: set[str] = field(default_factory=set)


@dataclass
class Directory:
    """The visible directory: stations in tree order, officers by id (for names)."""

    nodes: list[StationNode]
    officers: dict[str, Officer]
    stations: dict[str, Station]

    def officer_name(self, officer_id: str | None) -> str:
        officer = self.officers.get(officer_id or "")
        return officer.name if officer else ""


def station_tz(station: Station, default: ZoneInfo) -> ZoneInfo:
    """The timezone a station's roster is kept in."""
    return ZoneInfo(station.timezone) if station.timezone else default


async def read_directory(
    session: AsyncSession, scope: OrgScope, *, now: datetime, tz: ZoneInfo
) -> Directory:
    """The stations of ``scope`` as a tree (each below its parent, by name), with officers,
    groups and who is on duty at ``now``."""
    # Sorted here, not by the database: collations differ between SQLite and PostgreSQL.
    everything = sorted(await session.scalars(select(Station)), key=lambda s: (s.name, s.id))
    stations = {s.id: s for s in everything}
    visible = {sid: s for sid, s in stations.items() if scope.sees(sid)}
    children: dict[str | None, list[Station]] = {}
    for st in visible.values():
        parent = st.parent_id if st.parent_id in visible else None
        children.setdefault(parent, []).append(st)
    nodes: list[StationNode] = []
    by_id: dict[str, StationNode] = {}

    def walk(parent: str | None, depth: int) -> None:
        for st in children.get(parent, []):
            if st.id in by_id:
                continue
            by_id[st.id] = StationNode(st, depth)
            nodes.append(by_id[st.id])
            walk(st.id, depth + 1)

    walk(None, 0)
    officers = {o.id: o for o in await session.scalars(select(Officer).order_by(Officer.id))}
    for officer in officers.values():
        if officer.station_id in by_id:
            by_id[officer.station_id].officers.append(officer)
    for group in sorted(await session.scalars(select(Group)), key=lambda g: (g.name, g.id)):
        if group.station_id in by_id:
            by_id[group.station_id].groups.append(group)
    roster = await session.scalars(select(RosterEntry).order_by(RosterEntry.id))
    entries: dict[str, list[RosterEntry]] = {}
    for entry in roster:
        entries.setdefault(entry.station_id, []).append(entry)
    for sid, node in by_id.items():
        node.officers.sort(key=lambda o: (o.role != "leader", o.name))
        local = now.astimezone(station_tz(node.station, tz))
        node.on_duty = set(on_duty_ids(entries.get(sid, []), local))
    return Directory(nodes, officers, stations)


@dataclass(frozen=True)
class Slot:
    """A shift starting on a day of the week view."""

    entry: RosterEntry
    overnight: bool  # ends the next morning
    one_off: bool


@dataclass(frozen=True)
class Week:
    """Monday to Sunday of one week, each day with the shifts that start on it."""

    monday: date
    days: list[tuple[date, list[Slot]]]

    @property
    def previous(self) -> date:
        return self.monday - timedelta(days=7)

    @property
    def following(self) -> date:
        return self.monday + timedelta(days=7)


def monday_of(day: date) -> date:
    """The Monday of ``day``'s week."""
    return day - timedelta(days=day.weekday())


def week_view(entries: list[RosterEntry], monday: date) -> Week:
    """The roster's week from ``monday``: each day's shifts by start time, one-off shifts
    (which replace the weekly ones while they run, as routing does) marked."""
    days = []
    for offset in range(7):
        day = monday + timedelta(days=offset)
        slots = [
            Slot(e, overnight=e.end <= e.start and e.end != "24:00", one_off=e.on_date is not None)
            for e in entries
            if scheduled_on(e, day)
        ]
        slots.sort(key=lambda s: (s.entry.start, s.entry.end))
        days.append((day, slots))
    return Week(monday, days)


async def station_roster(session: AsyncSession, station_id: str) -> list[RosterEntry]:
    """A station's roster in the order routing reads it."""
    return list(
        await session.scalars(
            select(RosterEntry).where(RosterEntry.station_id == station_id).order_by(RosterEntry.id)
        )
    )


async def officer_choices(
    session: AsyncSession, scope: OrgScope, directory: Directory
) -> dict[str, str]:
    """Officers an editor may put on a roster or a group: those of their stations, by
    name with their station (id → words)."""
    return {
        o.id: f"{o.name}({directory.stations[o.station_id].name})"
        for o in directory.officers.values()
        if scope.sees(o.station_id) and o.station_id in directory.stations
    }
