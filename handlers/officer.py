"""Officer commands in the chat (CONTRACT §5): answer, acknowledge, close, transfer, classify,
list. Only a sender whose id is a directory officer's ``wechat_id`` reaches this handler."""

from __future__ import annotations

from sqlalchemy import and_, or_, select

from bot.channels.base import OutboundMessage
from bot.deadlines import next_check, restart_ladder
from bot.dispatcher import HandlerContext
from bot.routing import station_subtree
from handlers.commands import LABEL_WORDS, Command, clean, parse
from handlers.dispute_cases import open_for_ticket
from handlers.dispute_cases import todo_lines as dispute_todo_lines
from handlers.tickets import (
    Out,
    add_event,
    age_text,
    category_text,
    clip,
    find_ticket,
    open_tickets_of,
    priority_for,
    reachable,
    reporters,
)
from models.directory import Officer, Station
from models.people import Binding
from models.tickets import OPEN_STATUSES, Ticket, TicketReporter

OFFICER_COMMANDS = {"ack", "close", "transfer", "classify", "todo", "answer", "contact"}


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
            Out.of(ctx).to_officer(officer, ctx.text("officer_help"))
        return True  # officers' publicity and chat in groups are not tickets
    out = Out.of(ctx)
    if command.name == "todo":
        await _todo(ctx, officer)
        return True
    assert command.code is not None
    ticket = await find_ticket(ctx.session, command.code)
    if ticket is None:
        _tell(ctx, out, officer, ctx.text("officer_unknown_ticket", code=command.code))
        return True
    if not await in_scope(ctx, officer, ticket):
        # Holding a ticket opens its reporters' names and numbers (聯繫): an officer acts only
        # on the matters of their own station and the stations below it.
        _tell(ctx, out, officer, ctx.text("officer_out_of_scope", code=ticket.code))
        return True
    handler = {
        "answer": _answer,
        "ack": _ack,
        "close": _close,
        "transfer": _transfer,
        "classify": _classify,
        "contact": _contact,
    }[command.name]
    await handler(ctx, out, officer, ticket, command)
    return True


async def in_scope(ctx: HandlerContext, officer: Officer, ticket: Ticket) -> bool:
    """Whether ``officer`` may act on ``ticket``: it belongs to their station or a station
    below it (the county centre's officers: every station). A ticket without a station is the
    county desk's."""
    if ticket.assigned_officer_id == officer.id:
        return True
    scope = await station_subtree(ctx.session, [officer.station_id])
    if ticket.station_id is None:
        return (
            await ctx.session.scalar(
                select(Station.parent_id).where(Station.id == officer.station_id)
            )
            is None
        )
    return ticket.station_id in scope


def _tell_previous_holder(
    ctx: HandlerContext, out: Out, officer: Officer, ticket: Ticket, previous: Officer | None
) -> None:
    """A ticket taken from someone (接單 by another, 轉派): they hear it, so that nobody goes
    on working on, or waiting for, a matter that is no longer theirs."""
    if previous is None or previous.id == officer.id or previous.id == ticket.assigned_officer_id:
        return
    out.to_officer(
        previous,
        out.text(
            "officer_ticket_taken",
            ticket.script,  # type: ignore[arg-type]
            code=ticket.code,
            by=officer.name,
        ),
    )


def _tell(ctx: HandlerContext, out: Out, officer: Officer, text: str) -> None:
    """Confirmations go to the officer privately, never into the residents' group."""
    out.to_officer(officer, text)


def _done(ctx: HandlerContext, out: Out, officer: Officer, ticket: Ticket, action: str) -> None:
    _tell(ctx, out, officer, ctx.text("officer_done", code=ticket.code, action=action))


async def _to_reporters(
    ctx: HandlerContext,
    out: Out,
    ticket: Ticket,
    key: str,
    *,
    on_failure: OutboundMessage | None = None,
    **values: object,
) -> list[TicketReporter]:
    """Tell every reporter of ``ticket``, in the ticket's script; returns them."""
    people = await reporters(ctx.session, ticket)
    text = out.text(key, ticket.script, code=ticket.code, **values)  # type: ignore[arg-type]
    out.to_reporters(people, text, on_failure=on_failure)
    return people


def _actor(officer: Officer) -> str:
    return f"officer:{officer.id}"


async def _answer(
    ctx: HandlerContext, out: Out, officer: Officer, ticket: Ticket, cmd: Command
) -> None:
    # Should the answer never reach a resident, the officer hears so and can call them.
    failed = out.notice_to_officer(
        officer, ctx.text("officer_answer_undelivered", code=ticket.code)
    )
    people = await _to_reporters(
        ctx, out, ticket, "ticket_answer", on_failure=failed, officer=officer.name, text=cmd.text
    )
    if ticket.acknowledged_at is None:
        ticket.acknowledged_at = ctx.now
    if ticket.status != "closed":
        ticket.status = "answered"
        ticket.answered_at = ctx.now
    ticket.escalation_level = 0
    ticket.next_check_at = next_check(ticket, ctx.runtime.settings.deadlines)
    reached = reachable(people)
    add_event(
        ctx.session,
        ctx.runtime,
        ticket,
        "answered",
        now=ctx.now,
        actor=_actor(officer),
        detail=f"to {len(reached)} reporter(s)",
        note=cmd.text,
    )
    if people and not reached:
        # Every reporter cut the link (註銷實名): the answer is on record, nobody receives it.
        _tell(ctx, out, officer, ctx.text("officer_answer_reporter_left", code=ticket.code))
    # In the residents' group the @-reply there is the officer's confirmation; an answer that
    # goes elsewhere (privately, the Official Account, another group) is confirmed privately.
    elif ctx.event.is_private or any(p.group_id != ctx.event.group_id for p in reached):
        _tell(
            ctx,
            out,
            officer,
            ctx.text("officer_answer_delivered", code=ticket.code, count=len(reached)),
        )


async def _ack(
    ctx: HandlerContext, out: Out, officer: Officer, ticket: Ticket, cmd: Command
) -> None:
    if ticket.status == "closed":
        _tell(ctx, out, officer, ctx.text("officer_already_closed", code=ticket.code))
        return
    if ticket.acknowledged_at is not None and ticket.assigned_officer_id == officer.id:
        # Already theirs: the residents heard so once; the officer hears it again, privately.
        _tell(ctx, out, officer, ctx.text("officer_already_acknowledged", code=ticket.code))
        return
    if ticket.acknowledged_at is None:
        ticket.acknowledged_at = ctx.now
        ticket.escalation_level = 0
    if ticket.status in ("new", "escalated"):
        ticket.status = "acknowledged"
    if ticket.assigned_officer_id != officer.id:
        previous = (
            await ctx.session.get(Officer, ticket.assigned_officer_id)
            if ticket.assigned_officer_id
            else None
        )
        ticket.assigned_officer_id, ticket.assigned_by = officer.id, "manual"
        _tell_previous_holder(ctx, out, officer, ticket, previous)
    ticket.next_check_at = next_check(ticket, ctx.runtime.settings.deadlines)
    add_event(ctx.session, ctx.runtime, ticket, "acknowledged", now=ctx.now, actor=_actor(officer))
    await _to_reporters(ctx, out, ticket, "ticket_acknowledged_to_resident", officer=officer.name)
    _done(ctx, out, officer, ticket, ctx.text("action_acknowledged"))


async def _close(
    ctx: HandlerContext, out: Out, officer: Officer, ticket: Ticket, cmd: Command
) -> None:
    if ticket.status == "closed":
        _tell(ctx, out, officer, ctx.text("officer_already_closed", code=ticket.code))
        return
    ticket.status = "closed"
    ticket.closed_at = ctx.now
    ticket.acknowledged_at = ticket.acknowledged_at or ctx.now
    ticket.resolution_enc = ctx.runtime.cipher.encrypt(cmd.text or "-")
    ticket.awaiting_satisfaction = True
    ticket.next_check_at = None
    add_event(
        ctx.session,
        ctx.runtime,
        ticket,
        "closed",
        now=ctx.now,
        actor=_actor(officer),
        note=cmd.text,
    )
    if cmd.text:
        await _to_reporters(ctx, out, ticket, "ticket_closed_to_resident", text=cmd.text)
    else:
        await _to_reporters(ctx, out, ticket, "ticket_closed_to_resident_plain")
    _done(ctx, out, officer, ticket, ctx.text("action_closed"))


async def _transfer(
    ctx: HandlerContext, out: Out, officer: Officer, ticket: Ticket, cmd: Command
) -> None:
    target = await ctx.session.get(Officer, cmd.officer or "")
    if target is None:
        _tell(ctx, out, officer, ctx.text("officer_unknown_officer", officer_id=cmd.officer))
        return
    if target.id == ticket.assigned_officer_id:
        _tell(
            ctx,
            out,
            officer,
            ctx.text("officer_transfer_same", code=ticket.code, officer=target.name),
        )
        return
    if target.station_id not in await station_subtree(ctx.session, [officer.station_id]):
        _tell(
            ctx, out, officer,
            ctx.text("officer_transfer_out_of_scope", code=ticket.code, officer=target.name),
        )  # fmt: skip
        return
    if not target.wechat_id:
        # The bot could never tell them: the ticket would wait in silence for its deadline.
        _tell(
            ctx, out, officer,
            ctx.text("officer_transfer_unreachable", code=ticket.code, officer=target.name),
        )  # fmt: skip
        return
    previous = ticket.assigned_officer_id
    ticket.assigned_officer_id, ticket.assigned_by = target.id, "manual"
    ticket.station_id = target.station_id  # escalation follows the new assignee's station
    if ticket.status != "closed":
        ticket.status = "new" if ticket.acknowledged_at is None else ticket.status
        restart_ladder(ctx.runtime, ticket, ctx.now)
    add_event(
        ctx.session,
        ctx.runtime,
        ticket,
        "transferred",
        now=ctx.now,
        actor=_actor(officer),
        detail=f"{previous} -> {target.id}",
    )
    _tell_previous_holder(
        ctx, out, officer, ticket, await ctx.session.get(Officer, previous) if previous else None
    )
    out.to_officer(
        target,
        out.text(
            "officer_transferred_to_you",
            ticket.script,
            code=ticket.code,  # type: ignore[arg-type]
            category=category_text(ctx.runtime, ticket),
            priority=ticket.priority,
            by=officer.name,
            text=clip(ctx.runtime.cipher.decrypt(ticket.text_enc) or ""),
        ),
    )
    _done(ctx, out, officer, ticket, ctx.text("action_transferred", officer=target.name))


async def _classify(
    ctx: HandlerContext, out: Out, officer: Officer, ticket: Ticket, cmd: Command
) -> None:
    label = LABEL_WORDS.get((cmd.label or "").lower()) or LABEL_WORDS.get(cmd.label or "")
    if label is None:
        _tell(ctx, out, officer, ctx.text("officer_unknown_label", label=cmd.label))
        return
    previous = ticket.category
    ticket.category, ticket.unclear = label, False
    if not ticket.emergency and ticket.priority != priority_for(label, False):
        ticket.priority = priority_for(label, False)
        if ticket.status != "closed":
            restart_ladder(ctx.runtime, ticket, ctx.now)
    add_event(
        ctx.session,
        ctx.runtime,
        ticket,
        "classified",
        now=ctx.now,
        actor=_actor(officer),
        detail=f"{previous} -> {label}",
    )
    category = category_text(ctx.runtime, ticket, ctx.script)
    _done(ctx, out, officer, ticket, ctx.text("action_classified", category=category))
    if label == "dispute" and ticket.status != "closed":
        await open_for_ticket(ctx.session, ctx.runtime, ticket, now=ctx.now, by=_actor(officer))


async def _contact(
    ctx: HandlerContext, out: Out, officer: Officer, ticket: Ticket, cmd: Command
) -> None:
    """``聯繫 #CODE``: the reporters' verified names and numbers, privately, for the officer
    holding the ticket or a leader, so that they can call; every look is in the timeline."""
    holder = ticket.assigned_officer_id == officer.id
    # A leader sees the numbers of their own station's and the stations below it, as far as
    # their 指派 and 待辦 reach: no more than the work needs (PIPL).
    in_scope = officer.role == "leader" and ticket.station_id in await station_subtree(
        ctx.session, [officer.station_id]
    )
    if not (holder or in_scope):
        _tell(ctx, out, officer, ctx.text("officer_contact_not_yours", code=ticket.code))
        return
    lines = [ctx.text("officer_contact_header", code=ticket.code)]
    for reporter in await reporters(ctx.session, ticket):
        binding = (
            await ctx.session.scalar(select(Binding).where(Binding.member_id == reporter.member_id))
            if reporter.member_id is not None
            else None
        )
        if binding is None:
            lines.append(ctx.text("officer_contact_unverified"))
            continue
        cipher = ctx.runtime.cipher
        name, phone = (
            cipher.decrypt(binding.name_enc) or "",
            cipher.decrypt(binding.phone_enc) or "",
        )
        lines.append(ctx.text("officer_contact_line", name=name, phone=phone))
    add_event(ctx.session, ctx.runtime, ticket, "contact_shown", now=ctx.now, actor=_actor(officer))
    # Sent, the names and numbers leave the outbox: 註銷實名 must be able to delete them all.
    kept = ctx.text("officer_contact_sent", code=ticket.code)
    out.to_officer(officer, "\n".join(lines), kept_text=kept)


async def _todo(ctx: HandlerContext, officer: Officer) -> None:
    """An officer's open tickets; a leader also sees the escalated ones of their stations."""
    out = Out.of(ctx)
    tickets = await open_tickets_of(ctx.session, officer.id)
    supervised = await _escalated_below(ctx, officer) if officer.role == "leader" else []
    # Red disputes first, then dispute follow-ups that are due.
    lines = await dispute_todo_lines(ctx.session, ctx.runtime, officer, ctx.script, ctx.now)
    if not tickets and not supervised and not lines:
        _tell(ctx, out, officer, ctx.text("officer_todo_empty"))
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
    _tell(ctx, out, officer, "\n".join(lines))


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
