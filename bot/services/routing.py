"""Who handles a matter now: the duty roster, and a fallback chain that never ends empty.

Group → its station → the officer on duty by the roster (in the station's timezone; shifts may
cross midnight; a one-off entry replaces the weekly pattern while it covers the instant).
Fallback: the group's own officer → the station leader → the parent station's duty officer, and up.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.identity import name_key
from models.directory import Group, Officer, RosterEntry, Station
from models.journal import InboundEvent
from models.people import Binding, GroupMember, Member

_Named = TypeVar("_Named", Officer, Station)
_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def _covers(entry: RosterEntry, day: date, minute_of_day: int) -> bool:
    """Whether a shift belonging to ``day`` covers ``minute_of_day`` of that day or the next.

    ``minute_of_day`` may exceed 1440 to ask about the early hours of the following day.
    """
    start, end = _minutes(entry.start), _minutes(entry.end)
    if end == 23 * 60 + 59:
        end = 24 * 60  # "to 23:59" means to the end of the day
    if end <= start:
        end += 24 * 60  # crosses midnight: belongs to the day it starts on
    return start <= minute_of_day < end


def scheduled_on(entry: RosterEntry, day: date) -> bool:
    """Whether a shift starts on ``day`` (its weekday, or its one date)."""
    if entry.on_date is not None:
        return entry.on_date == day
    return _DAY_NAMES[day.weekday()] in entry.days


def on_duty_ids(entries: list[RosterEntry], local: datetime) -> list[str]:
    """Officer ids on duty at the local time ``local``, in roster order.

    One-off entries win where they cover the instant: "孫 covers Tuesday 08:00–20:00" replaces
    the weekly day shift then, and leaves the weekly night shift that night alone."""
    today = local.date()
    yesterday = today - timedelta(days=1)
    minute = local.hour * 60 + local.minute

    def covering(entry: RosterEntry) -> bool:
        return (scheduled_on(entry, today) and _covers(entry, today, minute)) or (
            scheduled_on(entry, yesterday) and _covers(entry, yesterday, minute + 24 * 60)
        )

    now_on = [e for e in entries if covering(e)]
    chosen = [e for e in now_on if e.on_date is not None] or now_on
    return list(dict.fromkeys(e.officer_id for e in chosen))


@dataclass(frozen=True)
class Assignment:
    officer: Officer
    how: str  # roster | group-officer | leader | parent-roster | parent-leader | county


class Router:
    """Answers "who takes this now" for a station or group, at a given instant."""

    def __init__(self, session: AsyncSession, default_tz: str) -> None:
        self._session = session
        self._default_tz = default_tz

    async def _tz(self, station: Station) -> ZoneInfo:
        return ZoneInfo(station.timezone or self._default_tz)

    async def on_duty(self, station_id: str, at: datetime) -> list[Officer]:
        """Officers on duty at ``station_id`` at the instant ``at``."""
        station = await self._session.get(Station, station_id)
        if station is None:
            return []
        entries = list(
            (
                await self._session.scalars(
                    select(RosterEntry)
                    .where(RosterEntry.station_id == station_id)
                    .order_by(RosterEntry.id)
                )
            ).all()
        )
        ids = on_duty_ids(entries, at.astimezone(await self._tz(station)))
        officers = []
        for officer_id in ids:
            officer = await self._session.get(Officer, officer_id)
            if officer is not None:
                officers.append(officer)
        return officers

    async def leader(self, station_id: str) -> Officer | None:
        """The station's leader (the first listed if several)."""
        return await self._session.scalar(
            select(Officer)
            .where(Officer.station_id == station_id, Officer.role == "leader")
            .order_by(Officer.id)
        )

    async def leaders_for(self, station_id: str) -> list[Officer]:
        """Who leads for a station: its leaders; at a station without one, as escalations go
        (the directory loader warns of it), the nearest station above's leader, else an
        officer there. Empty only when no station on the way up has anyone."""
        own = (
            await self._session.scalars(
                select(Officer)
                .where(Officer.station_id == station_id, Officer.role == "leader")
                .order_by(Officer.id)
            )
        ).all()
        if own:
            return list(own)
        async for above in self._heads_above(station_id):
            return [above]
        return []

    async def head_for(self, station_id: str) -> Officer | None:
        """The one who leads for a station, paged with its duty officer for an emergency: its
        (first) leader, else :meth:`leaders_for`'s nearest head above. A knife attack at a
        station without a leader paged its duty officer alone, the county hearing of it only
        at the second escalation step."""
        heads = await self.leaders_for(station_id)
        return heads[0] if heads else None

    async def _heads_above(self, station_id: str) -> AsyncIterator[Officer]:
        """Each station above ``station_id``, nearest first: its leader, else an officer
        there (stations with nobody are passed over)."""
        station = await self._session.get(Station, station_id)
        seen = {station_id}
        while station is not None and station.parent_id and station.parent_id not in seen:
            seen.add(station.parent_id)
            head = await self.leader(station.parent_id) or await self._session.scalar(
                select(Officer).where(Officer.station_id == station.parent_id).order_by(Officer.id)
            )
            if head is not None:
                yield head
            station = await self._session.get(Station, station.parent_id)

    async def county_station(self) -> Station | None:
        """The root of the station tree: the county, whose duty desk takes what has no home."""
        return await self._session.scalar(
            select(Station).where(Station.parent_id.is_(None)).order_by(Station.id)
        )

    async def assign(
        self, *, station_id: str | None, group: Group | None, at: datetime
    ) -> Assignment | None:
        """The officer for a new matter, walking the fallback chain; None only with no directory.

        Officers the bot can reach (with a ``wechat_id``) come first: a ticket given to an officer
        who never hears of it would wait for its deadline. Only when nobody on the chain can be
        reached is the chain walked again without that condition."""
        return await self._walk(station_id, group, at, reachable_only=True) or await self._walk(
            station_id, group, at, reachable_only=False
        )

    async def _walk(
        self, station_id: str | None, group: Group | None, at: datetime, *, reachable_only: bool
    ) -> Assignment | None:
        def ok(officer: Officer | None) -> bool:
            return officer is not None and (bool(officer.wechat_id) or not reachable_only)

        if station_id is not None:
            duty = [o for o in await self.on_duty(station_id, at) if ok(o)]
            if duty:
                preferred = next((o for o in duty if group and o.id == group.officer_id), duty[0])
                return Assignment(preferred, "roster")
            if group is not None and group.officer_id:
                own = await self._session.get(Officer, group.officer_id)
                if own is not None and ok(own):
                    return Assignment(own, "group-officer")
            leader = await self.leader(station_id)
            if leader is not None and ok(leader):
                return Assignment(leader, "leader")
            station = await self._session.get(Station, station_id)
            seen = {station_id}
            while station is not None and station.parent_id and station.parent_id not in seen:
                seen.add(station.parent_id)
                duty = [o for o in await self.on_duty(station.parent_id, at) if ok(o)]
                if duty:
                    return Assignment(duty[0], "parent-roster")
                parent_leader = await self.leader(station.parent_id)
                if parent_leader is not None and ok(parent_leader):
                    return Assignment(parent_leader, "parent-leader")
                station = await self._session.get(Station, station.parent_id)
        county = await self.county_station()
        if county is None:
            return None
        duty = [o for o in await self.on_duty(county.id, at) if ok(o)]
        if duty:
            return Assignment(duty[0], "county")
        leader = await self.leader(county.id)
        if leader is not None and ok(leader):
            return Assignment(leader, "county")
        # Last resort: any officer at all, so nothing is ever unassigned.
        query = select(Officer).order_by(Officer.id)
        if reachable_only:
            query = query.where(Officer.wechat_id.is_not(None))
        anyone = await self._session.scalar(query)
        return Assignment(anyone, "county") if anyone else None

    async def escalation_chain(self, officer: Officer) -> list[Officer]:
        """Who hears of an officer's overdue item, in order: their station's leader, then each
        station above (its leader, else an officer there); each person once, never the officer
        themself. Empty at the top of the tree."""
        chain: list[Officer] = []

        def add(candidate: Officer | None) -> None:
            known = {officer.id} | {c.id for c in chain}
            if candidate is not None and candidate.id not in known:
                chain.append(candidate)

        if await self._session.get(Station, officer.station_id) is None:
            return chain
        add(await self.leader(officer.station_id))
        async for head in self._heads_above(officer.station_id):
            add(head)
        return chain

    async def escalation_target(self, officer: Officer, level: int) -> Officer | None:
        """Level 1: the officer; level 2: the first of their escalation chain (their leader);
        level 3: the next one up. None when the chain has nobody left at that level."""
        if level <= 1:
            return officer
        chain = await self.escalation_chain(officer)
        return chain[level - 2] if len(chain) > level - 2 else None


async def station_subtree(session: AsyncSession, station_ids: Iterable[str]) -> set[str]:
    """The given stations and every station below them."""
    rows = (await session.execute(select(Station.id, Station.parent_id))).all()
    children: dict[str | None, list[str]] = {}
    for sid, parent in rows:
        children.setdefault(parent, []).append(sid)
    found: set[str] = set()
    todo = list(station_ids)
    while todo:
        sid = todo.pop()
        if sid in found:
            continue
        found.add(sid)
        todo.extend(children.get(sid, []))
    return found


async def _named(
    session: AsyncSession, table: type[_Named], said: str, *, prefix: bool = False
) -> list[_Named]:
    """The officers or stations whose directory name is ``said`` in either script, as visits
    match householders' names (陈警官 = 陳警官, 桥镇 = 橋鎮); with ``prefix``, whose name starts
    with it. A directory's few hundred names, for a rare command: folded here, not in SQL."""
    key = name_key(said)
    rows = (await session.scalars(select(table).order_by(table.id))).all()
    if prefix:
        return [row for row in rows if name_key(row.name).startswith(key)]
    return [row for row in rows if name_key(row.name) == key]


async def officers_named(session: AsyncSession, said: str) -> list[Officer]:
    """Every officer of the county called ``said``, in either script."""
    return await _named(session, Officer, said)


async def station_named(session: AsyncSession, said: str) -> Station | None:
    """A station by id, by name, or by a unique name prefix (``橋鎮`` for 橋鎮派出所), the
    name in either script (``桥镇``)."""
    exact = await session.get(Station, said) or next(
        iter(await _named(session, Station, said)), None
    )
    if exact is not None:
        return exact
    prefixed = await _named(session, Station, said, prefix=True)
    return prefixed[0] if len(prefixed) == 1 else None


async def home_station_of(session: AsyncSession, member: Member) -> tuple[str | None, Group | None]:
    """The station of the group a resident was last active in (for private messages).

    A resident writing to the Official Account is not in any bridged group under that id; if
    their verified phone is bound to a group member too, that member's group is their home.
    """
    same_person = select(Member.id).where(Member.id == member.id)
    binding = await session.scalar(select(Binding).where(Binding.member_id == member.id))
    if binding is not None:
        same_person = select(Binding.member_id).where(Binding.phone_hash == binding.phone_hash)
    member_of = and_(
        GroupMember.group_id == InboundEvent.group_id,
        GroupMember.member_id.in_(same_person),
        GroupMember.left_at.is_(None),
    )
    # The group they last wrote in (the journal says), of those they are still in; else the
    # one they joined last. By joining alone, a resident of 橋鎮 who had once joined 河西's
    # group had every private question routed to 河西's officer.
    group_id = await session.scalar(
        select(InboundEvent.group_id)
        .join(GroupMember, member_of)
        .where(
            InboundEvent.sender_id.in_(select(Member.sender_id).where(Member.id.in_(same_person))),
            InboundEvent.group_id.is_not(None),
        )
        .order_by(InboundEvent.id.desc())
        .limit(1)
    ) or await session.scalar(
        select(GroupMember.group_id)
        .where(GroupMember.member_id.in_(same_person), GroupMember.left_at.is_(None))
        .order_by(GroupMember.joined_at.desc())
        .limit(1)
    )
    if group_id is None:
        return None, None
    group = await session.get(Group, group_id)
    return (group.station_id, group) if group else (None, None)


def local_time(at: datetime, tz: str) -> time:
    """Wall-clock time at ``at`` in ``tz``."""
    return at.astimezone(ZoneInfo(tz)).time()
