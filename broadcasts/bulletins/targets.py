"""Whom a bulletin reaches: targets resolved against the directory, and who may target what."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.routing import station_subtree
from broadcasts.bulletins.specs import Problem
from models.bulletins import Bulletin
from models.directory import Group, Station


async def resolve_targets(
    session: AsyncSession, targets: dict[str, Any], *, field: str = "targets"
) -> list[Group]:
    """The groups a target names, in id order; :class:`Problem` names unknown entries."""
    query = select(Group).order_by(Group.id)
    if targets.get("all"):
        return list((await session.scalars(query)).all())
    if "groups" in targets:
        wanted = list(dict.fromkeys(targets["groups"]))
        groups = list((await session.scalars(query.where(Group.id.in_(wanted)))).all())
        unknown = sorted(set(wanted) - {g.id for g in groups})
        if unknown:
            raise Problem(
                f"{field}.groups",
                f"unknown group(s): {', '.join(unknown)}",
                code="unknown",
                names=unknown,
            )
        return groups
    if "tags" in targets:
        tags = set(targets["tags"])
        # Tags are a JSON list per group: filter in Python, the directory is small.
        groups = [g for g in (await session.scalars(query)).all() if tags & set(g.tags or [])]
        unknown = sorted(tags - {t for g in groups for t in g.tags or []})
        if unknown:
            raise Problem(
                f"{field}.tags",
                f"unknown tag(s): {', '.join(unknown)}",
                code="unknown",
                names=unknown,
            )
        return groups
    if "stations" in targets:
        wanted = list(dict.fromkeys(targets["stations"]))
        known = set((await session.scalars(select(Station.id).where(Station.id.in_(wanted)))).all())
        unknown = sorted(set(wanted) - known)
        if unknown:
            raise Problem(
                f"{field}.stations",
                f"unknown station(s): {', '.join(unknown)}",
                code="unknown",
                names=unknown,
            )
        stations = await station_subtree(session, wanted)
        return list((await session.scalars(query.where(Group.station_id.in_(stations)))).all())
    raise Problem(field, "give exactly one of groups, tags, stations, all")


async def target_page(
    session: AsyncSession, targets: dict[str, Any], *, after: str | None, size: int
) -> tuple[list[Group], str | None]:
    """One page of the groups a stored target reaches (read as :func:`reached_groups` reads
    it: entries that have left the directory reach nobody), in id order after ``after``, and
    the last group id looked at (None once there are no more). A fan-out reads a target this
    way so that neither it nor the database holds every group at once.

    A page may hold fewer than ``size`` groups, or none, before the end: tags are matched in
    Python, the directory stores them as a JSON list."""
    query = select(Group).order_by(Group.id).limit(size)
    if after is not None:
        query = query.where(Group.id > after)
    wanted_tags: set[str] | None = None
    if targets.get("all"):
        pass
    elif "groups" in targets:
        query = query.where(Group.id.in_(list(dict.fromkeys(targets["groups"]))))
    elif "tags" in targets:
        wanted_tags = set(targets["tags"])
    elif "stations" in targets:
        wanted = list(dict.fromkeys(targets["stations"]))
        known = (await session.scalars(select(Station.id).where(Station.id.in_(wanted)))).all()
        query = query.where(Group.station_id.in_(await station_subtree(session, known)))
    else:
        return [], None
    page = list((await session.scalars(query)).all())
    if not page:
        return [], None
    if wanted_tags is not None:
        return [g for g in page if wanted_tags & set(g.tags or [])], page[-1].id
    return page, page[-1].id


def check_within(
    targets: dict[str, Any],
    groups: Sequence[Group],
    within: frozenset[str] | None,
    *,
    field: str = "targets",
) -> None:
    """An author limited to some stations (a leader: their station and those below it) may
    target those stations or their groups, nothing else; ``within`` None is the county.

    Tags and ``all`` are refused to them: a tag is resolved county-wide at every run, so it
    could reach another station's groups, now or once the directory changes.
    """
    if within is None:
        return
    if targets.get("all"):
        raise Problem(field, "only an admin may target every group", code="scope_all")
    if "tags" in targets:
        raise Problem(f"{field}.tags", "only an admin may target by tag", code="scope_tags")
    where = f"{field}.stations" if "stations" in targets else f"{field}.groups"
    outside = [s for s in targets.get("stations", []) if s not in within]
    outside += [g.id for g in groups if g.station_id not in within]
    if outside:
        raise Problem(
            where,
            f"outside the author's stations: {', '.join(outside)}",
            code="outside_scope",
            names=outside,
        )


async def reached_groups(session: AsyncSession, targets: dict[str, Any]) -> list[Group]:
    """The groups a stored target reaches today; entries that have left the directory since
    reach nobody (a run sends to the rest)."""
    try:
        return await resolve_targets(session, targets)
    except Problem:
        return await existing_targets(session, targets)


async def within_reach(
    session: AsyncSession, bulletin: Bulletin, within: frozenset[str] | None
) -> bool:
    """Whether an author limited to ``within`` may act on ``bulletin`` (pause, resume,
    cancel): everything it targets lies within their stations."""
    if within is None:
        return True
    try:
        check_within(bulletin.targets, await reached_groups(session, bulletin.targets), within)
    except Problem:
        return False
    return True


def channel_for(group: Group) -> str:
    """Groups with a WeCom group-robot webhook are sent through it; the rest via the bridge."""
    return "wecom_robot" if group.wecom_webhook else "bridge"


async def group_timezones(session: AsyncSession, default: str) -> dict[str, ZoneInfo]:
    """Station id → its timezone (stations may carry their own; else the configured one)."""
    rows = (await session.execute(select(Station.id, Station.timezone))).all()
    return {sid: ZoneInfo(tz or default) for sid, tz in rows}


async def existing_targets(session: AsyncSession, targets: dict[str, Any]) -> list[Group]:
    pruned = dict(targets)
    if "groups" in pruned:
        known = set((await session.scalars(select(Group.id))).all())
        pruned["groups"] = [g for g in pruned["groups"] if g in known]
        return await resolve_targets(session, pruned) if pruned["groups"] else []
    if "stations" in pruned:
        known = set((await session.scalars(select(Station.id))).all())
        pruned["stations"] = [s for s in pruned["stations"] if s in known]
        return await resolve_targets(session, pruned) if pruned["stations"] else []
    if "tags" in pruned:
        wanted = set(pruned["tags"])
        groups = (await session.scalars(select(Group).order_by(Group.id))).all()
        return [g for g in groups if wanted & set(g.tags or [])]
    return []
