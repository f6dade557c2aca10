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
"""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from bot.dispatcher import HandlerContext
from handlers.commands import clean
from handlers.dispute_cases import (
    conflict_returned,
    level_deadlines,
    local_date,
    open_for_ticket,
    page_red,
    tell_level_change,
    word,
)
from handlers.ticket_service import officer_actor
from handlers.tickets import Out, add_event, find_ticket, reporters
from models.directory import Officer
from models.disputes import (
    DisputeCase,
    DisputeEvent,
    follow_up,
    grade,
    move_up,
    next_level,
    record,
    refer,
    resolve,
)
from models.tickets import Ticket

_CODE = r"[#＃]?\s*(?P<code>[A-Za-z]\d{4,6})"
_COMMANDS = {
    "grade": r"定級|定级",
    "mediate": r"調解|调解",
    "agreement": r"協議|协议",
    "escalate": r"升級|升级",
    "refer": r"轉介|转介",
    "follow_up": r"回訪|回访",
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
    if not actor.scope.admits(ticket):  # the same rule as every ticket action
        out.to_officer(officer, ctx.text("officer_out_of_scope", code=ticket.code))
        return True
    if ticket.category != "dispute":
        out.to_officer(officer, ctx.text("dispute_not_a_dispute", code=ticket.code))
        return True
    case = await open_for_ticket(ctx.session, ctx.runtime, ticket, now=ctx.now)
    text = (match.group("text") or "").strip()
    name = _name(match.group("command"))
    await _ACTIONS[name](ctx, out, officer, ticket, case, text)
    return True


def _by(officer: Officer) -> str:
    return f"officer:{officer.id}"


def _enc(ctx: HandlerContext, text: str) -> bytes | None:
    return ctx.runtime.cipher.encrypt(text) if text else None


def _still_open(
    ctx: HandlerContext, out: Out, officer: Officer, ticket: Ticket, case: DisputeCase, action: str
) -> bool:
    if case.status == "open":
        return True
    out.to_officer(
        officer,
        ctx.text(
            "dispute_not_open",
            code=ticket.code,
            status=ctx.text(f"dispute_status_{case.status}"),
            action=ctx.text(f"dispute_action_{action}"),
        ),
    )
    return False


def _needs_text(
    ctx: HandlerContext, out: Out, officer: Officer, ticket: Ticket, command: str, text: str
) -> bool:
    if text:
        return True
    out.to_officer(officer, ctx.text("dispute_usage", command=command, code=ticket.code))
    return False


async def _grade(
    ctx: HandlerContext, out: Out, officer: Officer, ticket: Ticket, case: DisputeCase, text: str
) -> None:
    first, _, reason = text.partition(" ")
    colour = _COLOURS.get(first.strip().lower()) or _COLOURS.get(first.strip()[:1])
    if colour is None:
        out.to_officer(
            officer, ctx.text("dispute_bad_colour", colour=first or "-", code=ticket.code)
        )
        return
    before = grade(
        ctx.session,
        case,
        colour,
        now=ctx.now,
        by=_by(officer),
        reason_enc=_enc(ctx, reason.strip()),
    )
    add_event(
        ctx.session,
        ctx.runtime,
        ticket,
        "graded",
        now=ctx.now,
        actor=_by(officer),
        detail=f"{before} -> {colour}",
    )
    out.to_officer(
        officer,
        ctx.text(
            "dispute_graded",
            code=ticket.code,
            colour=word(ctx.runtime, "colour", colour, ctx.script),
        ),
    )
    if colour == "red" and before != "red" and case.status == "open":
        await page_red(ctx.session, ctx.runtime, case, ticket, now=ctx.now)


async def _mediate(
    ctx: HandlerContext, out: Out, officer: Officer, ticket: Ticket, case: DisputeCase, text: str
) -> None:
    if not _still_open(ctx, out, officer, ticket, case, "mediate"):
        return
    if not _needs_text(ctx, out, officer, ticket, "調解" if ctx.script == "hant" else "调解", text):
        return
    record(ctx.session, case, "mediated", now=ctx.now, by=_by(officer), note_enc=_enc(ctx, text))
    out.to_officer(
        officer,
        ctx.text(
            "dispute_mediated",
            code=ticket.code,
            level=word(ctx.runtime, "level", case.level, ctx.script),
        ),
    )


async def _agreement(
    ctx: HandlerContext, out: Out, officer: Officer, ticket: Ticket, case: DisputeCase, text: str
) -> None:
    if not _still_open(ctx, out, officer, ticket, case, "agreement"):
        return
    if not _needs_text(ctx, out, officer, ticket, "協議" if ctx.script == "hant" else "协议", text):
        return
    deadlines = level_deadlines(ctx.runtime)
    resolve(
        ctx.session,
        case,
        deadlines=deadlines,
        now=ctx.now,
        by=_by(officer),
        agreement_enc=_enc(ctx, text),
    )
    level = word(ctx.runtime, "level", case.level, ctx.script)
    # The matter is settled: the ticket closes as 結案 would, and the residents hear the terms.
    ticket.status, ticket.closed_at = "closed", ctx.now
    ticket.acknowledged_at = ticket.acknowledged_at or ctx.now
    ticket.answered_at = ticket.answered_at or ctx.now
    ticket.resolution_enc, ticket.next_check_at = ctx.runtime.cipher.encrypt(text), None
    ticket.awaiting_satisfaction = True
    add_event(
        ctx.session,
        ctx.runtime,
        ticket,
        "closed",
        now=ctx.now,
        actor=_by(officer),
        detail=f"agreement at {case.level}",
        note=text,
    )
    script = ticket.script
    out.to_reporters(
        await reporters(ctx.session, ticket),
        out.text(
            "dispute_resolved_to_resident",
            script,  # type: ignore[arg-type]
            code=ticket.code,
            level=word(ctx.runtime, "level", case.level, script),  # type: ignore[arg-type]
            text=text,
        ),
    )
    dates = "、".join(local_date(ctx.runtime, ctx.now + d) for d in deadlines.follow_ups) or "-"
    out.to_officer(
        officer,
        ctx.text("dispute_resolved_to_officer", code=ticket.code, level=level, follow_ups=dates),
    )


async def _escalate(
    ctx: HandlerContext, out: Out, officer: Officer, ticket: Ticket, case: DisputeCase, text: str
) -> None:
    if not _still_open(ctx, out, officer, ticket, case, "escalate"):
        return
    if next_level(case.level) is None:
        out.to_officer(officer, ctx.text("dispute_at_county", code=ticket.code))
        return
    before = move_up(
        ctx.session,
        case,
        deadlines=level_deadlines(ctx.runtime),
        now=ctx.now,
        by=_by(officer),
        reason_enc=_enc(ctx, text),
    )
    add_event(
        ctx.session,
        ctx.runtime,
        ticket,
        "dispute_escalated",
        now=ctx.now,
        actor=_by(officer),
        detail=f"{before} -> {case.level}",
    )
    await tell_level_change(
        ctx.session, ctx.runtime, case, ticket, before=before, now=ctx.now, by=officer
    )
    out.to_officer(
        officer,
        ctx.text(
            "dispute_escalated_to_officer",
            code=ticket.code,
            level=word(ctx.runtime, "level", case.level, ctx.script),
            deadline=local_date(ctx.runtime, case.level_deadline),
        ),
    )


async def _refer(
    ctx: HandlerContext, out: Out, officer: Officer, ticket: Ticket, case: DisputeCase, text: str
) -> None:
    if not _still_open(ctx, out, officer, ticket, case, "refer"):
        return
    if not _needs_text(ctx, out, officer, ticket, "轉介" if ctx.script == "hant" else "转介", text):
        return
    refer(ctx.session, case, now=ctx.now, by=_by(officer), note_enc=_enc(ctx, text))
    add_event(
        ctx.session, ctx.runtime, ticket, "referred", now=ctx.now, actor=_by(officer), note=text
    )
    out.to_officer(officer, ctx.text("dispute_referred", code=ticket.code, text=text))


async def _follow_up(
    ctx: HandlerContext, out: Out, officer: Officer, ticket: Ticket, case: DisputeCase, text: str
) -> None:
    if case.status != "resolved":
        out.to_officer(officer, ctx.text("dispute_follow_up_not_due", code=ticket.code))
        return
    if not _needs_text(ctx, out, officer, ticket, "回訪" if ctx.script == "hant" else "回访", text):
        return
    deadlines = level_deadlines(ctx.runtime)
    returned = conflict_returned(text)
    follow_up(
        ctx.session,
        case,
        returned=returned,
        deadlines=deadlines,
        now=ctx.now,
        by=_by(officer),
        note_enc=_enc(ctx, text),
    )
    if returned:
        # Back to work: the ticket is open again and held by the officer who visited.
        ticket.status, ticket.closed_at, ticket.awaiting_satisfaction = "acknowledged", None, False
        add_event(
            ctx.session,
            ctx.runtime,
            ticket,
            "reopened",
            now=ctx.now,
            actor=_by(officer),
            detail="dispute returned at follow-up",
            note=text,
        )
        out.to_officer(
            officer,
            ctx.text(
                "dispute_reopened",
                code=ticket.code,
                level=word(ctx.runtime, "level", case.level, ctx.script),
                deadline=local_date(ctx.runtime, case.level_deadline),
            ),
        )
        if case.colour == "red":
            await page_red(ctx.session, ctx.runtime, case, ticket, now=ctx.now)
        return
    following = (
        ctx.text("dispute_next_follow_up", date=local_date(ctx.runtime, case.follow_up_at))
        if case.follow_up_at
        else ctx.text("dispute_no_more_follow_ups")
    )
    out.to_officer(officer, ctx.text("dispute_followed_up", code=ticket.code, next=following))


async def _attach_photo(ctx: HandlerContext, officer: Officer) -> bool:
    """A photo sent privately soon after the officer recorded an agreement: the signed
    agreement, attached to that case. Other photos pass on."""
    latest = await ctx.session.scalar(
        select(DisputeEvent)
        .where(
            DisputeEvent.action == "agreement",
            DisputeEvent.by == _by(officer),
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
    where = ctx.event.media_url or f"journal:{ctx.journal_id}"
    record(ctx.session, case, "photo", now=ctx.now, by=_by(officer), note_enc=_enc(ctx, str(where)))
    Out.of(ctx).to_officer(officer, ctx.text("dispute_photo_attached", code=ticket.code))
    return True


_ACTIONS = {
    "grade": _grade,
    "mediate": _mediate,
    "agreement": _agreement,
    "escalate": _escalate,
    "refer": _refer,
    "follow_up": _follow_up,
}
