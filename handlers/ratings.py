"""滿意 / 不滿意 after a close: the resident's rating, its reason, and the reopening of an
unsatisfied ticket to the station leader with fresh deadlines."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Select, select

from bot.services.deadlines import next_check
from bot.services.dispute_cases import agreement_rejected
from bot.services.routing import Router
from bot.services.tickets import Out, add_event, category_text, clip, first_deadline, holder_of
from handlers.commands import LUKEWARM, Command, clean, parse
from handlers.context import HandlerContext
from handlers.forwarding import forward, of_this_chat, reply_about
from handlers.verification_support import tell_privately
from models.directory import Officer
from models.tickets import OPEN_STATUSES, Ticket, TicketEvent, TicketReporter


async def awaited_rating(ctx: HandlerContext) -> Command | None:
    """The event as a rating (滿意/不滿意, its code and reason) when the sender has a ticket
    waiting for one: the emergency layer leaves it to :func:`rate` unless the reason itself
    is an alarm. "不满意 到现在都没人来看过" was read as an emergency, a new P1 paged the
    officer and the leader, and the rating was lost."""
    command = parse(ctx.event.text)
    if command is None or command.name not in ("satisfied", "unsatisfied"):
        return None
    return command if await _awaiting(ctx, command.code) is not None else None


def _rating_window(ctx: HandlerContext) -> timedelta:
    return timedelta(seconds=ctx.runtime.settings.deadlines.rating_window_s)


def _awaiting_query(ctx: HandlerContext, *, expired: bool = False) -> Select[Ticket]:
    """The sender's tickets waiting for their rating, closed within the rating window (past
    it, ``expired``): a 不滿意 weeks after the close reopened the ticket, with fresh deadlines,
    and moved a past month's figures (docs/decisions.md)."""
    since = ctx.now - _rating_window(ctx)
    return (
        select(Ticket)
        .join(TicketReporter, TicketReporter.ticket_id == Ticket.id)
        .where(
            TicketReporter.member_id == ctx.member.id,
            Ticket.awaiting_satisfaction.is_(True),
            Ticket.closed_at < since if expired else Ticket.closed_at >= since,
        )
        .order_by(Ticket.closed_at.desc())
    )


async def _awaiting(ctx: HandlerContext, code: str | None) -> Ticket | None:
    """The sender's latest ticket waiting for their rating (the one ``code`` names, if any)."""
    query = _awaiting_query(ctx)
    return await ctx.session.scalar(query.where(Ticket.code == code) if code else query)


async def _all_awaiting(ctx: HandlerContext) -> list[Ticket]:
    """Every ticket of the sender's waiting for their rating, the one closed last first."""
    return list((await ctx.session.scalars(_awaiting_query(ctx))).all())


def _ask_which(ctx: HandlerContext, waiting: list[Ticket]) -> None:
    """Which ticket they rate: asked where they wrote when every one is of that chat, else
    privately (a group must not read the codes of matters raised privately)."""
    codes = "、".join(f"#{t.code}" for t in reversed(waiting))
    text = ctx.text("satisfaction_which", codes=codes, code=waiting[0].code)
    if all(of_this_chat(ctx, t) for t in waiting):
        ctx.reply(text)
    else:
        tell_privately(ctx, text)


def _rest_is_chat(ctx: HandlerContext, satisfied: bool, reason: str) -> bool:
    """Whether the rating's message is done with: after 满意 the rest may be a matter of its
    own ("满意 另外我家门口又被偷了"), for intake to take; after 不满意 it is the complaint."""
    return not (satisfied and reason and ctx.classify().label != "other")


async def rate(ctx: HandlerContext, satisfied: bool, code: str | None, reason: str = "") -> bool:
    """滿意/不滿意 (with or without a code, and words after it: the resident's reason, kept in
    the timeline and, when unsatisfied, shown to the leader who takes the ticket over).
    Without a code while several wait, the resident is asked which: the one closed last was
    rated, silently, when they meant another."""
    if code is None:
        waiting = await _all_awaiting(ctx)
        if len(waiting) > 1:
            _ask_which(ctx, waiting)
            return _rest_is_chat(ctx, satisfied, reason)
    ticket = await _awaiting(ctx, code)
    if ticket is None and code:
        return await _not_to_rate(ctx, code, reason)
    if ticket is None:
        # Nothing to rate (or only a late one, answered once): a bare "不太满意吧" is chat,
        # never a matter ("還算滿意啦" became a consultation, "不太满意吧" a suggestion);
        # words after it ("很不满意，物业乱收费") go on to intake.
        await _too_late(ctx, None)
        return not reason
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
        note=reason or None,
    )
    if satisfied:
        reply_about(ctx, ticket, ctx.text("satisfaction_thanks", code=ticket.code))
        return _rest_is_chat(ctx, satisfied, reason)
    await _reopen_to_leader(ctx, ticket, reason)
    return True


async def hint_rating(ctx: HandlerContext) -> bool:
    """A resident's "一般" / "还行" while a rating is awaited: no rating, so nothing is rated,
    but they hear how to rate (they had no answer at all). Once per ticket: the rating waits
    without end, and "还行" is also said to neighbours."""
    if LUKEWARM.match(clean(ctx.event.text)) is None:
        return False
    waiting = await _all_awaiting(ctx)
    if not waiting or await _hinted(ctx, waiting[0]):
        return False
    add_event(ctx.session, ctx.runtime, waiting[0], "rating_hinted", now=ctx.now, actor="resident")
    if len(waiting) > 1:
        _ask_which(ctx, waiting)
    else:
        reply_about(ctx, waiting[0], ctx.text("satisfaction_hint", code=waiting[0].code))
    return True


async def _hinted(ctx: HandlerContext, ticket: Ticket) -> bool:
    return (
        await ctx.session.scalar(
            select(TicketEvent.id).where(
                TicketEvent.ticket_id == ticket.id, TicketEvent.kind == "rating_hinted"
            )
        )
    ) is not None


async def _reopen_to_leader(ctx: HandlerContext, ticket: Ticket, reason: str) -> None:
    previous = await holder_of(ctx.session, ticket)
    leader = await _leader_over(ctx, ticket, previous)
    ticket.status = "escalated"
    ticket.first_acknowledged_at, ticket.first_answered_at = ticket.ack_time, ticket.answer_time
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
    await agreement_rejected(ctx.session, ctx.runtime, ticket, now=ctx.now, reason=reason)
    add_event(
        ctx.session,
        ctx.runtime,
        ticket,
        "reopened",
        now=ctx.now,
        actor="resident",
        detail=f"unsatisfied; to {leader.id if leader else '-'}",
    )
    if leader is not None:
        reopened = ctx.text("satisfaction_reopened", code=ticket.code, officer=leader.name)
    else:
        reopened = ctx.text("satisfaction_reopened_unnamed", code=ticket.code)
    reply_about(ctx, ticket, reopened)
    # With nobody above, the complaint goes back to whoever held it: someone must hear it.
    told = leader or previous
    if told is not None:
        out = Out.of(ctx)
        out.to_officer(
            told,
            out.text(
                "reopened_to_leader",
                ticket.script,
                code=ticket.code,
                category=category_text(ctx.runtime, ticket),
                officer=previous.name if previous else "-",
                text=clip(ctx.runtime.cipher.decrypt(ticket.text_enc) or ""),
                reason=out.text("reopened_reason", ticket.script, reason=clip(reason))
                if reason
                else "",
            ),
        )


async def _leader_over(
    ctx: HandlerContext, ticket: Ticket, previous: Officer | None
) -> Officer | None:
    """Who takes an unsatisfied ticket over: whoever leads for its station (at a station
    without a leader, the first above), else the holder's escalation chain, else the county's
    leader or duty desk, as escalation goes; never the holder. At 河西, with no leader,
    ``escalation_target(holder, 3)`` asked for the second one up, found nobody, and the
    complaint reached no one ("交由-督辦")."""
    router = Router(ctx.session, ctx.runtime.settings.timezone)
    candidates: list[Officer | None] = []
    if ticket.station_id:
        candidates += await router.leaders_for(ticket.station_id)
    if previous is not None:
        candidates += await router.escalation_chain(previous)
    county = await router.county_station()
    candidates.append(await router.leader(county.id) if county else None)
    desk = await router.assign(station_id=None, group=None, at=ctx.now)
    candidates.append(desk.officer if desk else None)
    return next(
        (c for c in candidates if c is not None and (previous is None or c.id != previous.id)),
        None,
    )


async def _not_to_rate(ctx: HandlerContext, code: str, reason: str) -> bool:
    """``不滿意 #CODE`` about a ticket of one's own that asks for no rating: still open, the
    officer hears it (a follow-up); rated already, or past the rating window, the resident is
    told. Before, nothing answered it at all. Someone else's code is answered as a code that
    is no ticket."""
    ticket = await ctx.session.scalar(
        select(Ticket)
        .join(TicketReporter, TicketReporter.ticket_id == Ticket.id)
        .where(TicketReporter.member_id == ctx.member.id, Ticket.code == code)
    )
    if ticket is None:
        # Somebody else's code, or none at all, answered alike: whose matter it is stays
        # unsaid. Before, the neighbour who typed "满意 #CODE" heard nothing and thought it
        # counted.
        ctx.reply(ctx.text("satisfaction_not_yours", code=code))
        return True
    if await _too_late(ctx, code):
        return not reason
    if ticket.status in OPEN_STATUSES:
        await forward(ctx, ticket, ctx.event.text.strip())
    else:
        reply_about(ctx, ticket, ctx.text("satisfaction_already", code=ticket.code))
    return True


async def _too_late(ctx: HandlerContext, code: str | None) -> bool:
    """Whether this is a rating past the window (``deadlines.rating_window_s`` after the
    close): not recorded and nothing reopens; the resident is told so once, and that a matter
    still unsolved is taken as a new one. The caller leaves words after it ("不满意 墙还是没拆")
    to intake, as that new matter; said again later, the rating is plain chat."""
    query = _awaiting_query(ctx, expired=True)
    ticket = await ctx.session.scalar(query.where(Ticket.code == code) if code else query)
    if ticket is None:
        return False
    ticket.awaiting_satisfaction = False
    add_event(ctx.session, ctx.runtime, ticket, "rating_expired", now=ctx.now, actor="resident")
    days = ctx.runtime.settings.deadlines.rating_window_s // 86400
    reply_about(ctx, ticket, ctx.text("satisfaction_expired", code=ticket.code, days=days))
    return True
