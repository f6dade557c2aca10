"""Deadlines and escalation: "nothing falls through".

A ticket's ``next_check_at`` and ``escalation_level`` are the whole state. The ladder of the
current phase (acknowledge, then answer) is: at the deadline a reminder to the assignee (level 1),
one interval later the station leader (level 2), one more the parent station (level 3). The
sweep claims a step with a conditional update, so running it twice, or after a restart, fires
each step once.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.runtime import Runtime
from bot.services.dispute_cases import sweep as dispute_sweep
from bot.services.dispute_cases import todo_lines as dispute_todo_lines
from bot.services.rate_limits import forget_expired
from bot.services.routing import Router
from bot.services.sms_fallback import page_by_sms
from bot.services.tickets import (
    Out,
    add_event,
    age_text,
    category_text,
    clip,
    holder_of,
    open_tickets_of,
)
from bot.services.visit_reminders import remind_overdue_plans
from bot.settings import DeadlineSettings
from models.base import rowcount
from models.directory import Officer
from models.tickets import OPEN_STATUSES, JobRun, Ticket

log = logging.getLogger("lianxin.deadlines")
MAX_LEVEL = 3


def _phase(ticket: Ticket) -> str | None:
    if ticket.status in ("closed", "answered"):
        return None
    if ticket.acknowledged_at is None:
        return "ack"
    # A dispute taken up is answered by mediation, on its level's deadlines (1 week, 15 days,
    # 2 months: bot/services/dispute_cases.py climbs them): a 24-hour answer ladder took
    # every case under mediation to the county within two days.
    return None if ticket.category == "dispute" else "answer"


def next_check(ticket: Ticket, settings: DeadlineSettings) -> datetime | None:
    """When the sweep must next look at ``ticket`` (None: nothing pending)."""
    phase = _phase(ticket)
    if phase is None or ticket.escalation_level >= MAX_LEVEL:
        return None
    base = ticket.ack_due_at if phase == "ack" else ticket.answer_due_at
    step = timedelta(seconds=settings.ack_seconds(ticket.priority))
    return base + step * ticket.escalation_level


def restart_ladder(runtime: Runtime, ticket: Ticket, now: datetime) -> None:
    """A fresh deadline for the current phase (after a transfer or a new priority)."""
    settings = runtime.settings.deadlines
    ticket.escalation_level = 0
    if ticket.acknowledged_at is None:
        ticket.ack_due_at = now + timedelta(seconds=settings.ack_seconds(ticket.priority))
    elif ticket.answered_at is None:
        ticket.answer_due_at = max(
            ticket.answer_due_at, now + timedelta(seconds=settings.ack_seconds(ticket.priority))
        )
    ticket.next_check_at = next_check(ticket, settings)


async def sweep(runtime: Runtime) -> int:
    """Fire every due deadline step, hand over, send the daily digest. Returns steps fired."""
    now = runtime.clock.now()
    fired = 0
    async with runtime.sessions() as session:
        due = (
            await session.execute(
                select(Ticket.id, Ticket.next_check_at, Ticket.escalation_level)
                .where(Ticket.next_check_at.is_not(None), Ticket.next_check_at <= now)
                .order_by(Ticket.next_check_at)
                .limit(500)
            )
        ).all()
    for ticket_id, check_at, level in due:
        async with runtime.sessions.begin() as session:
            claimed = await session.execute(
                update(Ticket)
                .where(
                    Ticket.id == ticket_id,
                    Ticket.next_check_at == check_at,
                    Ticket.escalation_level == level,
                )
                .values(escalation_level=level + 1)
            )
            if rowcount(claimed) != 1:
                continue  # another sweep took this step
            ticket = await session.get(Ticket, ticket_id)
            assert ticket is not None
            await session.refresh(ticket)
            if _phase(ticket) is None:
                # Nothing left to wait for since the check was set (a ticket filed as a
                # dispute after it was taken up): the ladder stands down without a step.
                ticket.escalation_level, ticket.next_check_at = level, None
                continue
            await _step(session, runtime, ticket, level + 1, now)
            ticket.next_check_at = next_check(ticket, runtime.settings.deadlines)
            fired += 1
    fired += await dispute_sweep(runtime, now)
    fired += await remind_overdue_plans(runtime, now)  # visit plans a week overdue, then two
    await page_by_sms(runtime, now)
    async with runtime.sessions.begin() as session:
        await forget_expired(session, now)  # rate-limit windows that have passed
    await handover(runtime, now)
    await daily_digest(runtime, now)
    return fired


async def _step(
    session: AsyncSession, runtime: Runtime, ticket: Ticket, level: int, now: datetime
) -> None:
    out = Out(session, runtime, now)
    script = ticket.script
    what = runtime.texts.render("what_ack" if _phase(ticket) == "ack" else "what_answer", script)
    assignee = await holder_of(session, ticket)
    category = category_text(runtime, ticket)
    if level == 1:
        if assignee is not None:
            out.to_officer(
                assignee,
                out.text(
                    "deadline_reminder",
                    script,
                    code=ticket.code,
                    category=category,
                    priority=ticket.priority,
                    what=what,
                ),
            )
        add_event(
            session,
            runtime,
            ticket,
            "reminded",
            now=now,
            detail=f"{what} overdue, reminder to {ticket.assigned_officer_id}",
        )
        return
    router = Router(session, runtime.settings.timezone)
    chain = await router.escalation_chain(assignee) if assignee else []
    if not chain:
        # Nobody above the assignee: the county's leader or duty desk, if that is someone else.
        county = await router.county_station()
        desk = await router.leader(county.id) if county else None
        if desk is None or (assignee is not None and desk.id == assignee.id):
            fallback = await router.assign(station_id=None, group=None, at=now)
            desk = fallback.officer if fallback else None
        if desk is not None and (assignee is None or desk.id != assignee.id):
            chain = [desk]
    target = chain[level - 2] if len(chain) > level - 2 else None
    ticket.status = "escalated" if ticket.acknowledged_at is None else ticket.status
    if target is None:
        # Everyone up the chain has been told already: telling them the same again is noise.
        # The step stays on record and in the log, never silent.
        log.warning("ticket %s: nobody left above to escalate to at level %d", ticket.code, level)
        detail = f"level {level}: nobody left above ({what} overdue)"
    else:
        out.to_officer(
            target,
            out.text(
                "deadline_escalated",
                script,
                code=ticket.code,
                category=category,
                priority=ticket.priority,
                officer=assignee.name if assignee else "-",
                what=what,
                text=clip(runtime.cipher.decrypt(ticket.text_enc) or ""),
            ),
            priority=1 if ticket.priority == 1 else 4,
        )
        detail = f"level {level} to {target.id} ({what} overdue)"
    add_event(session, runtime, ticket, "escalated", now=now, detail=detail)


async def handover(runtime: Runtime, now: datetime) -> int:
    """Unacknowledged roster-assigned tickets follow the roster when a shift ends."""
    moved = 0
    async with runtime.sessions.begin() as session:
        tickets = (
            await session.scalars(
                select(Ticket).where(
                    Ticket.status == "new",
                    Ticket.assigned_by == "roster",
                    Ticket.station_id.is_not(None),
                )
            )
        ).all()
        router = Router(session, runtime.settings.timezone)
        duty_cache: dict[str, list[Officer]] = {}
        for ticket in tickets:
            station_id = ticket.station_id
            assert station_id is not None
            if station_id not in duty_cache:
                duty_cache[station_id] = await router.on_duty(station_id, now)
            duty = duty_cache[station_id]
            if not duty or any(o.id == ticket.assigned_officer_id for o in duty):
                continue
            previous = await holder_of(session, ticket)
            successor = duty[0]
            ticket.assigned_officer_id = successor.id
            # The new officer gets a deadline of their own, as after a transfer: the one that
            # ran out on the last shift is not theirs to be escalated for.
            restart_ladder(runtime, ticket, now)
            out = Out(session, runtime, now)
            out.to_officer(
                successor,
                out.text(
                    "handover_to_you",
                    ticket.script,
                    code=ticket.code,
                    category=category_text(runtime, ticket),
                    priority=ticket.priority,
                    from_officer=previous.name if previous else "-",
                    text=clip(runtime.cipher.decrypt(ticket.text_enc) or ""),
                ),
                priority=1 if ticket.priority == 1 else 4,
            )
            add_event(
                session,
                runtime,
                ticket,
                "handover",
                now=now,
                detail=f"{previous.id if previous else '-'} -> {successor.id} at shift change",
            )
            moved += 1
    return moved


async def _claim_run(session: AsyncSession, job: str, key: str, now: datetime) -> bool:
    values = {"job": job, "run_key": key, "ran_at": now}
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    result = await session.execute(
        insert(JobRun).values(**values).on_conflict_do_nothing().returning(JobRun.id)
    )
    return result.scalar_one_or_none() is not None


async def daily_digest(runtime: Runtime, now: datetime) -> int:
    """At ``deadlines.digest_at`` local time, once a day: each officer's overdue items."""
    settings = runtime.settings.deadlines
    local = now.astimezone(ZoneInfo(runtime.settings.timezone))
    hour, minute = (int(p) for p in settings.digest_at.split(":"))
    if (local.hour, local.minute) < (hour, minute):
        return 0
    sent = 0
    async with runtime.sessions.begin() as session:
        if not await _claim_run(session, "digest", local.date().isoformat(), now):
            return 0
        officers = (await session.scalars(select(Officer).order_by(Officer.id))).all()
        out = Out(session, runtime, now)
        for officer in officers:
            # Overdue as the ladder reads it: a dispute taken up runs on its level's deadlines,
            # and was listed as overdue every morning for the two months at the county centre.
            overdue = [
                t
                for t in await open_tickets_of(session, officer.id)
                if (t.acknowledged_at is None and t.ack_due_at <= now)
                or (_phase(t) == "answer" and t.answered_at is None and t.answer_due_at <= now)
            ]
            script = overdue[0].script if overdue else "hans"
            # Red disputes head every digest until they are downgraded or resolved.
            lines = await dispute_todo_lines(session, runtime, officer, script, now)
            if not overdue and not lines:
                continue
            if overdue:
                lines.append(out.text("digest_header", script, count=len(overdue)))
            for t in overdue:
                lines.append(
                    out.text(
                        "officer_todo_line",
                        script,
                        code=t.code,
                        category=category_text(runtime, t),
                        priority=t.priority,
                        status=runtime.texts.render(f"status_{t.status}", script),
                        age=age_text(runtime, script, now - t.created_at),
                    )
                )
            out.to_officer(officer, "\n".join(lines))
            sent += 1
    if sent:
        log.info("daily digest sent to %d officers", sent)
    return sent


__all__ = ["OPEN_STATUSES", "daily_digest", "handover", "next_check", "sweep"]
