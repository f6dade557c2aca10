"""Intake: the emergency layer first, then classify, hold for verification, merge or open a
ticket, route it to the officer on duty and tell them — all in the event's transaction."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from bot.deadlines import next_check
from bot.dispatcher import HandlerContext
from bot.routing import Router, home_station_of
from handlers.classifier import Classification, normalise
from handlers.texts import Script, detect_script
from handlers.tickets import (
    Out,
    add_event,
    category_text,
    first_deadline,
    group_label,
    new_code,
    priority_for,
    resident_label,
)
from models.directory import Group, Officer
from models.journal import InboundEvent
from models.people import Member, PendingItem
from models.tickets import OPEN_STATUSES, Ticket, TicketReporter

# Overlap of character bigrams above which two messages are taken to describe one incident.
_SIMILAR = 0.3
_FOLLOW_UP_SIMILAR = 0.2


def _bigrams(text: str) -> set[str]:
    chars = re.sub(r"\W", "", normalise(text))
    return {chars[i : i + 2] for i in range(len(chars) - 1)} or {chars}


def similarity(a: str, b: str) -> float:
    """Share of the shorter message's character bigrams found in the other (overlap
    coefficient): two residents describing one incident at different lengths still match."""
    x, y = _bigrams(a), _bigrams(b)
    return len(x & y) / min(len(x), len(y)) if x and y else 0.0


def _resident_text(ctx: HandlerContext) -> bool:
    ev = ctx.event
    return ev.kind == "message" and ctx.officer is None and bool(ev.text.strip())


async def emergency_first(ctx: HandlerContext) -> bool:
    """The emergency layer: before verification, duty hours and queues, for anyone at all."""
    if not _resident_text(ctx):
        return False
    result: Classification = ctx.classify()
    if not result.emergency:
        return False
    await _emergency(ctx, result)
    return True


async def intake(ctx: HandlerContext) -> bool:
    """Take a resident's message: actionable items become tickets (emergencies came earlier)."""
    ev = ctx.event
    if not _resident_text(ctx):
        return False
    result: Classification = ctx.classify()
    if result.emergency:  # only when the chain was built without emergency_first
        await _emergency(ctx, result)
        return True
    if result.label == "other":
        return False  # chatter: nothing in groups; the greeting answers in private
    if ev.group_id and ctx.group is None:
        return True  # an unknown group: journaled, flagged, no ticket (docs/decisions.md)
    from handlers.verification import is_verified, maybe_remind

    if not await is_verified(ctx.session, ctx.member.id):
        ctx.session.add(
            PendingItem(member_id=ctx.member.id, journal_id=ctx.journal.id, created_at=ctx.now)
        )
        await maybe_remind(ctx)
        return True
    await submit(
        ctx,
        result,
        text=ev.text,
        member=ctx.member,
        channel=ev.channel,
        sender_id=ev.sender_id,
        group=ctx.group,
        script=ctx.script,
    )
    return True


async def _emergency(ctx: HandlerContext, result: Classification) -> None:
    """Safety reply in the same request, a P1 ticket, pages to the duty officer and the leader."""
    ev = ctx.event
    ticket, merged = await _merge_target(
        ctx, result, emergency=True, member=ctx.member, group_id=ev.group_id, text=ev.text
    )
    if ticket is None:
        ticket = await _open(
            ctx,
            result,
            emergency=True,
            text=ev.text,
            member=ctx.member,
            channel=ev.channel,
            sender_id=ev.sender_id,
            group=ctx.group,
            script=ctx.script,
        )
    officer = (
        await ctx.session.get(Officer, ticket.assigned_officer_id)
        if ticket.assigned_officer_id
        else None
    )
    ctx.reply(
        ctx.text("emergency_reply", officer=officer.name if officer else "", code=ticket.code),
        priority=0,
    )
    add_event(
        ctx.session,
        ctx.runtime,
        ticket,
        "emergency_reply",
        now=ctx.now,
        detail="110 safety reply sent",
    )
    from handlers.alerts_chat import link_to_active_alert  # alerts build on intake

    await link_to_active_alert(ctx, ticket)
    out = Out.of(ctx)
    if merged:
        await _attach(ctx, ticket, out)
        return
    router = Router(ctx.session, ctx.runtime.settings.timezone)
    paged: list[Officer] = [officer] if officer else []
    if ticket.station_id:
        leader = await router.leader(ticket.station_id)
        if leader is not None and leader not in paged:
            paged.append(leader)
    resident = await resident_label(ctx.session, ctx.runtime, ctx.member, ticket.script)  # type: ignore[arg-type]
    group = await group_label(ctx.session, ctx.runtime, ticket)
    for target in paged:
        out.to_officer(
            target,
            out.text(
                "officer_emergency_page",
                ticket.script,
                code=ticket.code,  # type: ignore[arg-type]
                category=category_text(ctx.runtime, ticket),
                group=group,
                resident=resident,
                text=ctx.event.text,
            ),
            priority=0,
        )
        add_event(
            ctx.session, ctx.runtime, ticket, "paged", now=ctx.now, detail=f"P1 page to {target.id}"
        )


async def submit(
    ctx: HandlerContext,
    result: Classification,
    *,
    text: str,
    member: Member,
    channel: str,
    sender_id: str,
    group: Group | None,
    script: Script,
) -> Ticket:
    """Merge into an open ticket or open a new one; acknowledge to the resident."""
    ticket, merged = await _merge_target(
        ctx, result, emergency=False, member=member, group_id=group.id if group else None, text=text
    )
    out = Out.of(ctx)
    if merged and ticket is not None:
        await _attach(
            ctx,
            ticket,
            out,
            member=member,
            channel=channel,
            sender_id=sender_id,
            group_id=group.id if group else None,
            text=text,
            script=script,
        )
        return ticket
    ticket = await _open(
        ctx,
        result,
        emergency=False,
        text=text,
        member=member,
        channel=channel,
        sender_id=sender_id,
        group=group,
        script=script,
    )
    officer = (
        await ctx.session.get(Officer, ticket.assigned_officer_id)
        if ticket.assigned_officer_id
        else None
    )
    reporter = TicketReporter(
        ticket_id=ticket.id,
        member_id=member.id,
        channel=channel,
        sender_id=sender_id,
        group_id=group.id if group else None,
        added_at=ctx.now,
    )
    out.to_reporter(
        reporter,
        out.text(
            "ticket_ack",
            script,
            code=ticket.code,
            category=category_text(ctx.runtime, ticket),
            officer=officer.name if officer else "",
        ),
    )
    if officer is not None:
        unclear = (
            out.text("officer_unclear_mark", script, code=ticket.code) if ticket.unclear else ""
        )
        out.to_officer(
            officer,
            out.text(
                "officer_new_ticket",
                script,
                code=ticket.code,
                category=category_text(ctx.runtime, ticket),
                priority=ticket.priority,
                unclear=unclear,
                group=await group_label(ctx.session, ctx.runtime, ticket),
                resident=await resident_label(ctx.session, ctx.runtime, member, script),
                text=text,
            ),
            priority=3 if ticket.priority <= 2 else 5,
        )
        add_event(
            ctx.session, ctx.runtime, ticket, "notified", now=ctx.now, detail=f"to {officer.id}"
        )
    return ticket


async def _open(
    ctx: HandlerContext,
    result: Classification,
    *,
    emergency: bool,
    text: str,
    member: Member,
    channel: str,
    sender_id: str,
    group: Group | None,
    script: Script,
) -> Ticket:
    router = Router(ctx.session, ctx.runtime.settings.timezone)
    # A private message goes to the station of the resident's group, else the county desk.
    routing_group = group
    if routing_group is None:
        _, routing_group = await home_station_of(ctx.session, member)
    station_id = routing_group.station_id if routing_group else None
    assignment = await router.assign(station_id=station_id, group=routing_group, at=ctx.now)
    label = result.label if result.label != "other" else ("help" if emergency else "consultation")
    priority = priority_for(label, emergency)
    ack_due, answer_due = first_deadline(ctx.runtime, priority, ctx.now)
    ticket = Ticket(
        code=await new_code(ctx.session),
        category=label,
        unclear=result.unclear and not emergency,
        emergency=emergency,
        priority=priority,
        status="new",
        escalation_level=0,
        awaiting_satisfaction=False,
        channel=channel,
        group_id=group.id if group else None,
        station_id=station_id or (assignment.officer.station_id if assignment else None),
        reporter_member_id=member.id,
        assigned_officer_id=assignment.officer.id if assignment else None,
        assigned_by="roster" if assignment and assignment.how == "roster" else "fallback",
        text_enc=ctx.runtime.cipher.encrypt(text),  # type: ignore[arg-type]
        created_at=ctx.now,
        updated_at=ctx.now,
        ack_due_at=ack_due,
        answer_due_at=answer_due,
        script=script,
    )
    ticket.next_check_at = next_check(ticket, ctx.runtime.settings.deadlines)
    ctx.session.add(ticket)
    await ctx.session.flush()
    ctx.session.add(
        TicketReporter(
            ticket_id=ticket.id,
            member_id=member.id,
            channel=channel,
            sender_id=sender_id,
            group_id=group.id if group else None,
            added_at=ctx.now,
        )
    )
    add_event(
        ctx.session,
        ctx.runtime,
        ticket,
        "opened",
        now=ctx.now,
        actor="resident",
        detail=f"{label} P{priority} confidence={result.confidence:.2f}"
        + (" unclear" if ticket.unclear else ""),
        note=text,
    )
    if assignment is not None:
        add_event(
            ctx.session,
            ctx.runtime,
            ticket,
            "assigned",
            now=ctx.now,
            detail=f"to {assignment.officer.id} via {assignment.how}",
        )
    return ticket


async def _merge_target(
    ctx: HandlerContext,
    result: Classification,
    *,
    emergency: bool,
    member: Member,
    group_id: str | None,
    text: str,
) -> tuple[Ticket | None, bool]:
    """An open ticket this message belongs to: the same resident's same matter, or the same
    incident reported by several residents of one group within the merge window."""
    settings = ctx.runtime.settings.intake
    label = result.label
    own = await ctx.session.scalars(
        select(Ticket)
        .join(TicketReporter, TicketReporter.ticket_id == Ticket.id)
        .where(
            TicketReporter.member_id == member.id,
            Ticket.status.in_(OPEN_STATUSES),
            Ticket.created_at >= ctx.now - timedelta(seconds=settings.same_resident_window_s),
            Ticket.group_id.is_(None) if group_id is None else Ticket.group_id == group_id,
        )
        .order_by(Ticket.created_at.desc())
    )
    follow_up = timedelta(seconds=settings.merge_window_s)
    for ticket in own.all():
        if ticket.emergency != emergency:
            continue
        if ticket.category == label or emergency:
            return ticket, True
        # A follow-up soon after that talks about the same thing, whatever its label.
        recent = ctx.now - ticket.updated_at <= follow_up
        first = ctx.runtime.cipher.decrypt(ticket.text_enc) or ""
        if recent and (result.unclear or similarity(first, text) >= _FOLLOW_UP_SIMILAR):
            return ticket, True
    if group_id is None:
        return None, False
    others = await ctx.session.scalars(
        select(Ticket)
        .where(
            Ticket.group_id == group_id,
            Ticket.status.in_(OPEN_STATUSES),
            Ticket.created_at >= ctx.now - timedelta(seconds=settings.merge_window_s),
        )
        .order_by(Ticket.created_at.desc())
    )
    for ticket in others.all():
        if emergency and ticket.emergency:
            return ticket, True
        if ticket.category == label and not emergency and not ticket.emergency:
            first = ctx.runtime.cipher.decrypt(ticket.text_enc) or ""
            if similarity(first, text) >= _SIMILAR:
                return ticket, True
    return None, False


async def _attach(
    ctx: HandlerContext,
    ticket: Ticket,
    out: Out,
    *,
    member: Member | None = None,
    channel: str | None = None,
    sender_id: str | None = None,
    group_id: str | None = None,
    text: str | None = None,
    script: Script | None = None,
) -> None:
    """Attach a reporter and their words to an open ticket; tell them and the assignee."""
    member = member or ctx.member
    channel = channel or ctx.event.channel
    sender_id = sender_id or ctx.event.sender_id
    group_id = group_id if group_id is not None else ctx.event.group_id
    text = text or ctx.event.text
    script = script or detect_script(text)
    exists = await ctx.session.scalar(
        select(TicketReporter).where(
            TicketReporter.ticket_id == ticket.id, TicketReporter.member_id == member.id
        )
    )
    reporter = exists or TicketReporter(
        ticket_id=ticket.id,
        member_id=member.id,
        channel=channel,
        sender_id=sender_id,
        group_id=group_id,
        added_at=ctx.now,
    )
    if exists is None:
        ctx.session.add(reporter)
    add_event(
        ctx.session,
        ctx.runtime,
        ticket,
        "merged",
        now=ctx.now,
        actor="resident",
        detail="same resident" if exists else "another reporter",
        note=text,
    )
    officer = (
        await ctx.session.get(Officer, ticket.assigned_officer_id)
        if ticket.assigned_officer_id
        else None
    )
    if not ticket.emergency:
        out.to_reporter(
            reporter,
            out.text(
                "ticket_merged",
                script,
                code=ticket.code,
                category=category_text(ctx.runtime, ticket),
                officer=officer.name if officer else "",
            ),
        )
    if officer is not None:
        out.to_officer(
            officer,
            out.text(
                "officer_merged",
                script,
                code=ticket.code,
                resident=await resident_label(ctx.session, ctx.runtime, member, script),
                text=text,
            ),
        )


async def release_pending(ctx: HandlerContext, member: Member) -> list[Ticket]:
    """Submit every item held for ``member`` while unverified; returns the tickets made."""
    held = (
        await ctx.session.scalars(
            select(PendingItem)
            .where(PendingItem.member_id == member.id, PendingItem.status == "held")
            .order_by(PendingItem.id)
        )
    ).all()
    tickets: list[Ticket] = []
    for item in held:
        journal = await ctx.session.get(InboundEvent, item.journal_id)
        item.status, item.released_at = "released", ctx.now
        if journal is None:
            continue
        payload = ctx.runtime.cipher.decrypt_json(journal.payload_enc)
        text = payload.get("text") or ""
        group = await ctx.session.get(Group, journal.group_id) if journal.group_id else None
        result = ctx.runtime.classifier.classify(text)
        ticket = await submit(
            ctx,
            result,
            text=text,
            member=member,
            channel=journal.channel,
            sender_id=journal.sender_id,
            group=group,
            script=detect_script(text),
        )
        if ticket not in tickets:
            tickets.append(ticket)
    return tickets
