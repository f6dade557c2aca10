"""Residents about their tickets: ``查詢 #CODE``, the satisfaction answer (handlers/ratings.py),
and follow-ups that reach the officer they are talking with (handlers/forwarding.py):
``#CODE 內容``, a private reply after an officer's answer, a reporter's update on their alarm,
a neighbour's ``#CODE 內容`` about a matter of their group."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.tickets import (
    category_text,
    find_ticket,
    holder_of,
    open_reported_by,
)
from handlers.alert_links import more_than_chatter
from handlers.classify import normalise
from handlers.commands import clean, parse
from handlers.context import CAPTIONED, HandlerContext
from handlers.forwarding import forward, last_answer, reply_about
from handlers.ratings import hint_rating, rate
from handlers.safety import goes_on
from handlers.similarity import similarity
from handlers.status_questions import asks_after_own_matter
from models.base import core
from models.people import GroupMember
from models.tickets import OPEN_STATUSES, Ticket, TicketEvent, TicketReporter

_PUNCT = re.compile(r"[\s\W_]+")
# Share of the alarm's content bigrams an update must repeat when it says no status word.
_ABOUT_SIMILAR = 0.2
# How long after an officer's answer a resident's private message is taken as their reply.
FOLLOW_UP_WINDOW = timedelta(hours=24)


async def resident_commands(ctx: HandlerContext) -> bool:
    """``查詢 #CODE`` shows status to the ticket's reporters; 滿意/不滿意 after a close."""
    if ctx.event.kind != "message" or ctx.officer is not None:
        return False
    command = parse(ctx.event.text)
    if command is None:
        if _QUERY_WORD.match(clean(ctx.event.text)):
            # "查询 #zzzzz": a query mistyped, not words for whatever ticket is open (it was
            # forwarded to an officer as the resident's reply to another matter).
            ctx.reply(ctx.text("query_usage"))
            return True
        return await hint_rating(ctx) or await _status_question(ctx)
    if command.name == "query":
        for code in command.codes[:_QUERY_MAX]:
            await _query(ctx, code)
        if not command.codes:
            await _query_open(ctx)
        return True
    if command.name in ("satisfied", "unsatisfied"):
        return await rate(ctx, command.name == "satisfied", command.code, command.text)
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


# Codes answered from one 查詢; more are ignored (one reply each: a list of fifty is spam).
_QUERY_MAX = 5
# A query for a code that is not one ("查询 #zzzzz"); "查询 身份证进度" is a question.
_QUERY_WORD = re.compile(r"^(?:查詢|查询|查)\s*[#＃]")


async def _query_open(ctx: HandlerContext) -> None:
    """``查詢`` alone: the sender's open matters, urgent ones first, then newest; how many
    more there are when they do not all fit (five of eight were shown without a word). In a
    group only that group's, and a line that the rest may be asked about privately, said to
    everyone alike: it neither counts nor names them."""
    open_ones = await _open_here(ctx)
    if not open_ones:
        private = ctx.event.is_private
        ctx.reply(ctx.text("query_none_open" if private else "query_none_open_here"))
        return
    await _list(ctx, open_ones)


async def _status_question(ctx: HandlerContext) -> bool:
    """A question after one's own matter ("我反映的问题有结果了吗") from a resident with open
    matters (in a group: of that group) is answered as ``查詢`` is, and opens nothing: each
    became a consultation of its own, and the resident heard nothing of the matter they asked
    about. Without such matters it is a message like any other."""
    text = clean(ctx.event.text)
    if not ctx.event.text.strip() or _NEW_MATTER.match(text) or not asks_after_own_matter(text):
        return False
    open_ones = await _open_here(ctx)
    if open_ones:
        await _list(ctx, open_ones)
    return bool(open_ones)


async def _open_here(ctx: HandlerContext) -> Sequence[Ticket]:
    """The sender's open matters that may be named where they wrote: urgent first, then newest;
    in a group only that group's."""
    query = open_reported_by(ctx.member.id)
    if not ctx.event.is_private:
        query = query.where(Ticket.group_id == ctx.event.group_id)
    order = (Ticket.priority, Ticket.created_at.desc(), Ticket.id.desc())
    return (await ctx.session.scalars(query.order_by(*order))).all()


async def _list(ctx: HandlerContext, open_ones: Sequence[Ticket]) -> None:
    """The status of the first few of ``open_ones``, how many more, and in a group where to ask
    about the rest."""
    for ticket in open_ones[:_QUERY_MAX]:
        await _query(ctx, ticket.code)
    if len(open_ones) > _QUERY_MAX:
        ctx.reply(ctx.text("query_more", count=len(open_ones) - _QUERY_MAX))
    if not ctx.event.is_private:
        ctx.reply(ctx.text("query_private_hint"))


async def _query(ctx: HandlerContext, code: str) -> None:
    ticket = await find_ticket(ctx.session, code)
    # Only the people who reported it learn anything about it.
    if ticket is None or not await _is_reporter(ctx, ticket):
        ctx.reply(ctx.text("ticket_not_found", code=code))
        return
    officer = await holder_of(ctx.session, ticket)
    created = ticket.created_at.astimezone(ZoneInfo(ctx.runtime.settings.timezone)).strftime(
        "%Y-%m-%d %H:%M"
    )
    status = ctx.text(
        "ticket_status",
        code=ticket.code,
        category=category_text(ctx.runtime, ticket, ctx.script),
        status=ctx.text(f"status_{ticket.status}"),
        officer=officer.name if officer else "-",
        created=created,
    )
    reply_about(ctx, ticket, status)


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
            reply_about(ctx, ticket, ctx.text("followup_closed", code=ticket.code))
            return True
        await forward(ctx, ticket, command.text)
        return True
    if command is None and (_an_update(ctx) or goes_on(normalise(ev.text))):
        emergency = await _own_emergency_here(ctx)
        if emergency is not None:
            # "孩子找到了!!谢谢大家", "那人往菜市场跑了" from the resident who raised the alarm,
            # in the chat they raised it in: the officer on the way needs it, before any check
            # of who they are (it is no matter of its own, and was held for verification), and
            # before an older conversation (privately it went to a ticket answered yesterday).
            await forward(ctx, emergency, ctx.words())
            return True
    if command is not None:
        return False  # 滿意, 查詢 and the like are commands, not replies
    if not ev.is_private:
        asked = await _asked_here(ctx)
        if asked is None:
            return False
        await forward(ctx, asked, ctx.words())
        return True
    ticket = await _conversation(ctx)
    if ticket is None:
        return False
    await forward(ctx, ticket, ctx.words())
    return True


async def _neighbours_word(ctx: HandlerContext, ticket: Ticket, text: str) -> bool:
    """``#B0020 我好像看到过有人推走一辆电动车``: a neighbour answers the matter whose code was
    posted in their group. The words reach its officer as a clue, not as a new matter, and the
    neighbour is told so. About another group's matter, a closed one, or a bare 谢谢, the
    message stays ordinary (a non-reporter learns nothing about a ticket they could not see)."""
    if ticket.status not in OPEN_STATUSES or ticket.group_id is None:
        return False
    if _bare_thanks(text) or not await _sees_group(ctx, ticket.group_id):
        return False
    await forward(ctx, ticket, text, neighbour=True)
    return True


# Thanks, OK and laughter, and the words that go with them (大家, 李警官, 了): what a message
# addressed with a code may say and still tell its officer nothing.
_THANKS = re.compile(
    r"(?:谢谢|谢啦|谢了|多谢|感谢|辛苦|好的|好滴|好|收到|嗯|哦|噢|ok|okay|明白|知道|哈|呵"
    r"|大家|您|你们|你|[\u4e00-\u9fff]?(?:警官|所长)|民警|了|啦|呀|啊)+"
)


def _bare_thanks(text: str) -> bool:
    """Whether words after a code are only thanks or an OK (谢谢, 好的, 收到, 嗯, with their
    punctuation and emoji). Anything more is for the officer: "好的 我明天上午过去" from a
    reporter who had unbound, and "路灯已经修好了,谢谢", were dropped as chatter."""
    said = _PUNCT.sub("", normalise(text))
    return _THANKS.fullmatch(said) is not None or not said


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
    哈哈/谢谢/好的: what a reporter adds about their alarm."""
    result = ctx.classify()
    return (
        result.label == "other"
        and not result.emergency
        and more_than_chatter(result, ctx.event.text)
    )


# What people say of how an alarm turned out or goes on: found, safe, out, gone, caught, come,
# still, again, bigger.
_STATUS = re.compile(
    r"找到|没事|安全|灭了|扑灭|出来了|走了|跑了|抓|带走|来了|到了|送医|醒了|还在|又|更大|越来越"
    r"|不见|报警了|打了110|已经"
)


def _about(ctx: HandlerContext, alarm: Ticket) -> bool:
    """Whether an update speaks of the alarm: how it turned out or goes on (孩子找到了, 火灭了,
    人还在里面), or the same things as the alarm; the weather is not (a newcomer's trial found
    "今天天气真冷 哈哈" forwarded to the officer as news of a fight)."""
    said = normalise(ctx.event.text)
    if _STATUS.search(said):
        return True
    alarm_text = ctx.runtime.cipher.decrypt(alarm.text_enc) or ""
    return similarity(alarm_text, ctx.event.text) >= _ABOUT_SIMILAR


async def _own_emergency_here(ctx: HandlerContext) -> Ticket | None:
    """The sender's open emergency in this chat (the group, or privately), raised within the
    merge window, that the update speaks of (:func:`_about`): the one naming the same things,
    else the latest when the update only says how things turned out. "后山的火已经灭了" went
    to the same resident's later alarm about his father fainting, not to the fire."""
    if ctx.reported_emergency_lately is False:
        return None  # the batch read it for every group sender at once: none
    window = timedelta(seconds=ctx.runtime.settings.intake.merge_window_s)
    group_id = ctx.event.group_id
    alarms = (
        await ctx.session.scalars(
            open_reported_by(ctx.member.id)
            .where(
                Ticket.emergency.is_(True),
                Ticket.group_id.is_(None) if group_id is None else Ticket.group_id == group_id,
                Ticket.created_at >= ctx.now - window,
            )
            .order_by(Ticket.created_at.desc(), Ticket.id.desc())
            .limit(5)
        )
    ).all()
    for alarm in alarms:
        if similarity(ctx.runtime.cipher.decrypt(alarm.text_enc) or "", ctx.event.text) >= (
            _ABOUT_SIMILAR
        ):
            return alarm
    latest = alarms[0] if alarms else None
    return latest if latest is not None and _about(ctx, latest) else None


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


# In a group, how long after an officer asked a reporter something there their next words are
# taken as the answer (the officer asked "是哪一根电杆?", they wrote "路口那根 靠小卖部的",
# which opened a ticket of its own while the question went unanswered).
GROUP_ANSWER_WINDOW = timedelta(hours=2)


async def _asked_here(ctx: HandlerContext) -> Ticket | None:
    """The open ticket this group message answers: one the sender reported in this group whose
    officer's latest answer, within the window, asked something and has had no words from them
    since. Only their first words after the question: the group's chatter is no reply, and
    a matter told later is a matter of its own (docs/decisions.md)."""
    answered_lately = ctx.answered_lately
    if answered_lately is None:
        window = ctx.runtime.settings.intake.merge_window_s
        who, _ = await lately_among(ctx.session, [ctx.member.id], ctx.now, window)
        answered_lately = bool(who)
    if not answered_lately or _NEW_MATTER.match(clean(ctx.event.text)):
        return None
    asked = await ctx.session.scalars(
        open_reported_by(ctx.member.id)
        .where(
            TicketReporter.group_id == ctx.event.group_id,
            Ticket.answered_at >= ctx.now - GROUP_ANSWER_WINDOW,
        )
        .order_by(Ticket.answered_at.desc(), Ticket.id.desc())
    )
    for ticket in asked.all():
        last = await last_answer(ctx, ticket)
        if last is None or last.note_enc is None:
            continue
        if not _ASKS.search(ctx.runtime.cipher.decrypt(last.note_enc) or ""):
            continue
        told_since = await ctx.session.scalar(
            select(TicketEvent.id)
            .where(
                TicketEvent.ticket_id == ticket.id,
                TicketEvent.kind == "followup",
                TicketEvent.at >= last.at,
            )
            .limit(1)
        )
        if told_since is None:
            return ticket
    return None


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
        last = await last_answer(ctx, ticket)
        answer = ctx.runtime.cipher.decrypt(last.note_enc) if last and last.note_enc else ""
        if answer and _ASKS.search(answer):
            return ticket
    if answered and ctx.classify().label == "other":
        return answered[0]
    return None


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
    await forward(ctx, ticket, what)
    return True
