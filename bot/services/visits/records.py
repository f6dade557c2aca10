"""Recording visits and reading them back."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.pii import PiiCipher
from bot.services.visits.roster import VisitError
from models.directory import Group, Officer
from models.people import Household
from models.visits import Visit, VisitPlan

# --- visits -----------------------------------------------------------------------------------


# A visit entered afterwards may be up to a year old: later than that it is a typing mistake
# (1900-01-01), which no statistics range would ever count.
VISIT_BACKDATE_LIMIT = timedelta(days=366)
# The same officer's same words about the same household within this time of a visit already
# recorded are that visit typed twice (a resend when the chat seemed slow), not a second one.
REPEAT_WITHIN = timedelta(minutes=10)


async def record_visit(
    session: AsyncSession,
    cipher: PiiCipher,
    *,
    household_id: int,
    officer: Officer,
    note: str,
    at: datetime,
    now: datetime,
    source: str = "chat",
) -> Visit:
    """Record a visit (``at`` may be earlier than ``now``: entered afterwards, up to
    :data:`VISIT_BACKDATE_LIMIT`, never later).
    The household's plan, if any, falls due again ``every_days`` after its latest visit."""
    household = await session.get(Household, household_id)
    if household is None:
        raise VisitError("visit_household_gone")
    if at > now + timedelta(minutes=5):
        raise VisitError("visit_in_future")
    if at < now - VISIT_BACKDATE_LIMIT:
        raise VisitError("visit_too_old")
    if await _same_visit(session, cipher, household.id, officer.id, note, at):
        raise VisitError("visit_repeated")
    group = await session.get(Group, household.group_id) if household.group_id else None
    visit = Visit(
        household_id=household.id,
        officer_id=officer.id,
        group_id=household.group_id,
        station_id=group.station_id if group else officer.station_id,
        at=at,
        note_enc=cipher.encrypt(note.strip() or None),
        source=source,
        created_at=now,
    )
    session.add(visit)
    await session.flush()
    plan = await session.scalar(select(VisitPlan).where(VisitPlan.household_id == household.id))
    if plan is not None:
        due = await next_due(session, household.id, plan.every_days, fallback=plan.next_due_at)
        if due > plan.next_due_at:
            plan.next_due_at, plan.reminded, plan.updated_at = due, 0, now
    return visit


async def _same_visit(
    session: AsyncSession, cipher: PiiCipher, household_id: int, officer_id: str, note: str,
    at: datetime,
) -> bool:  # fmt: skip
    near = await session.scalars(
        select(Visit.note_enc).where(
            Visit.household_id == household_id,
            Visit.officer_id == officer_id,
            Visit.at > at - REPEAT_WITHIN,
            Visit.at < at + REPEAT_WITHIN,
        )
    )
    said = note.strip() or None
    return any(cipher.decrypt(enc) == said for enc in near.all())


async def last_visit_at(session: AsyncSession, household_id: int) -> datetime | None:
    """When the household was last visited."""
    return await session.scalar(
        select(func.max(Visit.at)).where(Visit.household_id == household_id)
    )


async def next_due(
    session: AsyncSession, household_id: int, every_days: int, *, fallback: datetime
) -> datetime:
    latest = await last_visit_at(session, household_id)
    return latest + timedelta(days=every_days) if latest is not None else fallback


@dataclass(frozen=True)
class VisitRow:
    """A visit as the API lists it: no note, the household by id."""

    id: int
    officer: str
    household: int | None
    group_id: str | None
    at: datetime


async def list_visits(
    session: AsyncSession,
    *,
    stations: Collection[str] | None,
    start: datetime | None,
    end: datetime | None,
    limit: int,
    offset: int,
) -> list[VisitRow]:
    """Visits newest first, at stations in ``stations`` (None: all), from ``start`` (inclusive)
    to ``end`` (exclusive)."""
    query = select(Visit.id, Visit.officer_id, Visit.household_id, Visit.group_id, Visit.at)
    if stations is not None:
        query = query.where(Visit.station_id.in_(sorted(stations)))
    if start is not None:
        query = query.where(Visit.at >= start)
    if end is not None:
        query = query.where(Visit.at < end)
    rows = await session.execute(
        query.order_by(Visit.at.desc(), Visit.id.desc()).limit(limit).offset(offset)
    )
    return [VisitRow(*row) for row in rows]
