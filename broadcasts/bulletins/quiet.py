"""Quiet hours and the daily cap: when a delivery may reach a group."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.bulletins import BulletinDelivery
from models.outbox import CANCELLED, OutboxMessage


@dataclass(frozen=True)
class QuietHours:
    """A daily window in local time; ``start > end`` crosses midnight (21:30-07:30)."""

    start: time
    end: time

    @classmethod
    def parse(cls, spec: str | None) -> QuietHours | None:
        if not spec:
            return None
        a, b = spec.split("-")
        window = cls(time.fromisoformat(a), time.fromisoformat(b))
        return None if window.start == window.end else window

    def contains(self, t: time) -> bool:
        if self.start < self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end

    def end_after(self, local: datetime) -> datetime:
        """When the quiet period that ``local`` falls in ends (local, aware)."""
        candidate = datetime.combine(local.date(), self.end, tzinfo=local.tzinfo)
        return candidate if candidate > local else candidate + timedelta(days=1)


@dataclass(frozen=True)
class Slot:
    """When a bulletin may reach a group, the local day it counts against, and why it waits."""

    not_before: datetime
    slot_date: date
    reason: str | None


def plan_slot(
    at: datetime,
    *,
    tz: ZoneInfo,
    quiet: QuietHours | None,
    cap: int,
    taken: Callable[[date], int],
) -> Slot:
    """The earliest time at or after ``at`` outside quiet hours on a local day under the cap.

    ``cap`` 0 means no cap. ``taken(day)`` is how many bulletins the group already has that day.
    """
    local = at.astimezone(tz)
    reason: str | None = None
    if quiet is not None and quiet.contains(local.time()):
        local = quiet.end_after(local)
        reason = f"quiet_hours: waits until {local:%Y-%m-%d %H:%M} local time"
    day = local.date()
    if cap > 0 and taken(day) >= cap:
        first_full = day
        while taken(day) >= cap:
            day += timedelta(days=1)
        local = datetime.combine(day, time(0), tzinfo=tz)
        if quiet is not None and quiet.contains(local.time()):
            local = quiet.end_after(local)
        reason = (
            f"daily_cap: {cap} bulletins already on {first_full.isoformat()}, "
            f"waits until {local:%Y-%m-%d %H:%M} local time"
        )
    return Slot(max(local.astimezone(UTC), at), day, reason)


async def cap_counts(
    session: AsyncSession, *, since: date, groups: Sequence[str] | None = None
) -> Counter[tuple[str, date]]:
    """Bulletins per (group, local day) from ``since`` on, sent or still on their way: not
    cancelled ones, nor ones that failed for good (the group never read them); only for
    ``groups`` when given (a fan-out counts one page of groups at a time)."""
    query = (
        select(BulletinDelivery.group_id, BulletinDelivery.slot_date, func.count())
        .outerjoin(OutboxMessage, OutboxMessage.idempotency_key == BulletinDelivery.idempotency_key)
        .where(BulletinDelivery.slot_date >= since, BulletinDelivery.status != CANCELLED)
        .where(or_(OutboxMessage.status.is_(None), OutboxMessage.status != "failed"))
        .group_by(BulletinDelivery.group_id, BulletinDelivery.slot_date)
    )
    if groups is not None:
        query = query.where(BulletinDelivery.group_id.in_(groups))
    rows = await session.execute(query)
    return Counter({(g, d): int(n) for g, d, n in rows.all()})


def cap_taken(counts: Counter[tuple[str, date]], group_id: str, day: date) -> int:
    """Bulletins already planned in ``group_id`` on ``day`` (what :func:`plan_slot` caps)."""
    return counts[(group_id, day)]
