"""Residents' commands about their tickets: ``查詢 #CODE`` and the satisfaction answer."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.deadlines import next_check
from bot.dispatcher import HandlerContext
from bot.routing import Router
from handlers.commands import parse
from handlers.tickets import Out, add_event, category_text, clip, find_ticket, first_deadline
from models.directory import Officer
from models.tickets import Ticket, TicketReporter


async def resident_commands(ctx: HandlerContext) -> bool:
    """``查詢 #CODE`` shows status to the ticket's reporters; 滿意/不滿意 after a close."""
    if ctx.event.kind != "message" or ctx.officer is not None:
        return False
    command = parse(ctx.event.text)
    if command is None:
        return False
    if command.name == "query" and command.code:
        await _query(ctx, command.code)
        return True
    if command.name in ("satisfied", "unsatisfied"):
        return await _satisfaction(ctx, command.name == "satisfied", command.code)
    return False


async def _is_reporter(ctx: HandlerContext, ticket: Ticket) -> bool:
    return (
        await ctx.session.scalar(
            select(TicketReporter.id).where(
                TicketReporter.ticket_id == ticket.id, TicketReporter.member_id == ctx.member.id
            )
        )
    ) is not None


async def _query(ctx: HandlerContext, code: str) -> None:
    ticket = await find_ticket(ctx.session, code)
    # Only the people who reported it learn anything about it.
    if ticket is None or not await _is_reporter(ctx, ticket):
        ctx.reply(ctx.text("ticket_not_found", code=code))
        return
    officer = (
        await ctx.session.get(Officer, ticket.assigned_officer_id)
        if ticket.assigned_officer_id
        else None
    )
    created = ticket.created_at.astimezone(ZoneInfo(ctx.runtime.settings.timezone)).strftime(
        "%Y-%m-%d %H:%M"
    )
    ctx.reply(
        ctx.text(
            "ticket_status",
            code=ticket.code,
            category=category_text(ctx.runtime, ticket),
            status=ctx.text(f"status_{ticket.status}"),
            officer=officer.name if officer else "-",
            created=created,
        )
    )


async def _satisfaction(ctx: HandlerContext, satisfied: bool, code: str | None) -> bool:
    query = (
        select(Ticket)
        .join(TicketReporter, TicketReporter.ticket_id == Ticket.id)
        .where(TicketReporter.member_id == ctx.member.id, Ticket.awaiting_satisfaction.is_(True))
        .order_by(Ticket.closed_at.desc())
    )
    if code:
        query = query.where(Ticket.code == code)
    ticket = await ctx.session.scalar(query)
    if ticket is None:
        return False  # a plain "满意" with nothing to rate is just chat
    ticket.awaiting_satisfaction = False
    ticket.satisfaction = "satisfied" if satisfied else "unsatisfied"
    add_event(
        ctx.session,
        ctx.runtime,
        ticket,
        "rated",
        now=ctx.now,
        actor="resident",
        detail=ticket.satisfaction,
    )
    if satisfied:
        ctx.reply(ctx.text("satisfaction_thanks", code=ticket.code))
        return True
    await _reopen_to_leader(ctx, ticket)
    return True


async def _reopen_to_leader(ctx: HandlerContext, ticket: Ticket) -> None:
    router = Router(ctx.session, ctx.runtime.settings.timezone)
    previous = (
        await ctx.session.get(Officer, ticket.assigned_officer_id)
        if ticket.assigned_officer_id
        else None
    )
    leader = await router.leader(ticket.station_id) if ticket.station_id else None
    if leader is None and previous is not None:
        leader = await router.escalation_target(previous, 3)
    ticket.status = "escalated"
    ticket.closed_at = None
    ticket.acknowledged_at = None
    ticket.answered_at = None
    ticket.escalation_level = 0
    ack_due, answer_due = first_deadline(ctx.runtime, ticket.priority, ctx.now)
    ticket.ack_due_at, ticket.answer_due_at = (
        ack_due,
        max(answer_due, ack_due + timedelta(seconds=1)),
    )
    if leader is not None:
        ticket.assigned_officer_id, ticket.assigned_by = leader.id, "manual"
    ticket.next_check_at = next_check(ticket, ctx.runtime.settings.deadlines)
    add_event(
        ctx.session,
        ctx.runtime,
        ticket,
        "reopened",
        now=ctx.now,
        actor="resident",
        detail=f"unsatisfied; to {leader.id if leader else '-'}",
    )
    ctx.reply(
        ctx.text("satisfaction_reopened", code=ticket.code, officer=leader.name if leader else "-")
    )
    if leader is not None:
        out = Out.of(ctx)
        out.to_officer(
            leader,
            out.text(
                "reopened_to_leader",
                ticket.script,
                code=ticket.code,  # type: ignore[arg-type]
                category=category_text(ctx.runtime, ticket),
                officer=previous.name if previous else "-",
                text=clip(ctx.runtime.cipher.decrypt(ticket.text_enc) or ""),
            ),
        )
