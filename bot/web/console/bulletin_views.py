"""What the 公告 pages read: who may schedule and for which stations, the pickers (stations,
groups and tags by name), and the bulletins of a viewer's scope with their targets, schedules
and per-group delivery status in words. Read-only; states come from broadcasts/bulletins/
(``list_runs``, ``list_deliveries``, ``reached_groups``), the same as the API's."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.web.console.bulletin_form import describe
from bot.web.console.ui import Ui
from bot.web.console.viewer import Viewer
from broadcasts.bulletins import (
    DeliveryView,
    RunView,
    list_deliveries,
    list_runs,
    reached_groups,
    within_reach,
)
from models.bulletins import Bulletin, BulletinRun
from models.console import ConsoleAccount
from models.directory import Group, Officer, Station

LIST_STATUSES = ("current", "active", "paused", "finished", "cancelled", "all")
PAGE_SIZE = 50
RUNS_SHOWN = 20


def may_schedule(who: Viewer) -> bool:
    """Admins schedule for the county, leaders for their station and those below it;
    officers see what goes to their groups."""
    return who.is_admin or (who.role == "leader" and bool(who.scope.stations))


def within(who: Viewer) -> frozenset[str] | None:
    """The stations a viewer's bulletins may reach (None: every station)."""
    return None if who.is_admin else (who.scope.stations or frozenset())


@dataclass(frozen=True)
class StationChoice:
    id: str
    name: str
    depth: int
    groups: int  # groups of the station and every station below it


@dataclass(frozen=True)
class GroupChoice:
    id: str
    name: str
    station: str


@dataclass
class Choices:
    """The pickers of the form, limited to the viewer's stations, and names by id."""

    stations: list[StationChoice] = field(default_factory=list)
    groups: list[GroupChoice] = field(default_factory=list)
    tags: list[tuple[str, int]] = field(default_factory=list)  # admins only
    everyone: bool = False  # admins only: 全縣所有群
    names: dict[str, str] = field(default_factory=dict)


async def choices(session: AsyncSession, limit: frozenset[str] | None) -> Choices:
    """Stations as a tree (with how many groups each reaches), groups by station, tags."""
    stations = list(await session.scalars(select(Station).order_by(Station.name)))
    groups = list(await session.scalars(select(Group).order_by(Group.name)))
    children: dict[str | None, list[Station]] = {}
    for s in stations:
        children.setdefault(s.parent_id, []).append(s)
    known = {s.id for s in stations}
    own = Counter(g.station_id for g in groups)
    out = Choices(names={s.id: s.name for s in stations} | {g.id: g.name for g in groups})

    def walk(station: Station, depth: int, seen: frozenset[str]) -> int:
        # Returns the groups the station reaches; a cycle in a broken directory stops here.
        if station.id in seen:
            return 0
        at = len(out.stations)
        shown = limit is None or station.id in limit
        if shown:
            out.stations.append(StationChoice(station.id, station.name, depth, 0))
        total = own[station.id] + sum(
            walk(c, depth + shown, seen | {station.id}) for c in children.get(station.id, [])
        )
        if shown:
            out.stations[at] = StationChoice(station.id, station.name, depth, total)
        return total

    for root in [s for s in stations if s.parent_id not in known]:
        walk(root, 0, frozenset())
    names = out.names
    out.groups = [
        GroupChoice(g.id, g.name, names.get(g.station_id, ""))
        for g in groups
        if limit is None or g.station_id in limit
    ]
    if limit is None:
        tags = Counter(t for g in groups for t in (g.tags or []))
        out.tags = sorted(tags.items())
        out.everyone = True
    return out


@dataclass(frozen=True)
class GroupLine:
    """One group's state for a run: sent, waiting (and why), failed…"""

    name: str
    status: str  # waiting (no run yet) | deferred | pending | sent | failed | held | cancelled
    sent_at: datetime | None = None
    not_before: datetime | None = None
    reason: str | None = None  # quiet_hours | daily_cap | merged | cancelled | error
    error: str | None = None


@dataclass
class BulletinLine:
    """A bulletin as the list and its page show it."""

    bulletin: Bulletin
    targets: str
    reach: int
    schedule: str
    author: str
    manage: bool
    last_run: BulletinRun | None = None
    groups: list[GroupLine] = field(default_factory=list)


def _reason(view: DeliveryView) -> tuple[str | None, str | None]:
    """The delivery's reason as a code the page words, and a sending error as it came."""
    reason = view.reason or ""
    head = reason.split(":", 1)[0]
    if head in ("quiet_hours", "daily_cap", "merged"):
        return head, None
    if reason == "bulletin cancelled":
        return "cancelled", None
    if view.status in ("failed", "pending") and reason:
        return "error", reason[:200]
    return None, None


def group_lines(views: list[DeliveryView], names: dict[str, str]) -> list[GroupLine]:
    """Deliveries of one run, by group name."""
    out = []
    for v in views:
        reason, error = _reason(v)
        out.append(
            GroupLine(
                name=names.get(v.group_id, v.group_id),
                status=v.status,
                sent_at=v.sent_at,
                not_before=v.not_before,
                reason=reason,
                error=error,
            )
        )
    return sorted(out, key=lambda g: g.name)


def targets_words(bulletin: Bulletin, ui: Ui, names: dict[str, str]) -> str:
    """全縣所有群, 標籤:village, or the stations' or groups' names."""
    targets = bulletin.targets or {}
    if targets.get("all"):
        return ui.t("targets_all")
    if "tags" in targets:
        return ui.t("targets_tags", names="、".join(targets["tags"]))
    listed = targets.get("stations") or targets.get("groups") or []
    return "、".join(names.get(i, ui.t("bl_gone")) for i in listed)


async def author_names(session: AsyncSession) -> dict[str, str]:
    """``console:USERNAME`` → how the account signs (its name, its officer's, or itself)."""
    officers = dict((await session.execute(select(Officer.id, Officer.name))).all())
    rows = await session.execute(
        select(ConsoleAccount.username, ConsoleAccount.name, ConsoleAccount.officer_id)
    )
    return {f"console:{u}": n or officers.get(o or "", "") or u for u, n, o in rows.all()}


async def visible(session: AsyncSession, who: Viewer, bulletin: Bulletin) -> bool:
    """Whether the viewer sees a bulletin: admins all, others those reaching a group of
    their stations."""
    if who.is_admin:
        return True
    reached = await reached_groups(session, bulletin.targets or {})
    return any(who.scope.covers_station(g.station_id) for g in reached)


async def line(
    session: AsyncSession,
    who: Viewer,
    bulletin: Bulletin,
    *,
    ui: Ui,
    names: dict[str, str],
    authors: dict[str, str],
    now: datetime,
) -> BulletinLine:
    """A bulletin with its targets and schedule in words and its latest run's deliveries
    per group (before its first run: the groups it will reach, waiting)."""
    reached = await reached_groups(session, bulletin.targets or {})
    runs = select(BulletinRun).where(BulletinRun.bulletin_id == bulletin.id)
    latest = await session.scalar(runs.order_by(BulletinRun.due_at.desc()).limit(1))
    # Only the latest fanned-out run's deliveries are read: a list of many bulletins with a
    # year of weekly runs each stays one small query per bulletin.
    sent = await session.scalar(
        runs.where(BulletinRun.status == "sent").order_by(BulletinRun.due_at.desc()).limit(1)
    )
    if sent is not None:
        views = await list_deliveries(session, bulletin_id=bulletin.id, now=now, run_ids=[sent.id])
        groups = group_lines(views, names)
    else:
        groups = [GroupLine(name=g.name, status="waiting") for g in reached]
    manage = may_schedule(who) and bulletin.status != "cancelled"
    manage = manage and await within_reach(session, bulletin, within(who))
    return BulletinLine(
        bulletin=bulletin,
        targets=targets_words(bulletin, ui, names),
        reach=len(reached),
        schedule=describe(bulletin, ui),
        author=authors.get(bulletin.created_by, bulletin.created_by),
        manage=manage,
        last_run=latest,
        groups=groups,
    )


def status_filter(status: str) -> tuple[str, ...]:
    """The bulletin statuses a list filter shows."""
    if status == "current":
        return ("active", "paused")
    if status == "all":
        return ("active", "paused", "finished", "cancelled")
    return (status,)


@dataclass(frozen=True)
class RunLine:
    """A run of a bulletin with its delivery per group."""

    run: RunView
    groups: list[GroupLine]


async def run_lines(
    session: AsyncSession, bulletin: Bulletin, *, names: dict[str, str], now: datetime
) -> list[RunLine]:
    """The latest runs, newest first, each with its deliveries by group name."""
    runs = (await list_runs(session, bulletin_id=bulletin.id, now=now))[:RUNS_SHOWN]
    by_run: dict[int, list[DeliveryView]] = {}
    for view in await list_deliveries(session, bulletin_id=bulletin.id, now=now):
        by_run.setdefault(view.run_id, []).append(view)
    return [RunLine(r, group_lines(by_run.get(r.id, []), names)) for r in runs]
