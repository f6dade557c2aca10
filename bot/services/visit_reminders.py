"""Overdue visit plans climb, from the deadline sweep: ``visits.remind_after_days`` after a
plan fell due its officer is reminded, ``visits.leader_after_days`` after it the station's
leader. Each step is claimed with a conditional update on ``reminded``, so two sweeps, or a
sweep after a restart, take it once. One message per person per sweep lists all their
households; the outbox keeps it without the names and addresses once it is sent.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.pii import mask_name
from bot.runtime import Runtime
from bot.services.dispute_cases import local_date
from bot.services.routing import Router
from bot.services.tickets import Out
from bot.services.visits import audit, expire_choices, reason_label
from bot.texts import Script, detect_script
from models.base import rowcount
from models.directory import Group, Officer
from models.people import Household
from models.visits import VisitPlan


@dataclass(frozen=True)
class _Claimed:
    plan: VisitPlan
    household: Household
    group: Group | None


async def _claim(session: AsyncSession, *, level: int, before: datetime) -> list[_Claimed]:
    """Take the plans at ``level - 1`` that fell due before ``before`` up to ``level``."""
    candidates = (
        await session.execute(
            select(VisitPlan.id, VisitPlan.next_due_at)
            .where(VisitPlan.reminded == level - 1, VisitPlan.next_due_at <= before)
            .order_by(VisitPlan.next_due_at, VisitPlan.id)
            .limit(1000)
        )
    ).all()
    claimed = []
    for plan_id, due in candidates:
        result = await session.execute(
            update(VisitPlan)
            .where(
                VisitPlan.id == plan_id,
                VisitPlan.reminded == level - 1,
                VisitPlan.next_due_at == due,
            )
            .values(reminded=level)
        )
        if rowcount(result) != 1:
            continue  # another sweep took it, or a visit moved it on meanwhile
        plan = await session.get(VisitPlan, plan_id)
        assert plan is not None
        await session.refresh(plan)
        household = await session.get(Household, plan.household_id)
        assert household is not None
        group = await session.get(Group, household.group_id) if household.group_id else None
        claimed.append(_Claimed(plan, household, group))
    return claimed


def _script(items: list[_Claimed]) -> Script:
    """Officers read the script their groups are named in."""
    return detect_script(next((c.group.name for c in items if c.group), ""))


def _line(runtime: Runtime, item: _Claimed, script: Script, officer: str | None) -> str:
    cipher = runtime.cipher
    return runtime.texts.render(
        "plan_overdue_line",
        script,
        name=mask_name(cipher.decrypt(item.household.name_enc) or ""),
        address=cipher.decrypt(item.household.address_enc) or "-",
        reason=reason_label(runtime.settings.visits, item.plan.reason, script),
        due=local_date(runtime, item.plan.next_due_at),
        officer=f" · {officer}" if officer else "",
    )


async def _leader_for(router: Router, item: _Claimed, officer: Officer | None) -> Officer | None:
    """The leader of the household's station (the county centre's for one in no group); when
    that is the plan's own officer, the next one up."""
    station = item.group.station_id if item.group else None
    if station is None:
        county = await router.county_station()
        station = county.id if county else None
    leader = await router.leader(station) if station else None
    if leader is not None and officer is not None and leader.id == officer.id:
        chain = await router.escalation_chain(officer)
        leader = chain[0] if chain else None
    return leader


async def remind_overdue_plans(runtime: Runtime, now: datetime) -> int:
    """Run both steps once at ``now``; returns the plans that moved a step. Also drops 走訪
    choices nobody answered in time."""
    settings = runtime.settings.visits
    moved = 0
    async with runtime.sessions.begin() as session:
        await expire_choices(session, now=now)
        out = Out(session, runtime, now)
        officers = await _claim(
            session, level=1, before=now - timedelta(days=settings.remind_after_days)
        )
        by_officer: dict[str | None, list[_Claimed]] = defaultdict(list)
        for item in officers:
            by_officer[item.plan.officer_id].append(item)
        for officer_id, items in by_officer.items():
            officer = await session.get(Officer, officer_id) if officer_id else None
            script = _script(items)
            lines = [_line(runtime, item, script, None) for item in items]
            _send(runtime, out, officer, "plan_overdue_officer", script, lines)
            for item in items:
                audit(
                    session,
                    household_id=item.household.id,
                    action="plan_shown",
                    actor=f"officer:{officer.id}" if officer else "nobody",
                    now=now,
                    detail="overdue reminder" + ("" if officer else ": plan has no officer"),
                )
        moved += len(officers)

        leaders = await _claim(
            session, level=2, before=now - timedelta(days=settings.leader_after_days)
        )
        router = Router(session, runtime.settings.timezone)
        by_leader: dict[str | None, list[tuple[_Claimed, Officer | None]]] = defaultdict(list)
        for item in leaders:
            officer = await session.get(Officer, item.plan.officer_id or "")
            leader = await _leader_for(router, item, officer)
            by_leader[leader.id if leader else None].append((item, officer))
        for leader_id, pairs in by_leader.items():
            leader = await session.get(Officer, leader_id) if leader_id else None
            items = [item for item, _ in pairs]
            script = _script(items)
            lines = [
                _line(runtime, item, script, officer.name if officer else "-")
                for item, officer in pairs
            ]
            _send(runtime, out, leader, "plan_overdue_leader", script, lines)
            for item in items:
                audit(
                    session,
                    household_id=item.household.id,
                    action="plan_shown",
                    actor=f"officer:{leader.id}" if leader else "nobody",
                    now=now,
                    detail="overdue, to the station leader"
                    + ("" if leader else ": no leader to tell"),
                )
        moved += len(leaders)
    return moved


def _send(
    runtime: Runtime,
    out: Out,
    officer: Officer | None,
    key: str,
    script: Script,
    lines: list[str],
) -> None:
    if officer is None:
        return
    days = (
        runtime.settings.visits.remind_after_days
        if key == "plan_overdue_officer"
        else runtime.settings.visits.leader_after_days
    )
    head = out.text(key, script, count=len(lines), days=days)
    out.to_officer(
        officer,
        "\n".join([head, *lines]),
        # Once sent, the outbox keeps how many, not who: the list is personal data.
        kept_text=out.text("plan_overdue_kept", script, count=len(lines)),
    )
