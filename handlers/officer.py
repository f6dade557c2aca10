"""Officer commands in the chat (CONTRACT §5): answer, acknowledge, close, transfer, classify,
list. Only a sender whose id is a directory officer's ``wechat_id`` reaches this handler.

What a command does to a ticket, and who may, is bot/services/ticket_service.py (the console calls
the same functions); this module parses, and words the outcome for the officer in the chat."""

from __future__ import annotations

from sqlalchemy import and_, or_, select

from bot.services import audit
from bot.services import ticket_service as tickets
from bot.services.dispute_cases import todo_lines as dispute_todo_lines
from bot.services.routing import station_subtree
from bot.services.ticket_service import Actor, Refused, check_scope, officer_actor
from bot.services.tickets import (
    Out,
    age_text,
    category_text,
    find_ticket,
    holder_of,
    open_tickets_of,
    reachable,
)
from handlers.commands import LABEL_WORDS, Command, clean, near_miss, parse
from handlers.context import HandlerContext
from models.directory import Officer
from models.tickets import OPEN_STATUSES, Ticket

OFFICER_COMMANDS = {"ack", "close", "transfer", "classify", "todo", "answer", "contact", "query"}


async def officer_commands(ctx: HandlerContext) -> bool:
    """Handle an officer's command; an officer's other messages are not residents' items."""
    officer = ctx.officer
    if officer is None or ctx.event.kind != "message":
        return False
    command = parse(ctx.event.text)
    if command is None or command.name not in OFFICER_COMMANDS:
        if clean(ctx.event.text).startswith("指派"):
            return False  # group assignment belongs to the membership handlers
        if ctx.event.is_private:
            Out.of(ctx).to_officer(officer, _help(ctx))
        return True  # officers' publicity and chat in groups are not tickets
    out = Out.of(ctx)
    if command.name == "todo" or (command.name == "query" and not command.codes):
        await _todo(ctx, officer)  # 查詢 alone: what is theirs, as 待辦 lists it
        return True
    actor = await officer_actor(ctx.session, officer, script=ctx.script)
    handler = {
        "answer": _answer,
        "ack": _ack,
        "close": _close,
        "transfer": _transfer,
        "classify": _classify,
        "contact": _contact,
        "query": _query,
    }[command.name]
    for code in _codes(command):
        ticket = await find_ticket(ctx.session, code)
        if ticket is None:
            _tell(out, officer, ctx.text("officer_unknown_ticket", code=code))
            continue
        try:
            await handler(ctx, out, actor, ticket, command)
        except Refused as refused:
            # Nothing changed; the officer hears why, privately (bot/services/ticket_service.py).
            _tell(out, officer, ctx.text(f"officer_{refused.reason}", **refused.values))
    return True


def _help(ctx: HandlerContext) -> str:
    """For an officer's private message that is no command: what is missing from the one they
    nearly wrote (the whole command list buried it), else the command list."""
    miss = near_miss(ctx.event.text)
    if miss is None:
        return ctx.text("officer_help")
    return ctx.text(f"officer_{miss.reason}", code=miss.code)


# At most this many codes in one 接單 or 查詢: a pasted list is not a reason to flood.
_MAX_CODES = 10


def _codes(command: Command) -> list[str]:
    """The tickets a command names: one, or for 接單 and 查詢 several (each in turn)."""
    codes = [command.code] if command.code and command.name != "query" else []
    if command.name in ("ack", "query"):
        codes += command.codes
    return list(dict.fromkeys(codes))[:_MAX_CODES]


async def _query(ctx: HandlerContext, out: Out, actor: Actor, ticket: Ticket, cmd: Command) -> None:
    """查詢 #CODE from an officer: the ticket's category, priority, status, age and holder,
    for a ticket of their stations (it answered with the help text)."""
    check_scope(actor, ticket)
    holder = await holder_of(ctx.session, ticket)
    assert actor.officer is not None
    _tell(
        out,
        actor.officer,
        ctx.text(
            "officer_todo_supervised_line",
            **_todo_values(ctx, ticket),
            officer=holder.name if holder else "-",
        ),
    )


def _tell(out: Out, officer: Officer, text: str) -> None:
    """Confirmations go to the officer privately, never into the residents' group."""
    out.to_officer(officer, text)


def _done(ctx: HandlerContext, out: Out, actor: Actor, ticket: Ticket, action: str) -> None:
    assert actor.officer is not None
    _tell(out, actor.officer, ctx.text("officer_done", code=ticket.code, action=action))


async def _answer(
    ctx: HandlerContext, out: Out, actor: Actor, ticket: Ticket, cmd: Command
) -> None:
    people = await tickets.answer(out, actor=actor, ticket=ticket, text=cmd.text)
    reached = reachable(people)
    assert actor.officer is not None
    if people and not reached:
        # Every reporter cut the link (註銷實名): the answer is on record, nobody receives it.
        _tell(out, actor.officer, ctx.text("officer_answer_reporter_left", code=ticket.code))
    # In the residents' group the @-reply there is the officer's confirmation; an answer that
    # goes elsewhere (privately, the Official Account, another group) is confirmed privately.
    elif ctx.event.is_private or any(p.group_id != ctx.event.group_id for p in reached):
        _tell(
            out,
            actor.officer,
            ctx.text("officer_answer_delivered", code=ticket.code, count=len(reached)),
        )


async def _ack(ctx: HandlerContext, out: Out, actor: Actor, ticket: Ticket, cmd: Command) -> None:
    await tickets.acknowledge(out, actor=actor, ticket=ticket)
    _done(ctx, out, actor, ticket, ctx.text("action_acknowledged"))


async def _close(ctx: HandlerContext, out: Out, actor: Actor, ticket: Ticket, cmd: Command) -> None:
    await tickets.close(out, actor=actor, ticket=ticket, note=cmd.text)
    _done(ctx, out, actor, ticket, ctx.text("action_closed"))


async def _transfer(
    ctx: HandlerContext, out: Out, actor: Actor, ticket: Ticket, cmd: Command
) -> None:
    target = await tickets.transfer(out, actor=actor, ticket=ticket, officer_id=cmd.officer or "")
    _done(ctx, out, actor, ticket, ctx.text("action_transferred", officer=target.name))


async def _classify(
    ctx: HandlerContext, out: Out, actor: Actor, ticket: Ticket, cmd: Command
) -> None:
    label = LABEL_WORDS.get((cmd.label or "").lower()) or LABEL_WORDS.get(cmd.label or "")
    await tickets.reclassify(out, actor=actor, ticket=ticket, label=label or (cmd.label or ""))
    category = category_text(ctx.runtime, ticket, ctx.script)
    _done(ctx, out, actor, ticket, ctx.text("action_classified", category=category))


async def _contact(
    ctx: HandlerContext, out: Out, actor: Actor, ticket: Ticket, cmd: Command
) -> None:
    """``聯繫 #CODE``: the reporters' verified names and numbers, privately, for the officer
    holding the ticket or a leader, so that they can call; every look is in the timeline and,
    as the console's showings are, in the audit log (the 審計 page)."""
    assert actor.officer is not None
    lines = [ctx.text("officer_contact_header", code=ticket.code)]
    for contact in await tickets.contacts(out, actor=actor, ticket=ticket):
        if contact.name is None:
            lines.append(ctx.text("officer_contact_unverified"))
        else:
            lines.append(ctx.text("officer_contact_line", name=contact.name, phone=contact.phone))
    # Sent, the names and numbers leave the outbox: 註銷實名 must be able to delete them all.
    kept = ctx.text("officer_contact_sent", code=ticket.code)
    out.to_officer(actor.officer, "\n".join(lines), kept_text=kept)
    audit.record(
        ctx.session,
        now=ctx.now,
        action=audit.PERSONAL_DATA_SHOWN,
        target=f"ticket:{ticket.code}",
        detail="contacts",
        by=actor.key,
    )


async def _todo(ctx: HandlerContext, officer: Officer) -> None:
    """An officer's open tickets; a leader also sees the escalated ones of their stations."""
    out = Out.of(ctx)
    tickets = await open_tickets_of(ctx.session, officer.id)
    supervised = await _escalated_below(ctx, officer) if officer.role == "leader" else []
    # Red disputes first, then dispute follow-ups that are due.
    lines = await dispute_todo_lines(ctx.session, ctx.runtime, officer, ctx.script, ctx.now)
    if not tickets and not supervised and not lines:
        _tell(out, officer, ctx.text("officer_todo_empty"))
        return
    if tickets:
        lines.append(ctx.text("officer_todo_header", count=len(tickets)))
    lines += [ctx.text("officer_todo_line", **_todo_values(ctx, t)) for t in tickets]
    if supervised:
        lines.append(ctx.text("officer_todo_supervised", count=len(supervised)))
        for t, holder in supervised:
            lines.append(
                ctx.text("officer_todo_supervised_line", **_todo_values(ctx, t), officer=holder)
            )
    _tell(out, officer, "\n".join(lines))


def _todo_values(ctx: HandlerContext, t: Ticket) -> dict[str, object]:
    return {
        "code": t.code,
        "category": category_text(ctx.runtime, t, ctx.script),
        "priority": t.priority,
        "status": ctx.text(f"status_{t.status}"),
        "age": age_text(ctx.runtime, ctx.script, ctx.now - t.created_at),
    }


async def _escalated_below(ctx: HandlerContext, leader: Officer) -> list[tuple[Ticket, str]]:
    """Open tickets of the leader's station and the stations under it, held by someone else,
    that have been escalated to a leader (level 2 or more) or are emergencies nobody has
    acknowledged yet (the leader was paged for them), with the holder's name."""
    scope = await station_subtree(ctx.session, [leader.station_id])
    rows = (
        await ctx.session.execute(
            select(Ticket, Officer.name)
            .outerjoin(Officer, Officer.id == Ticket.assigned_officer_id)
            .where(
                Ticket.station_id.in_(scope),
                Ticket.status.in_(OPEN_STATUSES),
                or_(
                    Ticket.escalation_level >= 2,
                    and_(Ticket.priority == 1, Ticket.acknowledged_at.is_(None)),
                ),
                Ticket.assigned_officer_id.is_distinct_from(leader.id),
            )
            .order_by(Ticket.created_at)
        )
    ).all()
    return [(ticket, name or "-") for ticket, name in rows]
