"""Residents about their tickets: ``查詢 #CODE``, the satisfaction answer, and follow-ups that
reach the officer (``#CODE 內容``, or privately after an officer's answer; a neighbour's
``#CODE 內容`` about a matter of their group)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.deadlines import next_check
from bot.services.routing import Router
from bot.services.tickets import (
    Out,
    add_event,
    category_text,
    clip,
    find_ticket,
    first_deadline,
    open_reported_by,
    resident_label,
)
from handlers.alert_links import more_than_chatter
from handlers.commands import clean, parse
from handlers.context import CAPTIONED, HandlerContext
from models.base import core
from models.directory import Officer
from models.people import GroupMember
from models.tickets import OPEN_STATUSES, Ticket, TicketEvent, TicketReporter

# How long after an officer's answer a resident's private message is taken as their reply.
FOLLOW_UP_WINDOW = timedelta(hours=24)


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
        return await _satisfaction(ctx, command.name == "satisfied", command.code, command.text)
    if command.name in _OFFICERS_ONLY:
        # "結案 #E2115 已處理" from a resident is no matter to open a ticket for.
        ctx.reply(ctx.text("officer_command_from_resident"))
        return True
    return False


# Officer commands (CONTRACT §5) that a resident may type by mistake; #CODE with words is a
# resident's own follow-up (resident_followups) and stays theirs.
_OFFICERS_ONLY = {"ack", "close", "transfer", "classify", "todo", "contact"}


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
            category=category_text(ctx.runtime, ticket, ctx.script),
            status=ctx.text(f"status_{ticket.status}"),
            officer=officer.name if officer else "-",
            created=created,
        )
    )


async def _satisfaction(
    ctx: HandlerContext, satisfied: bool, code: str | None, reason: str = ""
) -> bool:
    """滿意/不滿意 (with or without a code, and words after it: the resident's reason, kept in
    the timeline and, when unsatisfied, shown to the leader who takes the ticket over)."""
    query = (
        select(Ticket)
        .join(TicketReporter, TicketReporter.ticket_id == Ticket.id)
        .where(TicketReporter.member_id == ctx.member.id, Ticket.awaiting_satisfaction.is_(True))
        .order_by(Ticket.closed_at.desc())
    )
    if code:
        query = query.where(Ticket.code == code)
    ticket = await ctx.session.scalar(query)
    if ticket is None and code:
        return await _not_to_rate(ctx, code)
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
        note=reason or None,
    )
    if satisfied:
        ctx.reply(ctx.text("satisfaction_thanks", code=ticket.code))
        # "满意 另外我家门口又被偷了": the rest is a matter of its own, for intake to take.
        return not (reason and ctx.classify().label != "other")
    await _reopen_to_leader(ctx, ticket, reason)
    return True


async def _reopen_to_leader(ctx: HandlerContext, ticket: Ticket, reason: str) -> None:
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
                code=ticket.code,
                category=category_text(ctx.runtime, ticket),
                officer=previous.name if previous else "-",
                text=clip(ctx.runtime.cipher.decrypt(ticket.text_enc) or ""),
                reason=out.text("reopened_reason", ticket.script, reason=clip(reason))
                if reason
                else "",
            ),
        )


async def resident_followups(ctx: HandlerContext) -> bool:
    """A reporter's words about their own open ticket reach its officer.

    ``#CODE 內容`` from one of the ticket's reporters, in a group or privately; and, in a
    private chat, any message within a day of an officer's answer to one of their tickets
    (the officer asked "are you safe now?", the resident answers "安全了"). Without this the
    conversation would end at the officer's first message. Emergencies were handled before
    this. ``#CODE 內容`` from a neighbour is their clue (:func:`_neighbours_word`); otherwise
    ``#CODE`` from anyone else stays an ordinary message (CONTRACT §5)."""
    ev = ctx.event
    if ev.kind != "message" or ctx.officer is not None:
        return False
    if ev.is_private and _attachment(ctx) is not None and not _captions_a_matter(ctx):
        return await _forward_attachment(ctx)
    if not ev.text.strip():
        return False
    command = parse(ev.text)
    if command is not None and command.name == "answer" and command.code:
        ticket = await find_ticket(ctx.session, command.code)
        if ticket is None:
            return False
        if not await _is_reporter(ctx, ticket):
            return await _neighbours_word(ctx, ticket, command.text)
        if ticket.status not in OPEN_STATUSES:
            ctx.reply(ctx.text("followup_closed", code=ticket.code))
            return True
        await _forward(ctx, ticket, command.text)
        return True
    if not ev.is_private and command is None and _an_update(ctx):
        emergency = await _own_emergency_here(ctx)
        if emergency is not None:
            # "孩子找到了!!谢谢大家" from the resident who raised the alarm: the officer on
            # the way needs it, and nothing else would tell them (it is no matter of its own).
            await _forward(ctx, emergency, ctx.words())
            return True
    if not ev.is_private or command is not None:
        return False  # 滿意, 查詢 and the like are commands, not replies
    ticket = await _conversation(ctx)
    if ticket is None:
        return False
    await _forward(ctx, ticket, ctx.words())
    return True


async def _neighbours_word(ctx: HandlerContext, ticket: Ticket, text: str) -> bool:
    """``#B0020 我好像看到过有人推走一辆电动车``: a neighbour answers the matter whose code was
    posted in their group. The words reach its officer as a clue, not as a new matter, and the
    neighbour is told so. About another group's matter, a closed one, or a bare 谢谢, the
    message stays ordinary (a non-reporter learns nothing about a ticket they could not see)."""
    if ticket.status not in OPEN_STATUSES or ticket.group_id is None:
        return False
    if not more_than_chatter(ctx.classify(), text) or not await _sees_group(ctx, ticket.group_id):
        return False
    await _forward(ctx, ticket, text, neighbour=True)
    return True


async def _sees_group(ctx: HandlerContext, group_id: str) -> bool:
    """Whether the sender writes in ``group_id``, or (privately) is one of its known members."""
    ev = ctx.event
    if not ev.is_private:
        return ev.group_id == group_id
    member = await ctx.session.scalar(
        select(GroupMember.id).where(
            GroupMember.group_id == group_id, GroupMember.member_id == ctx.member.id
        )
    )
    return member is not None


def _an_update(ctx: HandlerContext) -> bool:
    """Words that open nothing of their own (label ``other``) and say more than a bare
    哈哈/谢谢/好的: in a group, what a reporter adds about their alarm."""
    result = ctx.classify()
    return (
        result.label == "other"
        and not result.emergency
        and more_than_chatter(result, ctx.event.text)
    )


async def _own_emergency_here(ctx: HandlerContext) -> Ticket | None:
    """The sender's open emergency in this group, raised within the merge window."""
    if ctx.reported_emergency_lately is False:
        return None  # the batch read it for every group sender at once: none
    window = timedelta(seconds=ctx.runtime.settings.intake.merge_window_s)
    return await ctx.session.scalar(
        open_reported_by(ctx.member.id)
        .where(
            Ticket.emergency.is_(True),
            Ticket.group_id == ctx.event.group_id,
            Ticket.created_at >= ctx.now - window,
        )
        .order_by(Ticket.created_at.desc(), Ticket.id.desc())
        .limit(1)
    )


def _captions_a_matter(ctx: HandlerContext) -> bool:
    """A photo, video or file whose caption is a matter of its own (这个人偷了我家电动车):
    read like a text message, not passed on as an attachment to whatever ticket is open."""
    ev = ctx.event
    return ev.msg_type in CAPTIONED and bool(ev.text.strip()) and ctx.classify().label != "other"


# An officer's answer that asks the resident something: a question mark, 嗎/呢 at the end of a
# sentence, or a request for details.
_ASKS = re.compile(
    r"[?？]|[吗嗎呢](?=[。.!！\s]|$)|請問|请问|請提供|请提供|請發|请发|告訴我|告诉我"
)


# A resident opening another matter: "另外, …", "还有一件事 …".
_NEW_MATTER = re.compile(r"^\s*(?:另外|還有一件事|还有一件事|還有個事|还有个事|順便|顺便|再反映)")


# What a batch reads at once of its senders' open tickets (bot/dispatcher.py, ``Batch``): who
# has one an officer answered since :answered_since (the follow-up window: their private
# messages may answer the officer), and who raised an emergency since :alarm_since (the merge
# window: what they add in its group is an update for its officer).
_LATELY_AMONG = (
    select(
        TicketReporter.member_id,
        (Ticket.answered_at >= bindparam("answered_since")).label("answered"),
        and_(Ticket.emergency.is_(True), Ticket.created_at >= bindparam("alarm_since")).label(
            "alarmed"
        ),
    )
    .join(Ticket, Ticket.id == TicketReporter.ticket_id)
    .where(
        TicketReporter.member_id.in_(bindparam("member_ids", expanding=True)),
        Ticket.status.in_(OPEN_STATUSES),
        or_(
            Ticket.answered_at >= bindparam("answered_since"),
            and_(Ticket.emergency.is_(True), Ticket.created_at >= bindparam("alarm_since")),
        ),
    )
)


async def lately_among(
    session: AsyncSession, member_ids: Sequence[int], now: datetime, merge_window_s: float
) -> tuple[set[int], set[int]]:
    """Of ``member_ids``: those with an open ticket an officer answered within the follow-up
    window, and those who raised an emergency still open within the merge window."""
    if not member_ids:
        return set(), set()
    # Flushed first: a ticket or an answer handled earlier in the transaction counts.
    rows = await (await core(session, flush=(Ticket, TicketReporter))).execute(
        _LATELY_AMONG,
        {
            "member_ids": sorted(member_ids),
            "answered_since": now - FOLLOW_UP_WINDOW,
            "alarm_since": now - timedelta(seconds=merge_window_s),
        },
    )
    answered: set[int] = set()
    alarmed: set[int] = set()
    for member_id, was_answered, was_alarmed in rows:
        if member_id is not None and was_answered:
            answered.add(member_id)
        if member_id is not None and was_alarmed:
            alarmed.add(member_id)
    return answered, alarmed


async def _conversation(ctx: HandlerContext) -> Ticket | None:
    """The open ticket a private message answers, if it answers one: of the tickets an officer
    answered within the window, the latest whose answer asked the resident something (the
    officer asked "是幾路公交車?", the resident writes "23路"); failing that, for chat ("好的,
    謝謝"), the latest answered. A new matter (another label after an answer that asked
    nothing, or one announced with "另外…") becomes a ticket of its own."""
    if _NEW_MATTER.match(clean(ctx.event.text)):
        return None
    since = ctx.now - FOLLOW_UP_WINDOW
    # Most private messages answer nothing: the batch knows it for most senders (one query
    # for all of them); otherwise a narrow Core query on the connection says so before the
    # ORM loads any ticket (it cost 15% of processing when it loaded them for all).
    answered_lately = ctx.answered_lately
    if answered_lately is None:
        window = ctx.runtime.settings.intake.merge_window_s
        who, _ = await lately_among(ctx.session, [ctx.member.id], ctx.now, window)
        answered_lately = bool(who)
    if not answered_lately:
        return None
    answered = (
        await ctx.session.scalars(
            open_reported_by(ctx.member.id)
            .where(Ticket.answered_at >= since)
            .order_by(Ticket.answered_at.desc(), Ticket.id.desc())
        )
    ).all()
    for ticket in answered:
        last = await _last_answer(ctx, ticket)
        answer = ctx.runtime.cipher.decrypt(last.note_enc) if last and last.note_enc else ""
        if answer and _ASKS.search(answer):
            return ticket
    if answered and ctx.classify().label == "other":
        return answered[0]
    return None


async def _not_to_rate(ctx: HandlerContext, code: str) -> bool:
    """``不滿意 #CODE`` about a ticket of one's own that asks for no rating: still open, the
    officer hears it (a follow-up); rated already, the resident is told. Before, nothing
    answered it at all. Someone else's code stays an ordinary message."""
    ticket = await ctx.session.scalar(
        select(Ticket)
        .join(TicketReporter, TicketReporter.ticket_id == Ticket.id)
        .where(TicketReporter.member_id == ctx.member.id, Ticket.code == code)
    )
    if ticket is None:
        return False
    if ticket.status in OPEN_STATUSES:
        await _forward(ctx, ticket, ctx.event.text.strip())
    else:
        ctx.reply(ctx.text("satisfaction_already", code=ticket.code))
    return True


# How long after reporting a photo or a location sent privately belongs with the report.
ATTACH_WINDOW = timedelta(hours=1)


def _attachment(ctx: HandlerContext) -> str | None:
    """What a private message carries besides words: a photo, a video, a file, a location, a
    link, or a voice message WeChat did not turn into text; None for words."""
    ev = ctx.event
    if ev.msg_type in ("image", "video", "file", "location", "link"):
        return ev.msg_type
    if ev.msg_type == "voice" and not ev.text.strip():
        return "voice"
    return None


async def _forward_attachment(ctx: HandlerContext) -> bool:
    """A photo or location sent privately goes to the officer of the ticket it belongs to: the
    one whose officer is talking with the resident, or one they reported within the hour (a
    fire, then where it is). Otherwise the greeting says to write in words."""
    ticket = await _conversation(ctx)
    if ticket is None:
        ticket = await ctx.session.scalar(
            open_reported_by(ctx.member.id)
            .where(Ticket.created_at >= ctx.now - ATTACH_WINDOW)
            .order_by(Ticket.created_at.desc(), Ticket.id.desc())
            .limit(1)
        )
    if ticket is None:
        return False
    ev = ctx.event
    what = ctx.text(f"attachment_{_attachment(ctx)}", label=ev.text.strip(), url=ev.media_url or "")
    what = " ".join(what.split())  # a photo without a caption: no double space
    await _forward(ctx, ticket, what)
    return True


async def _last_answer(ctx: HandlerContext, ticket: Ticket) -> TicketEvent | None:
    return await ctx.session.scalar(
        select(TicketEvent)
        .where(TicketEvent.ticket_id == ticket.id, TicketEvent.kind == "answered")
        .order_by(TicketEvent.at.desc(), TicketEvent.id.desc())
        .limit(1)
    )


async def _talking_officer(ctx: HandlerContext, ticket: Ticket) -> Officer | None:
    """The officer the resident is talking with: whoever answered last (any officer may answer
    a ticket), else the one it is assigned to."""
    last = await _last_answer(ctx, ticket)
    if last is not None and last.actor.startswith("officer:"):
        officer = await ctx.session.get(Officer, last.actor.removeprefix("officer:"))
        if officer is not None:
            return officer
    if ticket.assigned_officer_id is None:
        return None
    return await ctx.session.get(Officer, ticket.assigned_officer_id)


async def _forward(
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
    officer = await _talking_officer(ctx, ticket)
    if officer is None:
        ctx.reply(
            ctx.text("neighbour_note_kept" if neighbour else "followup_noted", code=ticket.code)
        )
        return
    out = Out.of(ctx)
    out.to_officer(
        officer,
        out.text(
            "officer_neighbour_note" if neighbour else "officer_followup",
            ctx.script,
            code=ticket.code,
            resident=await resident_label(ctx.session, ctx.runtime, ctx.member, ctx.script),
            text=clip(text),
        ),
    )
    forwarded = "neighbour_note_forwarded" if neighbour else "followup_forwarded"
    ctx.reply(ctx.text(forwarded, code=ticket.code, officer=officer.name))
