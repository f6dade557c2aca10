"""What the overview (總覽) shows, read in one go within a viewer's scope: open items by
priority and age, overdue items, today's emergencies, bulletins due within a day, and how
each outgoing channel is doing. Read-only; no personal data."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import as_utc
from bot.runtime import Runtime
from bot.services.ticket_service import Scope
from broadcasts.bulletins import reached_groups
from models.bulletins import Bulletin
from models.directory import Group, Officer, Station
from models.outbox import OutboxMessage
from models.tickets import OPEN_STATUSES, Ticket

AGE_BUCKETS = ("lt1h", "1_4h", "4_24h", "gt1d")
OVERDUE_SHOWN = 20


@dataclass(frozen=True)
class TicketLine:
    """A ticket as a line of the overview, with names instead of ids."""

    ticket: Ticket
    station: str
    officer: str
    due: datetime | None = None  # the deadline that passed (overdue items)
    phase: str = ""  # ack | answer


@dataclass(frozen=True)
class BulletinLine:
    bulletin: Bulletin
    targets: list[str]
    tags: list[str]
    everyone: bool


@dataclass(frozen=True)
class ChannelLine:
    channel: str
    down: bool
    backlog: int
    oldest: datetime | None
    failed_24h: int


@dataclass
class Overview:
    # priority → age bucket → count
    open_items: dict[int, dict[str, int]] = field(default_factory=dict)
    overdue: list[TicketLine] = field(default_factory=list)
    overdue_total: int = 0
    emergencies: list[TicketLine] = field(default_factory=list)
    bulletins: list[BulletinLine] = field(default_factory=list)
    channels: list[ChannelLine] = field(default_factory=list)

    def open_total(self, priority: int | None = None) -> int:
        rows = [self.open_items[priority]] if priority else list(self.open_items.values())
        return sum(sum(r.values()) for r in rows)

    def bucket_total(self, bucket: str) -> int:
        return sum(r.get(bucket, 0) for r in self.open_items.values())


async def names(session: AsyncSession) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """Station, officer and group names by id (the directory is small)."""
    stations = dict((await session.execute(select(Station.id, Station.name))).all())
    officers = dict((await session.execute(select(Officer.id, Officer.name))).all())
    groups = dict((await session.execute(select(Group.id, Group.name))).all())
    return stations, officers, groups


def overdue_clause(now: datetime) -> Any:
    """Open tickets past a deadline: not acknowledged in time, or not answered in time."""
    return and_(
        Ticket.status.in_(OPEN_STATUSES),
        or_(
            and_(Ticket.acknowledged_at.is_(None), Ticket.ack_due_at < now),
            and_(Ticket.answered_at.is_(None), Ticket.answer_due_at < now),
        ),
    )


async def read_overview(
    session: AsyncSession, runtime: Runtime, *, scope: Scope, now: datetime
) -> Overview:
    """Everything the overview shows for ``scope`` at ``now``."""
    view = Overview()
    stations, officers, _ = await names(session)

    def line(t: Ticket, **extra: Any) -> TicketLine:
        return TicketLine(
            t,
            stations.get(t.station_id or "", ""),
            officers.get(t.assigned_officer_id or "", ""),
            **extra,
        )

    in_scope = scope.clause()
    bucket = case(
        (Ticket.created_at >= now - timedelta(hours=1), "lt1h"),
        (Ticket.created_at >= now - timedelta(hours=4), "1_4h"),
        (Ticket.created_at >= now - timedelta(hours=24), "4_24h"),
        else_="gt1d",
    )
    rows = await session.execute(
        select(Ticket.priority, bucket, func.count())
        .where(in_scope, Ticket.status.in_(OPEN_STATUSES))
        .group_by(Ticket.priority, bucket)
    )
    view.open_items = {p: dict.fromkeys(AGE_BUCKETS, 0) for p in (1, 2, 3)}
    for priority, age, count in rows.all():
        view.open_items.setdefault(priority, dict.fromkeys(AGE_BUCKETS, 0))[age] = count

    overdue = and_(in_scope, overdue_clause(now))
    view.overdue_total = await session.scalar(select(func.count()).where(overdue)) or 0
    due = case((Ticket.acknowledged_at.is_(None), Ticket.ack_due_at), else_=Ticket.answer_due_at)
    for t in await session.scalars(
        select(Ticket).where(overdue).order_by(Ticket.priority, due).limit(OVERDUE_SHOWN)
    ):
        phase = "ack" if t.acknowledged_at is None else "answer"
        view.overdue.append(
            line(t, due=t.ack_due_at if phase == "ack" else t.answer_due_at, phase=phase)
        )

    midnight = now.astimezone(runtime.settings.tz).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    view.emergencies = [
        line(t)
        for t in await session.scalars(
            select(Ticket)
            .where(in_scope, Ticket.emergency.is_(True), Ticket.created_at >= midnight)
            .order_by(Ticket.created_at.desc())
        )
    ]
    view.bulletins = await _bulletins(session, scope=scope, now=now)
    view.channels = await _channels(session, runtime, now=now)
    return view


async def _bulletins(session: AsyncSession, *, scope: Scope, now: datetime) -> list[BulletinLine]:
    """Active bulletins whose next run falls within 24 hours and that reach a group of the
    scope, with their targets by name."""
    due = list(
        await session.scalars(
            select(Bulletin)
            .where(
                Bulletin.status == "active",
                Bulletin.next_run_at.is_not(None),
                Bulletin.next_run_at > now,
                Bulletin.next_run_at <= now + timedelta(hours=24),
            )
            .order_by(Bulletin.next_run_at)
        )
    )
    if not due:
        return []
    groups = list(await session.scalars(select(Group)))
    station_names = dict((await session.execute(select(Station.id, Station.name))).all())
    lines = []
    for bulletin in due:
        targets = bulletin.targets or {}
        reached = await reached_groups(session, targets)
        if not any(scope.covers_station(g.station_id) for g in reached):
            continue
        by_id = {g.id: g.name for g in groups}
        named = [by_id.get(g, g) for g in targets.get("groups", [])] + [
            station_names.get(s, s) for s in targets.get("stations", [])
        ]
        lines.append(
            BulletinLine(bulletin, named, list(targets.get("tags", [])), bool(targets.get("all")))
        )
    return lines


async def _channels(session: AsyncSession, runtime: Runtime, *, now: datetime) -> list[ChannelLine]:
    """Each channel that is configured or has traffic: up or down (the delivery worker's
    view, runtime.health), messages waiting, the oldest one's age, failures in 24 hours."""
    waiting = {
        channel: (count, oldest)
        for channel, count, oldest in (
            await session.execute(
                select(OutboxMessage.channel, func.count(), func.min(OutboxMessage.created_at))
                .where(OutboxMessage.status.in_(("pending", "sending")))
                .group_by(OutboxMessage.channel)
            )
        )
    }
    failed = dict(
        (
            await session.execute(
                select(OutboxMessage.channel, func.count())
                .where(
                    OutboxMessage.status == "failed",
                    OutboxMessage.created_at >= now - timedelta(hours=24),
                )
                .group_by(OutboxMessage.channel)
            )
        ).all()
    )
    settings = runtime.settings
    shown = [
        c
        for c, configured in (
            ("bridge", "bridge" in runtime.senders and settings.bridge.configured),
            ("wechat", "wechat" in runtime.senders),
            ("wecom", settings.wecom.configured),
            ("wecom_robot", False),
            ("sms", True),
        )
        if configured or c in waiting or c in failed
    ]
    return [
        ChannelLine(
            channel=c,
            down=runtime.health.is_down(c),
            backlog=waiting.get(c, (0, None))[0],
            oldest=_aware(waiting.get(c, (0, None))[1]),
            failed_24h=failed.get(c, 0),
        )
        for c in shown
    ]


def _aware(value: datetime | None) -> datetime | None:
    """Drivers may hand an aggregate back without its zone (SQLite); stored times are UTC."""
    return None if value is None else as_utc(value)
