"""Officers' dispute commands in the chat (CONTRACT §5, 三色管控 and 三級調解), both scripts:

- ``定級 #CODE 紅|黃|藍 [理由]``: the risk colour (red pages the station leader at once);
- ``調解 #CODE 記錄``: a mediation session;
- ``協議 #CODE 內容``: the agreement, resolving the case at its level (a photo sent privately
  within the hour is attached to it);
- ``升級 #CODE [理由]``: to the next level (village → station → county);
- ``轉介 #CODE 去向``: referred to a court or another body (what comes after the county);
- ``回訪 #CODE 情況``: a follow-up visit after an agreement; the conflict back reopens the case.

Only the officers who may act on the ticket (their station's subtree) can use them; a resident
typing one is told it is an officer's command.

What a command does, and who may, is bot/services/dispute_service.py (the console's 糾紛台賬
page calls the same functions); this module parses, and words the outcome for the officer in
the chat.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy import select

from bot.services import dispute_service as service
from bot.services.dispute_cases import local_date, word
from bot.services.dispute_service import Outcome
from bot.services.ticket_service import Actor, Refused, officer_actor
from bot.services.tickets import Out, find_ticket
from handlers.commands import clean
from handlers.context import HandlerContext
from models.console import ConsoleAccount
from models.directory import Officer
from models.disputes import DisputeCase, DisputeEvent, record
from models.tickets import Ticket

_CODE = r"[#＃]?\s*(?P<code>[A-Za-z]\d{4,6})"
_COMMANDS = {
    "grade": r"定級|定级",
    "mediate": r"調解|调解",
    "agreement": r"協議|协议",
    "escalate": r"升級|升级",
    "refer": r"轉介|转介",
    "follow_up": r"回訪|回访",
    "withdraw": r"撤回調解|撤回调解",
}
_PATTERN = re.compile(
    rf"^(?P<command>{'|'.join(_COMMANDS.values())})\s*{_CODE}(?:\s*[:：,，]?\s*(?P<text>.*))?$",
    re.S,
)
_COLOURS = {
    "紅": "red",
    "红": "red",
    "red": "red",
    "黃": "yellow",
    "黄": "yellow",
    "yellow": "yellow",
    "藍": "blue",
    "蓝": "blue",
    "blue": "blue",
}
# A photo of the signed agreement, sent privately this soon after 協議, is attached to it.
PHOTO_WINDOW = timedelta(hours=1)


def _name(command: str) -> str:
    return next(name for name, words in _COMMANDS.items() if re.fullmatch(words, command))


async def dispute_commands(ctx: HandlerContext) -> bool:
    """Take a dispute command (officers), or an agreement's photo; other events pass on."""
    ev = ctx.event
    if ev.kind != "message":
        return False
    if ctx.officer is not None and ev.msg_type == "image" and ev.is_private:
        return await _attach_photo(ctx, ctx.officer)
    match = _PATTERN.match(clean(ev.text))
    if match is None:
        return False
    out = Out.of(ctx)
    if ctx.officer is None:
        if ctx.classify().emergency:
            return False  # whatever it starts with, danger is answered first
        ctx.reply(ctx.text("dispute_officers_only", command=match.group("command")), mention=True)
        return True
    officer = ctx.officer
    code = match.group("code").upper()
    ticket = await find_ticket(ctx.session, code)
    if ticket is None:
        out.to_officer(officer, ctx.text("officer_unknown_ticket", code=code))
        return True
    actor = await officer_actor(ctx.session, officer, script=ctx.script)
    text = (match.group("text") or "").strip()
    try:
        message = await _ACTIONS[_name(match.group("command"))](ctx, out, actor, ticket, text)
    except Refused as refused:
        # Nothing changed; the officer hears why, privately, in their script.
        message = _refusal(ctx, refused)
    out.to_officer(officer, message)
    return True


def _refusal(ctx: HandlerContext, refused: Refused) -> str:
    """A refusal of bot/services/dispute_service.py (or the ticket scope's) in the chat's words."""
    values = dict(refused.values)
    if refused.reason == "out_of_scope":
        return ctx.text("officer_out_of_scope", **values)
    if refused.reason in ("not_open", "mediation_ended"):
        return ctx.text(
            f"dispute_{refused.reason}",
            code=values["code"],
            status=ctx.text(f"dispute_status_{values['status']}"),
            action=ctx.text(f"dispute_action_{values['action']}"),
        )
    if refused.reason == "empty_text":
        command = _COMMAND_WORDS[values["action"]][0 if ctx.script == "hant" else 1]
        return ctx.text("dispute_usage", command=command, code=values["code"])
    if refused.reason == "bad_colour" and values.get("colour") == "-":
        return ctx.text("dispute_colour_missing", code=values["code"])  # 定級 #CODE alone
    return ctx.text(f"dispute_{refused.reason}", **values)


# The command's word in each script, for "請寫上內容,例:「調解 #A1023 …」".
_COMMAND_WORDS = {
    "mediate": ("調解", "调解"),
    "agreement": ("協議", "协议"),
    "refer": ("轉介", "转介"),
    "follow_up": ("回訪", "回访"),
    "withdraw": ("撤回調解", "撤回调解"),
}


def _by(officer: Officer) -> str:
    return f"officer:{officer.id}"


def _level(ctx: HandlerContext, case: DisputeCase) -> str:
    return word(ctx.runtime, "level", case.level, ctx.script)


async def _grade(ctx: HandlerContext, out: Out, actor: Actor, ticket: Ticket, text: str) -> str:
    first, _, reason = text.partition(" ")
    colour = _COLOURS.get(first.strip().lower()) or _COLOURS.get(first.strip()[:1])
    done = await service.grade(
        out, actor=actor, ticket=ticket, colour=colour or first.strip(), reason=reason
    )
    colour_word = word(ctx.runtime, "colour", done.case.colour, ctx.script)
    return ctx.text("dispute_graded", code=ticket.code, colour=colour_word)


async def _mediate(ctx: HandlerContext, out: Out, actor: Actor, ticket: Ticket, text: str) -> str:
    done = await service.mediate(out, actor=actor, ticket=ticket, text=text)
    return ctx.text("dispute_mediated", code=ticket.code, level=_level(ctx, done.case))


async def _agreement(ctx: HandlerContext, out: Out, actor: Actor, ticket: Ticket, text: str) -> str:
    done = await service.agreement(out, actor=actor, ticket=ticket, text=text)
    dates = "、".join(local_date(ctx.runtime, at) for at in done.follow_ups) or "-"
    return ctx.text(
        "dispute_resolved_to_officer",
        code=ticket.code,
        level=_level(ctx, done.case),
        follow_ups=dates,
    )


async def _escalate(ctx: HandlerContext, out: Out, actor: Actor, ticket: Ticket, text: str) -> str:
    done = await service.escalate(out, actor=actor, ticket=ticket, reason=text)
    return ctx.text(
        "dispute_escalated_to_officer",
        code=ticket.code,
        level=_level(ctx, done.case),
        deadline=local_date(ctx.runtime, done.case.level_deadline),
    )


async def _refer(ctx: HandlerContext, out: Out, actor: Actor, ticket: Ticket, text: str) -> str:
    await service.refer(out, actor=actor, ticket=ticket, text=text)
    return ctx.text("dispute_referred", code=ticket.code, text=text)


async def _withdraw(ctx: HandlerContext, out: Out, actor: Actor, ticket: Ticket, text: str) -> str:
    await service.withdraw(out, actor=actor, ticket=ticket, text=text)
    return ctx.text("dispute_withdrawn", code=ticket.code, text=text)


async def _follow_up(ctx: HandlerContext, out: Out, actor: Actor, ticket: Ticket, text: str) -> str:
    done: Outcome = await service.follow_up(out, actor=actor, ticket=ticket, text=text)
    case = done.case
    if done.returned:
        return ctx.text(
            "dispute_reopened",
            code=ticket.code,
            level=_level(ctx, case),
            deadline=local_date(ctx.runtime, case.level_deadline),
        )
    following = (
        ctx.text("dispute_next_follow_up", date=local_date(ctx.runtime, case.follow_up_at))
        if case.follow_up_at
        else ctx.text("dispute_no_more_follow_ups")
    )
    return ctx.text("dispute_followed_up", code=ticket.code, next=following)


async def _attach_photo(ctx: HandlerContext, officer: Officer) -> bool:
    """A photo sent privately soon after the officer recorded an agreement — from the chat, or
    from the console under an account linked to them: the signed agreement, attached to that
    case. Other photos pass on."""
    accounts = await ctx.session.scalars(
        select(ConsoleAccount.username).where(ConsoleAccount.officer_id == officer.id)
    )
    keys = [_by(officer), *(f"console:{username}" for username in accounts)]
    latest = await ctx.session.scalar(
        select(DisputeEvent)
        .where(
            DisputeEvent.action == "agreement",
            DisputeEvent.by.in_(keys),
            DisputeEvent.at >= ctx.now - PHOTO_WINDOW,
        )
        .order_by(DisputeEvent.at.desc(), DisputeEvent.id.desc())
        .limit(1)
    )
    if latest is None:
        return False
    case = await ctx.session.get(DisputeCase, latest.dispute_id)
    ticket = await ctx.session.get(Ticket, case.ticket_id) if case else None
    if case is None or ticket is None:
        return False
    where = str(ctx.event.media_url or f"journal:{ctx.journal_id}")
    cipher = ctx.runtime.cipher
    record(ctx.session, case, "photo", now=ctx.now, by=_by(officer), note_enc=cipher.encrypt(where))
    Out.of(ctx).to_officer(officer, ctx.text("dispute_photo_attached", code=ticket.code))
    return True


_ACTIONS: dict[str, Callable[[HandlerContext, Out, Actor, Ticket, str], Awaitable[str]]] = {
    "grade": _grade,
    "mediate": _mediate,
    "agreement": _agreement,
    "escalate": _escalate,
    "refer": _refer,
    "follow_up": _follow_up,
    "withdraw": _withdraw,
}
