"""A resident's words about a ticket, passed on to the officer they are talking with: the
reporter's follow-ups, a neighbour's clue, an unsatisfied rating on a ticket still open."""

from __future__ import annotations

from sqlalchemy import select

from bot.services.tickets import Out, add_event, clip, holder_of, resident_label
from bot.texts import Script
from handlers.context import HandlerContext
from handlers.verification_support import tell_privately
from models.directory import Officer
from models.people import Member
from models.tickets import Ticket, TicketEvent


async def last_answer(ctx: HandlerContext, ticket: Ticket) -> TicketEvent | None:
    """The ticket's latest officer answer in its timeline, or None."""
    return await ctx.session.scalar(
        select(TicketEvent)
        .where(TicketEvent.ticket_id == ticket.id, TicketEvent.kind == "answered")
        .order_by(TicketEvent.at.desc(), TicketEvent.id.desc())
        .limit(1)
    )


def of_this_chat(ctx: HandlerContext, ticket: Ticket) -> bool:
    """Whether what is said about ``ticket`` may be said where the event came from: in a
    private chat always, in a group only for a ticket raised in that group. A bare 查询 in the
    village group listed a domestic-violence report made privately."""
    return ctx.event.is_private or ticket.group_id == ctx.event.group_id


def reply_about(ctx: HandlerContext, ticket: Ticket, text: str) -> None:
    """Answer about ``ticket`` where the event came from, or privately when the ticket is not
    of that group (:func:`of_this_chat`)."""
    if of_this_chat(ctx, ticket):
        ctx.reply(text)
    else:
        tell_privately(ctx, text)


async def talking_officer(ctx: HandlerContext, ticket: Ticket) -> Officer | None:
    """The officer the resident is talking with: whoever answered last (any officer may answer
    a ticket), else the one it is assigned to."""
    last = await last_answer(ctx, ticket)
    if last is not None and last.actor.startswith("officer:"):
        officer = await ctx.session.get(Officer, last.actor.removeprefix("officer:"))
        if officer is not None:
            return officer
    return await holder_of(ctx.session, ticket)


async def forward(
    ctx: HandlerContext, ticket: Ticket, text: str, *, neighbour: bool = False
) -> None:
    """Record the follow-up, pass it to the ticket's officer, and tell the resident so (a
    ``neighbour``'s words are marked as a clue from somebody who did not report the matter)."""
    add_event(
        ctx.session,
        ctx.runtime,
        ticket,
        "followup",
        now=ctx.now,
        actor="neighbour" if neighbour else "resident",
        note=text,
    )
    officer = await talking_officer(ctx, ticket)
    if officer is None:
        kept = "neighbour_note_kept" if neighbour else "followup_noted"
        reply_about(ctx, ticket, ctx.text(kept, code=ticket.code))
        return
    key = "officer_neighbour_note" if neighbour else "officer_followup"
    await words_to_officer(ctx, Out.of(ctx), officer, key, ticket, ctx.member, ctx.script, text)
    forwarded = "neighbour_note_forwarded" if neighbour else "followup_forwarded"
    reply_about(ctx, ticket, ctx.text(forwarded, code=ticket.code, officer=officer.name))


async def words_to_officer(
    ctx: HandlerContext,
    out: Out,
    officer: Officer,
    key: str,
    ticket: Ticket,
    member: Member,
    script: Script,
    text: str,
) -> None:
    """A resident's words about ``ticket`` to ``officer``: sentence ``key`` with the code, the
    resident (masked) and the words, clipped."""
    resident = await resident_label(ctx.session, ctx.runtime, member, script)
    out.to_officer(
        officer, out.text(key, script, code=ticket.code, resident=resident, text=clip(text))
    )
