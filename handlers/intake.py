"""Intake: the emergency layer first, then classify, hold for verification, merge or open a
ticket, route it to the officer on duty and tell them — all in the event's transaction."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from sqlalchemy import select

from bot.services.deadlines import next_check
from bot.services.dispute_cases import open_for_ticket
from bot.services.routing import Router, home_station_of
from bot.services.tickets import (
    Out,
    add_event,
    category_text,
    clip,
    first_deadline,
    group_label,
    holder_of,
    new_code,
    priority_for,
    resident_label,
)
from bot.texts import detect_script
from handlers.alert_links import answers_active_alert, link_to_active_alert
from handlers.classify import (
    FRAUD_PAID,
    SCAM_CHECK,
    SCAM_SCRIPT,
    Classification,
)
from handlers.context import HandlerContext
from handlers.merges import Item, attach, flood_target, merge_target
from handlers.ratings import awaited_rating, rate
from handlers.safety import FIRST_NUMBER, safety_reply_key
from handlers.verification_support import is_verified, maybe_remind
from models.directory import Group, Officer
from models.journal import InboundEvent
from models.outbox import OutboxMessage, chat_key
from models.people import Member, PendingItem
from models.tickets import Ticket


def _asks_about_a_scam(result: Classification) -> bool:
    asked = result.label == "consultation" and SCAM_CHECK in result.matched
    return asked or SCAM_SCRIPT in result.matched


def _paid_a_scammer(result: Classification) -> bool:
    return result.label == "report" and FRAUD_PAID in result.matched


def _resident_text(ctx: HandlerContext) -> bool:
    ev = ctx.event
    return ev.kind == "message" and ctx.officer is None and bool(ev.text.strip())


def _names_danger(result: Classification) -> bool:
    """Danger named in plain words (a rule of the emergency layer), not only the model's
    reading: a rating's reason is a complaint about how a matter was handled, and the model
    reads "到现在都没人来看过" (nobody has come yet) as a cry for help."""
    return any(concept.startswith("emergency:") for concept in result.matched)


async def emergency_first(ctx: HandlerContext) -> bool:
    """The emergency layer: before verification, duty hours and queues, for anyone at all."""
    if not _resident_text(ctx):
        return False
    result: Classification = ctx.classify()
    if not result.emergency:
        return False
    if await answers_active_alert(ctx):
        return False  # a sighting for the lost-child notice: a clue, not a new emergency
    rating = await awaited_rating(ctx)
    if rating is not None:
        if not rating.text or not _names_danger(ctx.runtime.classifier.classify(rating.text)):
            return False  # a complaint with the rating: rated (resident_commands), not an alarm
        # "不满意 现在又着火了": rated, and the danger in its words answered as any other.
        await rate(ctx, rating.name == "satisfied", rating.code, rating.text)
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
    if _asks_about_a_scam(result):
        # The answer people need now, before any officer or verification: do not pay.
        ctx.reply(ctx.text("scam_warning"), priority=1)
    elif _paid_a_scammer(result):
        # Money already sent can sometimes still be stopped, within hours: say how, at once.
        ctx.reply(ctx.text("fraud_paid_advice"), priority=1)
    if not await is_verified(ctx.session, ctx.member.id):
        # Held with the session's other rows: flushed once for the batch (at its commit, or
        # before a query that reads pending items), not in a statement of its own.
        ctx.session.add(
            PendingItem(member_id=ctx.member.id, journal_id=ctx.journal_id, created_at=ctx.now)
        )
        if not await maybe_remind(ctx, unverified=True) and ev.is_private:
            # Reminded already today: privately, a second matter met silence and read as
            # lost. In a group nothing more is said (the reminder is private, once a day).
            ctx.reply(ctx.text("verify_held_again"))
        return True
    await submit(ctx, result, await _item(ctx))
    return True


async def _item(ctx: HandlerContext) -> Item:
    """The event as a ticket's item, after the photos sent just before it (``media_before``):
    first, in the order sent, and so never clipped off a long message quoted to an officer."""
    item = Item.of(ctx)
    markers = await ctx.media_before()
    return replace(item, text="\n".join((*markers, item.text))) if markers else item


async def _emergency(ctx: HandlerContext, result: Classification) -> None:
    """Safety reply in the same request, a P1 ticket, pages to the duty officer and the leader."""
    item = await _item(ctx)
    ticket = await merge_target(ctx, result, item, emergency=True)
    merged, flooding = ticket is not None, False
    if ticket is None:
        # A danger of its own, unless this sender has raised too many at once (a flood).
        ticket = await flood_target(ctx, item)
        merged = flooding = ticket is not None
    if ticket is None:
        ticket = await _open(ctx, result, item, emergency=True)
    officer = await holder_of(ctx.session, ticket)
    reply_key = safety_reply_key(item.text, result)
    # Joined by a flood, it is another danger all the same: its own safety reply (119, 120…).
    if flooding or not (merged and await _told_here_lately(ctx, ticket)):
        ctx.reply(
            ctx.text(reply_key, officer=officer.name if officer else "", code=ticket.code),
            priority=0,
            urgent_for=ticket.id,
        )
        add_event(
            ctx.session,
            ctx.runtime,
            ticket,
            "emergency_reply",
            now=ctx.now,
            # The number comes first: an SMS page names the same one (bot/services/sms_fallback.py).
            detail=f"{FIRST_NUMBER[reply_key]} safety reply sent",
        )
    await link_to_active_alert(ctx, ticket)
    out = Out.of(ctx)
    if merged:
        await attach(ctx, ticket, out, item)
        return
    paged: list[Officer] = [officer] if officer else []
    if ticket.station_id:
        leader = await Router(ctx.session, ctx.runtime.settings.timezone).head_for(
            ticket.station_id
        )
        if leader is not None and leader not in paged:
            paged.append(leader)
    page = out.text(
        "officer_emergency_page",
        item.script,
        code=ticket.code,
        category=category_text(ctx.runtime, ticket),
        group=await group_label(ctx.session, ctx.runtime, ticket),
        resident=await resident_label(ctx.session, ctx.runtime, item.member, item.script),
        text=clip(item.text),
        number=FIRST_NUMBER[reply_key],
    )
    for target in paged:
        out.to_officer(target, page, priority=0, urgent_for=ticket.id)
        add_event(
            ctx.session, ctx.runtime, ticket, "paged", now=ctx.now, detail=f"P1 page to {target.id}"
        )
    if ticket.category == "dispute":  # a dispute turned violent: red, the leader paged again
        await open_for_ticket(ctx.session, ctx.runtime, ticket, now=ctx.now)


async def _told_here_lately(ctx: HandlerContext, ticket: Ticket) -> bool:
    """Whether the sender got a safety reply about ``ticket`` in this chat within
    ``intake.safety_reply_repeat_s``: one resident's thirty alarms about one fire are one
    matter, and thirty identical replies would queue in front of everyone else's."""
    ev = ctx.event
    chat = chat_key(ev.channel, ev.group_id, None if ev.group_id else ev.sender_id)
    since = ctx.now - timedelta(seconds=ctx.runtime.settings.intake.safety_reply_repeat_s)
    # The same sender: every other resident reporting the fire hears what to do themselves.
    earlier = await ctx.session.scalar(
        select(OutboxMessage.id)
        .join(InboundEvent, InboundEvent.id == OutboxMessage.source_event_id)
        .where(
            OutboxMessage.ticket_id == ticket.id,
            OutboxMessage.chat_key == chat,
            OutboxMessage.created_at >= since,
            InboundEvent.sender_id == ev.sender_id,
        )
        .limit(1)
    )
    return earlier is not None


async def submit(
    ctx: HandlerContext, result: Classification, item: Item, *, alert_id: int | None = None
) -> Ticket:
    """Merge into an open ticket or open a new one; acknowledge to the resident. ``alert_id``:
    a clue for that urgent notice, merged only into the notice's own tickets."""
    out = Out.of(ctx)
    ticket = await merge_target(ctx, result, item, emergency=False, alert_id=alert_id)
    if ticket is not None:
        await attach(ctx, ticket, out, item)
        return ticket
    ticket = await _open(ctx, result, item, emergency=False)
    officer = await holder_of(ctx.session, ticket)
    category = category_text(ctx.runtime, ticket)
    out.to_reporter(
        item.reporter(ticket, ctx.now),
        out.text(
            "ticket_ack",
            item.script,
            code=ticket.code,
            category=category,
            officer=officer.name if officer else "",
        ),
    )
    if officer is not None:
        unclear = (
            out.text("officer_unclear_mark", item.script, code=ticket.code)
            if ticket.unclear
            else ""
        )
        out.to_officer(
            officer,
            out.text(
                "officer_new_ticket",
                item.script,
                code=ticket.code,
                category=category,
                priority=ticket.priority,
                unclear=unclear,
                group=await group_label(ctx.session, ctx.runtime, ticket),
                resident=await resident_label(ctx.session, ctx.runtime, item.member, item.script),
                text=clip(item.text),
            ),
            priority=3 if ticket.priority <= 2 else 5,
        )
        add_event(
            ctx.session, ctx.runtime, ticket, "notified", now=ctx.now, detail=f"to {officer.id}"
        )
    if ticket.category == "dispute":
        await open_for_ticket(ctx.session, ctx.runtime, ticket, now=ctx.now)
    return ticket


async def _open(
    ctx: HandlerContext, result: Classification, item: Item, *, emergency: bool
) -> Ticket:
    # A private message goes to the station of the resident's group, else the county desk.
    routing_group = item.group
    if routing_group is None:
        _, routing_group = await home_station_of(ctx.session, item.member)
    station_id = routing_group.station_id if routing_group else None
    router = Router(ctx.session, ctx.runtime.settings.timezone)
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
        channel=item.channel,
        group_id=item.group_id,
        station_id=station_id or (assignment.officer.station_id if assignment else None),
        reporter_member_id=item.member.id,
        assigned_officer_id=assignment.officer.id if assignment else None,
        assigned_by="roster" if assignment and assignment.how == "roster" else "fallback",
        text_enc=ctx.runtime.cipher.encrypt(item.text),
        created_at=ctx.now,
        updated_at=ctx.now,
        ack_due_at=ack_due,
        answer_due_at=answer_due,
        script=item.script,
    )
    ticket.next_check_at = next_check(ticket, ctx.runtime.settings.deadlines)
    ctx.session.add(ticket)
    await ctx.session.flush()
    ctx.session.add(item.reporter(ticket, ctx.now))
    detail = f"{label} P{priority} confidence={result.confidence:.2f}"
    add_event(
        ctx.session,
        ctx.runtime,
        ticket,
        "opened",
        now=ctx.now,
        actor="resident",
        detail=detail + (" unclear" if ticket.unclear else ""),
        note=item.text,
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
    for pending in held:
        journal = await ctx.session.get(InboundEvent, pending.journal_id)
        pending.status, pending.released_at = "released", ctx.now
        if journal is None:
            continue
        payload = ctx.runtime.cipher.decrypt_json(journal.payload_enc)
        text = payload.get("text") or ""
        group = await ctx.session.get(Group, journal.group_id) if journal.group_id else None
        # The photo under the words, and those sent just before them, go along as they would
        # have for a verified writer (they were dropped: the officer read "这是…" alone).
        said = "\n".join((*await ctx.media_before(journal), ctx.words(payload)))
        item = Item(said, member, journal.channel, journal.sender_id, group, detect_script(text))
        ticket = await submit(ctx, ctx.runtime.classifier.classify(text), item)
        if ticket not in tickets:
            tickets.append(ticket)
    return tickets
