"""Visit plans: putting a household on a plan, taking it off, the plans an officer sees."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.pii import PiiCipher
from bot.services.visits.households import audit
from bot.services.visits.records import next_due
from bot.services.visits.roster import VisitError, plan_stations, t2s
from bot.settings import VisitSettings
from models.base import rowcount
from models.directory import Group, Officer
from models.people import Household
from models.visits import Visit, VisitChoice, VisitPlan

# --- plans ------------------------------------------------------------------------------------


def reason_label(settings: VisitSettings, reason: str, script: str) -> str:
    """A plan reason in words, in ``script``; the key itself for a reason no longer listed."""
    known = settings.plan_reasons.get(reason)
    if known is None:
        return reason
    return known.hant if script == "hant" else known.hans


def find_reason(settings: VisitSettings, word: str) -> str | None:
    """The reason key an officer's word names: a key, a label in either script, or the start of
    exactly one label (``獨居`` → ``living_alone``)."""
    found = reasons_named(settings, word)
    return found[0] if len(found) == 1 else None


def reasons_named(settings: VisitSettings, word: str) -> list[str]:
    """Every reason key ``word`` could name: the one it names exactly, else those whose label
    it begins (``留守`` → both 留守兒童 and 留守老人: the officer is asked which)."""
    word = unicodedata.normalize("NFKC", word).strip()
    if not word:
        return []
    plain = t2s().convert(word).casefold()
    for key, reason in settings.plan_reasons.items():
        if plain in (key, t2s().convert(reason.hant).casefold(), reason.hans.casefold()):
            return [key]
    return [
        key
        for key, reason in settings.plan_reasons.items()
        if len(plain) >= 2 and t2s().convert(reason.hans).casefold().startswith(plain)
    ]


async def put_on_plan(
    session: AsyncSession,
    *,
    settings: VisitSettings,
    household_id: int,
    reason: str,
    every_days: int | None,
    officer_id: str | None,
    by: str,
    now: datetime,
) -> VisitPlan:
    """Put a household on a visit plan, or change its plan. The plan is due ``every_days``
    (default: the reason's) after the latest visit, or at once if there was none; its officer
    is ``officer_id``, else the household's group's own officer."""
    household = await session.get(Household, household_id)
    if household is None:
        raise VisitError("visit_household_gone")
    if reason not in settings.plan_reasons:
        raise VisitError("plan_bad_reason", reason=reason)
    every = every_days or settings.plan_reasons[reason].every_days
    if not 1 <= every <= 366:
        raise VisitError("plan_bad_every", every=every)
    if officer_id is None and household.group_id:
        officer_id = await session.scalar(
            select(Group.officer_id).where(Group.id == household.group_id)
        )
    plan = await session.scalar(select(VisitPlan).where(VisitPlan.household_id == household_id))
    due = await next_due(session, household_id, every, fallback=now)
    if plan is None:
        plan = VisitPlan(
            household_id=household_id,
            reason=reason,
            every_days=every,
            officer_id=officer_id,
            next_due_at=due,
            reminded=0,
            created_at=now,
            created_by=by,
            updated_at=now,
        )
        session.add(plan)
        action = "plan_added"
    else:
        if due != plan.next_due_at:
            plan.reminded = 0
        plan.reason, plan.every_days, plan.officer_id = reason, every, officer_id
        plan.next_due_at, plan.updated_at = due, now
        action = "plan_changed"
    await session.flush()
    # The reason stays out of the audit: who is on a plan and why is what it protects.
    audit(
        session,
        household_id=household_id,
        action=action,
        actor=by,
        now=now,
        detail=f"every {every} d, officer {officer_id or '-'}",
    )
    return plan


async def take_off_plan(
    session: AsyncSession, *, household_id: int, by: str, now: datetime
) -> bool:
    """End a household's visit plan; False when it had none."""
    result = await session.execute(delete(VisitPlan).where(VisitPlan.household_id == household_id))
    if not rowcount(result):
        return False
    audit(session, household_id=household_id, action="plan_ended", actor=by, now=now)
    return True


@dataclass(frozen=True)
class PlanLine:
    """A household on a plan, as its officers and leaders see it (name in clear: mask it for
    display), with when it was last visited and when it is due."""

    plan_id: int
    household_id: int
    name: str
    address: str | None
    group_id: str | None
    reason: str
    every_days: int
    officer_id: str | None
    next_due_at: datetime
    last_visit_at: datetime | None
    reminded: int


async def plans_in_view(
    session: AsyncSession,
    cipher: PiiCipher,
    *,
    viewer: Officer,
    now: datetime,
    officer_id: str | None = None,
    not_officer: str | None = None,
    due_by: datetime | None = None,
    purpose: str,
) -> list[PlanLine]:
    """The plans ``viewer`` may see (see :func:`plan_stations`), most overdue first; only
    ``officer_id``'s, or all but ``not_officer``'s, or only those due by ``due_by``, when
    given. Every household returned is audited (``plan_shown``, with ``purpose``)."""
    scope = await plan_stations(session, viewer=viewer)
    latest = (
        select(func.max(Visit.at))
        .where(Visit.household_id == Household.id)
        .correlate(Household)
        .scalar_subquery()
    )
    query = (
        select(VisitPlan, Household, latest)
        .join(Household, Household.id == VisitPlan.household_id)
        .outerjoin(Group, Group.id == Household.group_id)
        .where(scope.groups_clause())
        .order_by(VisitPlan.next_due_at, VisitPlan.id)
    )
    if officer_id is not None:
        query = query.where(VisitPlan.officer_id == officer_id)
    if not_officer is not None:
        query = query.where(
            or_(VisitPlan.officer_id.is_(None), VisitPlan.officer_id != not_officer)
        )
    if due_by is not None:
        query = query.where(VisitPlan.next_due_at <= due_by)
    rows = (await session.execute(query)).all()
    lines = []
    for plan, household, last in rows:
        lines.append(
            PlanLine(
                plan_id=plan.id,
                household_id=household.id,
                name=cipher.decrypt(household.name_enc) or "",
                address=cipher.decrypt(household.address_enc),
                group_id=household.group_id,
                reason=plan.reason,
                every_days=plan.every_days,
                officer_id=plan.officer_id,
                next_due_at=plan.next_due_at,
                last_visit_at=last,
                reminded=plan.reminded,
            )
        )
        audit(
            session,
            household_id=household.id,
            action="plan_shown",
            actor=f"officer:{viewer.id}",
            now=now,
            detail=purpose,
        )
    return lines


async def expire_choices(session: AsyncSession, *, now: datetime) -> int:
    """Delete 走訪 choices nobody answered in time (they hold what the officer wrote)."""
    result = await session.execute(delete(VisitChoice).where(VisitChoice.expires_at <= now))
    return rowcount(result)
